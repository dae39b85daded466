"""The closing tables of the chapters on posterior collapse and on tighter bounds and priors.

    python benchmarks/beyond_the_elbo.py --record benchmarks/results.json

The same experiments as the chapters, with more data and epochs (the chapters keep to a minute):

* collapse: the autoregressive VAE (nz = 16) at beta = 1, plain and with each remedy (free
  bits, linear and cyclical KL annealing, delta-VAE), same epochs each; test -ELBO, rate, active
  units (gray levels, the Bernoulli cross-entropy);
* iwae: the MLP VAE trained with L_k for k = 1, 5, 50 at equal epochs on binarized images; test
  L_1, L_k, L_5000 (on the first 500 test images), active units (on all), seconds per epoch;
  the gradient signal-to-noise ratio of the encoder and the decoder of the k = 1 model as k
  grows;
* priors: a 2-D VAE with the standard normal prior and with a learned mixture of 10 Gaussians,
  the same objective (L_1) and recipe (Adam 3e-3, the prior's parameters 3e-2); test L_1 and
  L_500, and the share of prior draws that land in holes of the aggregate posterior (where its
  density is below a tenth of the prior's).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import record  # noqa: E402

from vae_helpers import (  # noqa: E402
    VAE,
    AutoregressiveVAE,
    MixturePrior,
    StandardNormalPrior,
    active_units,
    aggregate_log_density,
    cyclical_kl_weight,
    fit,
    free_bits_loss,
    gradient_snr,
    iw_log_likelihood,
    iwae_loss,
    kl_per_dimension,
    load_mnist,
    rate_and_distortion,
)

KEY = "beyond_the_elbo_cpu"


def collapse_table(train, test, epochs: int) -> list[dict]:
    steps = -(-len(train) // 128)
    runs = {"plain ELBO": {}, "free bits (0.5 nats)": {"loss": partial(free_bits_loss, floor=0.5)},
            "linear annealing": {"warmup_epochs": epochs / 2},
            "cyclical annealing (4 cycles)": {
                "beta": lambda step: cyclical_kl_weight(step, steps * epochs // 4)},
            "delta-VAE (0.2 nats)": {"delta": 0.2}}
    rows = []
    for name, options in runs.items():
        options = dict(options)
        delta = options.pop("delta", 0.0)
        torch.manual_seed(0)
        model = AutoregressiveVAE(nh=256, nz=16, delta=delta)
        history = fit(model, train, epochs=epochs, progress=False,
                      optimizer=torch.optim.Adam(model.param_groups()), **options)
        torch.manual_seed(0)
        rate, distortion = rate_and_distortion(model, test)
        rows.append({"run": name, "test_neg_elbo": round(rate + distortion, 2),
                     "rate": round(rate, 2), "active_units": active_units(model, test),
                     "dims_above_0.1_nats": int((kl_per_dimension(model, test) > 0.1).sum()),
                     "seconds": round(sum(history.seconds), 1)})
        print(rows[-1], flush=True)
    return rows


def iwae_table(train, test, epochs: int, big_k: int, big_k_images: int) -> dict:
    rows, models = [], {}
    for k in (1, 5, 50):
        torch.manual_seed(0)
        model = VAE(nh=200, nz=50)
        history = fit(model, train, epochs=epochs, progress=False, pixels="binarized",
                      loss=partial(iwae_loss, k=k))
        models[k] = model
        torch.manual_seed(0)
        scored = test[:big_k_images]
        row = {"k": k, "L_1": round(iw_log_likelihood(model, scored, 1), 2),
               f"L_{k}": round(iw_log_likelihood(model, scored, k), 2),
               f"L_{big_k}": round(iw_log_likelihood(model, scored, big_k), 2),
               "active_units": active_units(model, test),
               "seconds_per_epoch": round(sum(history.seconds) / epochs, 1)}
        rows.append(row)
        print(row, flush=True)
    torch.manual_seed(0)
    batch = train.drawn("binarized").images[:16]
    snr = []
    for k in (1, 10, 100, 1000):
        torch.manual_seed(0)
        ratio = gradient_snr(models[1], batch, k, repeats=50)
        snr.append({"k": k, "encoder": round(ratio["encoder"], 4),
                    "decoder": round(ratio["decoder"], 4)})
        print(snr[-1], flush=True)
    return {"rows": rows, "gradient_snr_of_k1_model": snr, "big_k_test_images": big_k_images}


def prior_table(train, test, epochs: int) -> list[dict]:
    rows = []
    for name in ("standard normal", "mixture of 10 Gaussians"):
        torch.manual_seed(0)
        model = VAE(nz=2)
        prior = StandardNormalPrior(2) if name == "standard normal" else MixturePrior(2, 10)
        adam = torch.optim.Adam([{"params": model.parameters()},
                                 {"params": prior.parameters(), "lr": 3e-2}], lr=3e-3)
        fit(model, train, epochs=epochs, progress=False, pixels="binarized", optimizer=adam,
            loss=partial(iwae_loss, k=1, prior=prior))
        torch.manual_seed(0)
        with torch.no_grad():
            mu, log_var = model.encode(test.images)
            draws = prior.sample(5000, generator=torch.Generator().manual_seed(0))
            ratio = aggregate_log_density(draws, mu, log_var) - prior.log_prob(draws)
        row = {"prior": name, "L_1": round(iw_log_likelihood(model, test, 1, prior=prior), 2),
               "L_500": round(iw_log_likelihood(model, test[:2000], 500, prior=prior), 2),
               "share_of_prior_draws_in_holes": round(float((ratio < -2.3).float().mean()), 3)}
        rows.append(row)
        print(row, flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-images", type=int, default=60_000)
    parser.add_argument("--collapse-epochs", type=int, default=5)
    parser.add_argument("--iwae-train-images", type=int, default=20_000)
    parser.add_argument("--iwae-epochs", type=int, default=5)
    parser.add_argument("--big-k", type=int, default=5000)
    parser.add_argument("--big-k-images", type=int, default=500)
    parser.add_argument("--prior-epochs", type=int, default=10)
    parser.add_argument("--parts", default="collapse,iwae,priors",
                        help="which tables to compute (the others keep their recorded values)")
    parser.add_argument("--record", default=None, metavar="JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    gray = load_mnist("train", subset=args.train_images)
    test = load_mnist("test")
    binary_test = test.drawn("binarized")
    parts = args.parts.split(",")
    command = "python benchmarks/beyond_the_elbo.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    figures = {}
    if args.record and Path(args.record).is_file():
        figures = json.loads(Path(args.record).read_text()).get(KEY, {})
    subset = gray[:args.iwae_train_images]
    for part in parts:
        start = time.perf_counter()
        if part == "collapse":
            figures[part] = {"train_images": len(gray), "epochs": args.collapse_epochs,
                             "rows": collapse_table(gray, test, args.collapse_epochs)}
        elif part == "iwae":
            figures[part] = {"train_images": len(subset), "epochs": args.iwae_epochs,
                             **iwae_table(subset, binary_test, args.iwae_epochs, args.big_k,
                                          args.big_k_images)}
        elif part == "priors":
            figures[part] = {"train_images": len(subset), "epochs": args.prior_epochs,
                             "rows": prior_table(subset, binary_test, args.prior_epochs)}
        else:
            raise SystemExit(f"unknown part {part!r}: choose from collapse, iwae, priors")
        figures[part].update(command=command, date=datetime.date.today().isoformat(),
                             device="cpu (1 thread)", torch=torch.__version__,
                             seconds=round(time.perf_counter() - start, 1))
    if args.record:
        record(Path(args.record), KEY, figures)
    return figures


if __name__ == "__main__":
    main()
