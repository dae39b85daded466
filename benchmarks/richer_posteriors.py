"""The tables of chapter 15 (posteriors beyond the diagonal Gaussian), over seeds.

    python benchmarks/richer_posteriors.py --record benchmarks/results.json

Three parts, recorded under ``richer_posteriors_cpu`` (``--parts`` runs some of them and keeps
the others' recorded values):

* gaps: chapter 7's two-dimensional model (``notebooks/checkpoints/vae_binarized.pt``, trained
  first if missing) on the first ``--gap-images`` binarized test images; log p(x) on a grid; for
  each family (diagonal, full covariance, 4 planar steps, 2 IAF steps) the best member per image
  (Adam on the per-image ELBO, 8 draws a step, the learning rate decaying linearly to zero: 300
  steps for the diagonal Gaussian from the encoder's output, then 200 for each richer family,
  started at that optimum with the flow at the identity) and an amortized encoder of the family
  (chapter 7's encoder plus the family's layers, fine-tuned on the ELBO with the decoder frozen,
  ``--gap-epochs`` epochs of the training images binarized afresh); every ELBO from 2,000 draws.
  The seed sets the draws and the flows' starting directions; the model is the same.
* flow20: a 20-dimensional MLP VAE (784-200-20, as in the chapter) trained on the ELBO on
  ``--train-images`` dynamically binarized images for ``--epochs`` epochs, with the encoder's
  diagonal Gaussian alone and followed by 2 IAF steps; test L_1, L_10, L_100 and L_1000 on the
  first ``--test-images`` binarized test images.
* snr: on the diagonal 20-D model trained as in the chapter (10,000 images, 3 epochs), the
  gradient signal-to-noise ratio of the encoder and the decoder (``estimator_snr``, 50 estimates
  on 16 images) of the plain IWAE estimator, STL and DReG for k = 1, 4, 16, 64, 256 (``--ks``),
  and the seconds one estimate (forward and backward) takes, the median of 20.

Every part runs ``--seeds`` seeds (3). Budget, in CPU time of the one thread, which is the wall
time on an idle machine: gaps about 2 minutes per seed (100 images), flow20 and snr about 40
seconds per seed each. On the shared 2-core machine the recorded run took 5.6 CPU minutes for
gaps and 3.9 for flow20 and snr together, but 52 and 33 minutes of wall time under a load of 15.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch
from torch.func import functional_call, stack_module_state, vmap

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import record  # noqa: E402

from vae_helpers import (  # noqa: E402
    FlowVAE,
    IAFStep,
    PlanarStep,
    dreg_loss,
    estimator_snr,
    fit,
    grid_log_likelihood,
    iw_bound,
    iwae_loss,
    load_mnist,
    load_or_train,
    log_bernoulli,
    log_normal_diag,
    log_standard_normal,
    planar_flow,
    scale_tril,
    stl_loss,
)
from vae_helpers.flows import PLANAR_IDENTITY  # noqa: E402
from vae_helpers.training import DEFAULT_SEED  # noqa: E402

KEY = "richer_posteriors_cpu"
ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("diagonal", "full covariance", "4 planar steps", "2 IAF steps")
DRAWS = 8  # draws per image and step of the per-image optimization


def elbo_loss(model, x, label=(), beta=1.0):
    """-ELBO summed over the batch, one draw per image from the model's own q(z|x)."""
    return -model.log_weights(x, 1).sum()


class Flow(torch.nn.Module):
    """Stacked steps z -> (z', sum of log-dets), for one image's own IAF."""

    def __init__(self, steps):
        super().__init__()
        self.steps = torch.nn.ModuleList(steps)

    def forward(self, z):
        total = 0
        for step in self.steps:
            z, log_det = step(z)
            total = total + log_det
        return z, total


