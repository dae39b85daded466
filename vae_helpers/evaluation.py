"""Held-out numbers: the test negative ELBO, rate and distortion, and log p(x) estimates.

Each function takes an ``MNIST`` split (images and labels, needed by conditional models). Every
figure is under the model's own pixel likelihood (``model.likelihood``): for gray-level images
with Bernoulli pixels it is the original tutorial's cross-entropy, a surrogate, not a density.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .data import MNIST, check_images
from .errors import check_integers, check_numbers
from .losses import iw_bound, kl_to_standard_normal, log_standard_normal
from .model import LatentVariableModel
from .objectives import log_weight_terms

MAX_GRID_STEPS = 2001  # a 2001 x 2001 grid is 4 million decodes per image batch


def _chunks(model: LatentVariableModel, data: MNIST, size: int):
    check_integers(batch_size=size)
    check_images(data.images, model.nx, "images")
    for x, y in zip(data.images.split(size), data.labels.split(size)):
        yield x, model.given(y)


@torch.no_grad()
def rate_and_distortion(model: LatentVariableModel, data: MNIST,
                        batch_size: int = 2000) -> tuple[float, float]:
    """Average rate KL(q(z|x) || p(z)) and distortion -log p(x|z) (one z each), in nats.

    Their sum is the negative ELBO; a beta-VAE minimizes distortion + beta * rate (chapter 8).
    """
    was_training = model.training
    model.eval()
    rate = distortion = torch.zeros((), device=data.images.device)
    for x, label in _chunks(model, data, batch_size):
        logits, mu, log_var = model(x, *label)
        rate = rate + kl_to_standard_normal(mu, log_var).sum()
        distortion = distortion - model.log_likelihood(x, logits).sum()
    model.train(was_training)
    return float(rate) / len(data), float(distortion) / len(data)


def mean_negative_elbo(model: LatentVariableModel, data: MNIST, batch_size: int = 2000) -> float:
    """Average per-example negative ELBO (one z sample per example) over ``data`` (chapter 5)."""
    return sum(rate_and_distortion(model, data, batch_size))


@torch.no_grad()
def kl_per_dimension(model: LatentVariableModel, data: MNIST) -> torch.Tensor:
    """Average KL(q(z_j|x) || N(0, 1)) of each latent dimension j: where the rate is spent.
    Chapter 8."""
    total = torch.zeros(model.nz, device=data.images.device)
    for x, label in _chunks(model, data, 2000):
        mu, log_var = model.encode(x, *label)
        total += kl_to_standard_normal(mu.unsqueeze(-1), log_var.unsqueeze(-1)).sum(0)
    return (total / len(data)).cpu()


@torch.no_grad()
def active_units(model: LatentVariableModel, data: MNIST, threshold: float = 0.01) -> int:
    """Latent dimensions whose posterior mean varies across inputs: Var_x E_q[z_j] > threshold.

    The measure of Burda et al. (2016); an inactive dimension is ignored by the decoder
    (posterior collapse) (chapter 8).
    """
    check_numbers(threshold=threshold)
    means = torch.cat([model.encode(x, *label)[0] for x, label in _chunks(model, data, 2000)])
    return int((means.var(0) > threshold).sum())


@torch.no_grad()
def log_weights(model: LatentVariableModel, x: torch.Tensor, label: tuple, mu: torch.Tensor,
                log_var: torch.Tensor, k: int, prior: nn.Module | None = None) -> torch.Tensor:
    """log w_i = log p(x | z_i) + log p(z_i) - log q(z_i) for k draws z_i ~ q = N(mu, e^log_var):
    shape (k, batch). Their mean is a k-sample ELBO estimate, ``iw_bound`` of them is L_k.
    ``prior``: a module with ``log_prob`` (``priors.py``); None is N(0, I) (chapter 7)."""
    log_px, log_pz, log_q = log_weight_terms(model, x, label, mu, log_var, k, prior)
    return log_px + log_pz - log_q


@torch.no_grad()
def iw_log_likelihood(model: LatentVariableModel, data: MNIST, k: int,
                      max_samples: int = 50_000,
                      posterior: tuple[torch.Tensor, torch.Tensor] | None = None,
                      prior: nn.Module | None = None) -> float:
    """Average importance-weighted bound L_k on log p(x) with ``k`` samples from q(z|x).

    k = 1 gives a (stochastic) ELBO; L_k never decreases as k grows and tends to log p(x).
    ``posterior=(mu, log_var)``, one row per image of ``data``, replaces the encoder's q(z|x)
    (e.g. by per-image optimized Gaussians). Images are processed in chunks of at most
    ``max_samples`` decoded samples, to bound memory. ``prior``: the model's p(z), a module with
    ``log_prob`` (``priors.py``); None is N(0, I) (chapter 6).
    """
    check_integers(k=k, max_samples=max_samples)
    if posterior is not None and any(p.shape != (len(data), model.nz) for p in posterior):
        raise ValueError(f"posterior must be (mu, log_var), each of shape ({len(data)}, "
                         f"{model.nz}).")
    size = max(1, max_samples // k)
    total = torch.zeros((), device=data.images.device)
    for start, (x, label) in zip(range(0, len(data), size), _chunks(model, data, size)):
        if posterior is None:
            mu, log_var = model.encode(x, *label)
        else:
            mu, log_var = (p[start:start + len(x)] for p in posterior)
        total += iw_bound(log_weights(model, x, label, mu, log_var, k, prior)).sum()
    return float(total) / len(data)


@torch.no_grad()
def grid_log_likelihood(model: LatentVariableModel, data: MNIST, steps: int | None = None,
                        limit: float | None = None, batch_size: int = 1000) -> torch.Tensor:
    """log p(x) of each image of ``data`` by numerical integration over z, for a 2-D model:
    p(x) = integral of p(x|z) p(z) dz as a sum over a ``steps`` x ``steps`` grid on
    [-limit, limit]^2. Only possible because the code is two-dimensional; the integrand is
    smooth, so the sum converges fast, and it checks the importance-weighted estimates.

    By default the grid is sized from the encoder's q(z|x) on ``data``: it reaches 6 standard
    deviations beyond the farthest mean (at least to 5, where the prior ends), with a spacing of
    the smallest standard deviation (a Gaussian summed at that spacing is exact to ~1e-8).
    Chapter 7.
    """
    if model.nz != 2 or model.conditional:
        raise ValueError("grid_log_likelihood needs an unconditional model with nz=2.")
    check_images(data.images, model.nx, "images")
    check_integers(batch_size=batch_size)
    if steps is not None:
        check_integers(2, MAX_GRID_STEPS, steps=steps)
    if limit is not None:
        check_numbers(limit=limit)
    was_training = model.training
    model.eval()
    if steps is None or limit is None:
        mu, log_var = model.encode(data.images)
        sigma = torch.exp(0.5 * log_var)
        limit = limit or max(5.0, float((mu.abs() + 6 * sigma).max()))
        steps = steps or int(math.ceil(2 * limit / float(sigma.min()))) + 1
    if steps > MAX_GRID_STEPS:
        raise ValueError(f"a grid of {steps} x {steps} codes is too fine to sum; pass steps and "
                         "limit explicitly.")
    values = torch.linspace(-limit, limit, steps, device=data.images.device)
    z = torch.cartesian_prod(values, values)
    log_prior = log_standard_normal(z) + 2 * math.log(2 * limit / (steps - 1))
    results = []
    for x in data.images.split(batch_size):
        total = torch.full((len(x),), -math.inf, device=x.device)
        for codes, prior in zip(z.split(4096), log_prior.split(4096)):
            pairs = model.likelihood.log_prob_pairs(x, model.decode(codes))
            total = torch.logaddexp(total, torch.logsumexp(pairs + prior, dim=1))
        results.append(total)
    model.train(was_training)
    return torch.cat(results)
