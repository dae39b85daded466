"""Burda et al. (2016), Table 1 on MNIST, reproduced under its protocol within a stated budget.

    nice -n 5 python benchmarks/literature_table.py --record benchmarks/results.json

The protocol of Burda, Grosse and Salakhutdinov (2016) and their released code: the 60,000
training images binarized afresh for every batch (their code holds out the last 400), batches
of 20, Adam (beta1 0.9, beta2 0.999, eps 1e-4) with the learning rate 10^-3 · 10^(-i/7) for 3^i
passes, i = 0..7 (3,280 passes in all); 2 x 200 tanh hidden units in each network, 50 latents,
Bernoulli pixels, Glorot-uniform weights, the output bias at the logit of the mean pixel
(``benchmarks/burda.py``). Rows: one stochastic layer trained as a VAE (k = 1, the one-sample
ELBO with the KL term sampled, as theirs) and as IWAEs (k = 5, 50); ``--vae-ks 5,50`` adds
their VAE rows trained on the average of k draws' log-weights, and ``--layers 1,2`` the
two-stochastic-layer model (``burda_two_layer_vae``: chapter 16's ``TwoLayerVAE`` with tanh).
Scored as they scored, by L_5000, on the test images binarized once (seed 0; their code draws
the test pixels afresh), on the first ``--test-images`` of them (10,000: all). With a subset,
each run also records the ELBO on the subset and on all 10,000 images: their difference
estimates how far the subset's mean lies from the full set's, and the appendix page uses it.
``--epochs`` truncates the schedule; L_5000 is also scored at the end of every stage of the
schedule reached (after 1, 4, 13, 40, ... passes), for the page's curve.

Budget. CPU (the defaults: one thread, 1 pass, seeds 0, 1, 2, k = 1, 5 and 50, one stochastic
layer, L_5000 on the first 100 test images). On this book's 2-core machine, with nothing else
heavy running, one pass took about 12 s for k = 1, 25 to 45 s for k = 5 and 80 s for k = 50
(two stochastic layers: 18, 26 and 118 s), and each L_5000 score 15 to 45 s; run in parts,
every row of Burda et al.'s table but the two-layer VAEs with k = 5 and 50, at one pass over
three seeds, plus one run to 13 passes for the page's curve, took about half an hour:
``--ks 1,5``, ``--ks 50``, ``--ks "" --vae-ks 5,50``, ``--layers 2 --ks 1,5``, ``--layers 2
--ks 50`` and ``--ks 1 --seeds 0 --epochs 13``.
A busy machine is several times slower (PyTorch's threads wait on each other). The command
prints each pass and each score as it goes, and records after every run (a run cut short by a
time limit loses only itself). GPU,
the paper's full length (many GPU-hours: each pass is 3,000 small steps):

    --device cuda --epochs 3280 --layers 1,2 --vae-ks 5,50 --test-images 10000

Runs recorded earlier with the same scoring settings are kept unless recomputed, so seeds and
rows can be run one at a time.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import record  # noqa: E402
from burda import (  # noqa: E402
    BATCH_SIZE,
    PASSES,
    BurdaVAE,
    burda_learning_rate,
    burda_optimizer,
    burda_two_layer_vae,
    learning_rate_schedule,
    set_output_bias,
    stage_ends,
)

from vae_helpers import (  # noqa: E402
    describe_device,
    fit,
    iw_log_likelihood,
    iwae_loss,
    load_mnist,
    log_weight_terms,
    mean_negative_elbo,
)

KEY = "literature_table_"
# Burda, Grosse and Salakhutdinov (2016), Table 1, MNIST: test log-likelihood (L_5000), nats.
# (stochastic layers, objective, k) -> figure. Their IWAE with k = 1 is their VAE.
PUBLISHED = {
    (1, "VAE", 1): -86.76, (1, "VAE", 5): -86.47, (1, "VAE", 50): -86.35,
    (1, "IWAE", 5): -85.54, (1, "IWAE", 50): -84.78,
    (2, "VAE", 1): -85.33, (2, "VAE", 5): -85.01, (2, "VAE", 50): -84.78,
    (2, "IWAE", 5): -83.89, (2, "IWAE", 50): -82.90,
}
SOURCE = "Burda, Grosse and Salakhutdinov (2016), Table 1, MNIST (dynamic binarization)"
ARCHITECTURES = {1: "784-200-200-50, tanh", 2: "784-200-200-100, 100-100-100-50, tanh"}


def averaged_elbo_loss(model, x: torch.Tensor, label: tuple = (), beta: float = 1.0,
                       k: int = 1) -> torch.Tensor:
    """Burda et al.'s "VAE with k samples": minus the average of log w_i = log p(x|z_i) +
    beta (log p(z_i) - log q(z_i|x)) over k draws (an ELBO estimate, not L_k), summed over the
    batch; for one or two stochastic layers."""
    if hasattr(model, "layer_sizes"):  # two stochastic layers
        log_px, log_ratio = model.log_weight_terms(x, k)
    else:
        mu, log_var = model.encode(x, *label)
        log_px, log_pz, log_q = log_weight_terms(model, x, label, mu, log_var, k)
        log_ratio = log_pz - log_q
    return -(log_px + beta * log_ratio).mean(0).sum()


def build(layers: int, train, chunk: int):
    """The model, its IWAE loss for k samples, its L_k (``chunk`` decoded draws at a time) and
    its ELBO on a data set."""
    if layers == 1:
        model = BurdaVAE()
        set_output_bias(model.decoder_logits, train.images)
        return (model, lambda k: functools.partial(iwae_loss, k=k),
                lambda data, k: iw_log_likelihood(model, data, k, max_samples=chunk),
                lambda data: -mean_negative_elbo(model, data))
    from vae_helpers.hierarchical import hierarchical_log_likelihood, hierarchical_loss

    model = burda_two_layer_vae()
    set_output_bias(model.decoder_x[-1], train.images)
    return (model, lambda k: functools.partial(hierarchical_loss, k=k),
            lambda data, k: hierarchical_log_likelihood(model, data, k, max_samples=chunk),
            lambda data: hierarchical_log_likelihood(model, data, 1))


def one_run(layers: int, objective: str, k: int, seed: int, train, test, full_test, args,
            device) -> dict:
    """Train one model for ``args.epochs`` passes; score it at the ends of the stages."""
    torch.manual_seed(seed)
    chunk = 20_000 if device.type == "cpu" else 500_000
    model, iwae, log_likelihood, elbo = build(layers, train, chunk)
    loss = iwae(k) if objective == "IWAE" or k == 1 else functools.partial(averaged_elbo_loss,
                                                                          k=k)
    model.to(device)
    optimizer = burda_optimizer(model, burda_learning_rate(1))
    set_rate = learning_rate_schedule(optimizer)
    scored_at = sorted(set(stage_ends(args.epochs)) | {args.epochs})
    curve, scoring_seconds = [], 0.0
    name = f"{layers} layer{'s' if layers > 1 else ''}, {objective} k = {k}, seed {seed}"

    def on_epoch(history) -> None:
        nonlocal scoring_seconds
        set_rate(history)
        done = len(history.train_loss)
        print(f"  {name}: pass {done}/{args.epochs}, training loss "
              f"{history.train_loss[-1]:.2f}, {history.seconds[-1]:.0f} s", flush=True)
        if done not in scored_at:
            return
        start = time.perf_counter()
        model.eval()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(0)
            point = {"epochs": done, f"L_{args.k_eval}": round(log_likelihood(test, args.k_eval),
                                                               3),
                     "elbo": round(elbo(test), 3)}
            if len(test) < len(full_test):
                point["elbo_all_test"] = round(elbo(full_test), 3)
        model.train()
        scoring_seconds += time.perf_counter() - start
        print(f"  {name}: {point}", flush=True)
        curve.append(point)

    start = time.perf_counter()
    history = fit(model, train, epochs=args.epochs, batch_size=BATCH_SIZE, seed=seed,
                  progress=False, optimizer=optimizer, pixels="binarized", loss=loss,
                  on_epoch=on_epoch)
    wall = time.perf_counter() - start
    return {"layers": layers, "objective": objective, "k": k, "seed": seed,
            "epochs": args.epochs, "training_seconds": round(sum(history.seconds), 1),
            "scoring_seconds": round(scoring_seconds, 1), "wall_seconds": round(wall, 1),
            "final_training_loss": round(history.train_loss[-1], 3), "curve": curve,
            **{key: value for key, value in curve[-1].items() if key != "epochs"}}


def numbers(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n.strip()]


def run_key(run: dict) -> tuple:
    return run["layers"], run["objective"] != "VAE", run["k"], run["epochs"], run["seed"]


def mean_sd(values: list[float]) -> list[float | None]:
    return [round(statistics.mean(values), 3),
            round(statistics.stdev(values), 3) if len(values) > 1 else None]


def table(runs: list[dict], k_eval: int) -> list[dict]:
    """One row per (layers, objective, k, epochs): mean and sd over the seeds, and the
    published figure beside it."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["layers"], run["objective"], run["k"], run["epochs"]),
                          []).append(run)
    rows = []
    for (layers, objective, k, epochs), members in sorted(
            groups.items(), key=lambda g: (g[0][0], g[0][1] != "VAE", g[0][2], g[0][3])):
        score = f"L_{k_eval}"
        row = {"layers": layers, "architecture": ARCHITECTURES[layers], "objective": objective,
               "k": k, "epochs": epochs, "seeds": sorted(m["seed"] for m in members),
               score: mean_sd([m[score] for m in members]),
               "elbo": mean_sd([m["elbo"] for m in members]),
               "training_seconds": mean_sd([m["training_seconds"] for m in members]),
               "published": PUBLISHED.get((layers, objective, k))}
        if all("elbo_all_test" in m for m in members):
            # The subset's L_k moved by the ELBO's shift from the subset to all test images.
            row[f"{score}_all_test_estimate"] = mean_sd(
                [m[score] + m["elbo_all_test"] - m["elbo"] for m in members])
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--epochs", type=int, default=1, help="passes (the schedule truncated)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--ks", default="1,5,50",
                        help="samples per image in training: 1 is the VAE, more an IWAE")
    parser.add_argument("--vae-ks", default="",
                        help="VAE rows trained on the average of k draws' log-weights, k > 1")
    parser.add_argument("--layers", default="1", help="stochastic layers: 1, 2 or 1,2")
    parser.add_argument("--test-images", type=int, default=100,
                        help="L_k on the first so many test images (10000: all)")
    parser.add_argument("--k-eval", type=int, default=5000)
    parser.add_argument("--train-images", type=int, default=60_000, help="fewer: a smoke test")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    parser.add_argument("--record", default=None, metavar="JSON")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    train = load_mnist("train", device=device, subset=args.train_images)
    full_test = load_mnist("test", device=device).drawn("binarized", seed=0)
    test = full_test[:args.test_images]
    command = "python benchmarks/literature_table.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    settings = {"train_images": len(train), "batch_size": BATCH_SIZE, "pixels": "binarized",
                "optimizer": "Adam(betas=(0.9, 0.999), eps=1e-4)",
                "schedule": "3^i passes at 1e-3 * 10^(-i/7), i = 0..7",
                "test_images": len(test), "test_binarization_seed": 0, "k_eval": args.k_eval}
    runs: list[dict] = []
    figures: dict = {}
    rows = [("VAE" if k == 1 else "IWAE", k) for k in numbers(args.ks)]
    rows += [("VAE", k) for k in numbers(args.vae_ks) if k > 1]
    for layers in numbers(args.layers):
        for objective, k in rows:
            for seed in numbers(args.seeds):
                run = one_run(layers, objective, k, seed, train, test, full_test, args, device)
                print(json.dumps({key: v for key, v in run.items() if key != "curve"}),
                      flush=True)
                runs.append(run)
                # Recorded after every run: a run cut short by a time limit loses only itself.
                figures = merged(runs, settings, args, device, command)
    print(json.dumps(figures.get("table", []), indent=1), flush=True)
    return figures