class PerImage:
    """The four families with free parameters per image, each ``sample(eps) -> (z, log q)``."""

    def __init__(self, mu, log_var, layers=4):
        n = len(mu)
        self.mu, self.log_var = mu.clone().requires_grad_(), log_var.clone().requires_grad_()
        self.off = torch.zeros(n, 1, requires_grad=True)
        w = torch.randn(n, layers, 2)
        w = w / w.norm(dim=-1, keepdim=True)
        self.u, self.w = (PLANAR_IDENTITY * w).requires_grad_(), w.requires_grad_()
        self.b = torch.zeros(n, layers, requires_grad=True)
        self.flow = Flow([IAFStep(2, 16), IAFStep(2, 16, reverse=True)])
        self.iaf, _ = stack_module_state([copy.deepcopy(self.flow) for _ in range(n)])

    def parameters(self, family):
        base = [self.mu, self.log_var]
        return {"diagonal": base, "full covariance": base + [self.off],
                "4 planar steps": base + [self.u, self.w, self.b],
                "2 IAF steps": base + list(self.iaf.values())}[family]

    def sample(self, family, eps):
        mu, log_var = self.mu, self.log_var
        if family == "full covariance":
            factor = scale_tril(0.5 * log_var, self.off)
            z = mu + (factor @ eps.unsqueeze(-1)).squeeze(-1)
            return z, log_standard_normal(eps) - 0.5 * log_var.sum(-1)
        z = mu + torch.exp(0.5 * log_var) * eps
        log_q = log_normal_diag(z, mu, log_var)
        if family == "4 planar steps":
            for j in range(self.u.shape[1]):
                z, log_det = planar_flow(z, self.u[:, j], self.w[:, j], self.b[:, j])
                log_q = log_q - log_det
        elif family == "2 IAF steps":
            def one_image(parameters, codes):  # the masks are the module's own buffers
                return functional_call(self.flow, parameters, (codes,))
            z, log_det = vmap(one_image, in_dims=(0, 1), out_dims=1)(self.iaf, z)
            log_q = log_q - log_det
        return z, log_q


def optimize(model, x, per_image, family, steps, lr):
    """Adam on the per-image ELBOs, the rate decaying linearly to zero."""
    adam = torch.optim.Adam(per_image.parameters(family), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(adam, lambda step: 1 - step / steps)
    for _ in range(steps):
        z, log_q = per_image.sample(family, torch.randn(DRAWS, *x.shape[:1], 2))
        elbo = (log_bernoulli(x, model.decode(z)) + log_standard_normal(z) - log_q).mean(0)
        adam.zero_grad()
        (-elbo.sum()).backward()
        adam.step()
        schedule.step()


@torch.no_grad()
def elbo_of(log_w_of, n_images, draws=2000, seed=1):
    eps = torch.randn(draws, n_images, 2, generator=torch.Generator().manual_seed(seed))
    return float(log_w_of(eps).mean())


def amortized_model(binary_model, family, seed, nh=512):
    torch.manual_seed(seed)  # the planar steps' starting directions, the IAF's hidden layers
    steps = {"4 planar steps": [PlanarStep(nh, 2) for _ in range(4)],
             "2 IAF steps": [IAFStep(2, 16, context=nh), IAFStep(2, 16, context=nh,
                                                                  reverse=True)]}.get(family, [])
    model = FlowVAE(nh=nh, nz=2, full_covariance=family == "full covariance", steps=steps)
    model.load_state_dict(binary_model.state_dict(), strict=False)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith("encoder"))
    return model


def gap_table(train, test, n_images, epochs, seeds, train_images):
    binary_model, _ = load_or_train(ROOT / "notebooks" / "checkpoints" / "vae_binarized.pt",
                                    train, epochs=5, pixels="binarized")
    binary_model.eval()
    for parameter in binary_model.parameters():
        parameter.requires_grad_(False)
    first = test[:n_images].drawn("binarized", seed=0)
    x = first.images
    log_px = float(grid_log_likelihood(binary_model, first).mean())
    with torch.no_grad():
        mu, log_var = binary_model.encode(x)

    def diagonal_log_w(eps):
        z = mu + torch.exp(0.5 * log_var) * eps
        return (log_bernoulli(x, binary_model.decode(z)) + log_standard_normal(z)
                - log_normal_diag(z, mu, log_var))

    encoder_elbo = elbo_of(diagonal_log_w, n_images)
    print({"log_px": round(log_px, 3), "encoder_elbo": round(encoder_elbo, 3)}, flush=True)
    rows = []
    for seed in range(seeds):
        for family in FAMILIES:
            torch.manual_seed(seed)
            if family == "diagonal":
                per_image = PerImage(mu, log_var)
                optimize(binary_model, x, per_image, family, 300, 0.02)
                best_mu, best_log_var = per_image.mu.detach(), per_image.log_var.detach()
            else:  # from the best diagonal Gaussian, the family's new parts at the identity
                per_image = PerImage(best_mu, best_log_var)
                optimize(binary_model, x, per_image, family, 200, 0.01)

            def log_w(eps, family=family, per_image=per_image):
                z, log_q = per_image.sample(family, eps)
                return log_bernoulli(x, binary_model.decode(z)) + log_standard_normal(z) - log_q

            best = elbo_of(log_w, n_images)
            model = amortized_model(binary_model, family, seed)
            adam = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
            fit(model, train[:train_images], epochs=epochs, progress=False, pixels="binarized",
                optimizer=adam, loss=elbo_loss, seed=DEFAULT_SEED + seed)
            model.eval()
            with torch.no_grad():
                torch.manual_seed(1)
                amortized = float(torch.cat([model.log_weights(chunk, 2000).mean(0)
                                             for chunk in x.split(25)]).mean())
            row = {"seed": seed, "family": family, "elbo_best": round(best, 3),
                   "approximation_gap": round(log_px - best, 3),
                   "elbo_amortized": round(amortized, 3),
                   "amortization_gap": round(best - amortized, 3)}
            rows.append(row)
            print(row, flush=True)
    return {"images": n_images, "log_px": round(log_px, 3),
            "encoder_elbo": round(encoder_elbo, 3), "amortized_epochs": epochs,
            "amortized_train_images": train_images, "rows": rows}


def model_20d(flow: bool) -> FlowVAE:
    steps = [IAFStep(20, 128, context=200), IAFStep(20, 128, context=200, reverse=True)]
    return FlowVAE(nh=200, nz=20, steps=steps if flow else [])


def flow20_table(train, test, epochs, seeds):
    rows = []
    for seed in range(seeds):
        for name in ("diagonal", "2 IAF steps"):
            torch.manual_seed(seed)
            model = model_20d(name != "diagonal")
            history = fit(model, train, epochs=epochs, progress=False, pixels="binarized",
                          loss=elbo_loss, seed=DEFAULT_SEED + seed)
            torch.manual_seed(0)
            with torch.no_grad():
                log_w = torch.cat([model.log_weights(x, 1000) for x in test.images.split(50)], 1)
            row = {"seed": seed, "posterior": name,
                   **{f"L_{k}": round(float(iw_bound(log_w[:k]).mean()), 2)
                      for k in (1, 10, 100, 1000)},
                   "L_1_mean_of_1000": round(float(log_w.mean()), 2),
                   "seconds_per_epoch": round(sum(history.seconds) / epochs, 1)}
            rows.append(row)
            print(row, flush=True)
    return rows


def seconds_per_estimate(loss, model, x, repeats=20):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        loss(model, x).backward()
        times.append(time.perf_counter() - start)
    model.zero_grad(set_to_none=True)
    return statistics.median(times)


def snr_table(train, seeds, ks):
    rows = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        model = model_20d(False)
        fit(model, train[:10_000], epochs=3, progress=False, pixels="binarized", loss=elbo_loss,
            seed=DEFAULT_SEED + seed)
        torch.manual_seed(seed)
        batch = train.drawn("binarized", seed=seed).images[:16]
        for k in ks:
            for name, loss in (("plain", iwae_loss), ("STL", stl_loss), ("DReG", dreg_loss)):
                torch.manual_seed(0)
                ratio = estimator_snr(partial(loss, k=k), model, batch, repeats=50)
                row = {"seed": seed, "k": k, "estimator": name,
                       "encoder": round(ratio["encoder"], 4),
                       "decoder": round(ratio["decoder"], 4),
                       "seconds_per_estimate": round(seconds_per_estimate(
                           partial(loss, k=k), model, batch), 5)}
                rows.append(row)
                print(row, flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gap-images", type=int, default=100)
    parser.add_argument("--gap-epochs", type=int, default=1,
                        help="epochs of the amortized encoders' fine-tuning")
    parser.add_argument("--gap-train-images", type=int, default=60_000)
    parser.add_argument("--train-images", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--test-images", type=int, default=500)
    parser.add_argument("--ks", default="1,4,16,64,256")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--parts", default="gaps,flow20,snr",
                        help="which tables to compute (the others keep their recorded values)")
    parser.add_argument("--record", default=None, metavar="JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    train = load_mnist("train")
    test = load_mnist("test")
    command = "python benchmarks/richer_posteriors.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    figures = {}
    if args.record and Path(args.record).is_file():
        figures = json.loads(Path(args.record).read_text()).get(KEY, {})
    for part in args.parts.split(","):
        start = time.perf_counter()
        print(f"== {part}", flush=True)
        if part == "gaps":
            figures[part] = gap_table(train, test, args.gap_images, args.gap_epochs, args.seeds,
                                      args.gap_train_images)
        elif part == "flow20":
            figures[part] = {"train_images": args.train_images, "epochs": args.epochs,
                             "test_images": args.test_images,
                             "rows": flow20_table(train[:args.train_images],
                                                  test[:args.test_images].drawn("binarized"),
                                                  args.epochs, args.seeds)}
        elif part == "snr":
            figures[part] = {"rows": snr_table(train, args.seeds,
                                               [int(k) for k in args.ks.split(",")])}
        else:
            raise SystemExit(f"unknown part {part!r}: choose from gaps, flow20, snr")
        figures[part].update(command=command, date=datetime.date.today().isoformat(),
                             device="cpu (1 thread)", torch=torch.__version__, seeds=args.seeds,
                             seconds=round(time.perf_counter() - start, 1))
        if args.record:  # after every part, so that a long run keeps what it finished
            record(Path(args.record), KEY, figures)
    return figures


if __name__ == "__main__":
    main()