def merged(runs: list[dict], settings: dict, args, device, command: str) -> dict:
    """This invocation's runs with those recorded earlier under the same settings (read now:
    other invocations may run in parallel), recorded when ``--record`` is given."""
    key = KEY + device.type
    earlier = {}
    if args.record and Path(args.record).is_file():
        earlier = json.loads(Path(args.record).read_text()).get(key, {})
    same = earlier.get("settings") == settings
    new = {run_key(r) for r in runs}
    kept = [r for r in earlier.get("runs", []) if same and run_key(r) not in new]
    commands = [c for c in (earlier.get("commands", []) if kept else []) if c != command]
    published = [{"layers": layers, "objective": objective, "k": k, "L_5000": value,
                  "architecture": ARCHITECTURES[layers], "epochs": PASSES}
                 for (layers, objective, k), value in PUBLISHED.items()]
    all_runs = sorted(kept + runs, key=run_key)
    figures = {"settings": settings, "runs": all_runs, "table": table(all_runs, args.k_eval),
               "published": published, "published_source": SOURCE,
               "device": describe_device(device), "torch": torch.__version__,
               "date": datetime.date.today().isoformat(), "commands": commands + [command]}
    if args.record:
        record(Path(args.record), key, figures)
    return figures


if __name__ == "__main__":
    main()
