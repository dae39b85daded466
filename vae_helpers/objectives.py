"""Training objectives beyond the one-sample ELBO, each a loss ``fit(..., loss=...)`` accepts:
the importance-weighted bound with any prior, free bits; a cyclical KL schedule; and the signal
to noise ratio of gradient estimates.

A loss is called as ``loss(model, x, label, beta)`` (``label``: ``model.given(labels)``, the
KL weight ``beta`` of this step) and returns the loss summed over the batch. Bind the other
arguments with ``functools.partial``, e.g. ``partial(iwae_loss, k=5, prior=prior)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from .losses import iw_bound, kl_to_standard_normal, log_normal_diag, log_standard_normal
from .model import LatentVariableModel


def log_weight_terms(model: LatentVariableModel, x: torch.Tensor, label: tuple,
                     mu: torch.Tensor, log_var: torch.Tensor, k: int,
                     prior: nn.Module | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For k reparameterized draws z_i ~ q = N(mu, e^log_var): log p(x | z_i), log p(z_i) and
    log q(z_i | x), each of shape (k, batch), differentiable. ``prior``: a module with
    ``log_prob`` (``priors.py``); None is N(0, I) (chapter 12)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}.")
    z = mu + torch.exp(0.5 * log_var) * torch.randn((k, *mu.shape), device=mu.device)
    logits = model.decode(z, *[y.expand(k, -1) for y in label])
    log_pz = log_standard_normal(z) if prior is None else prior.log_prob(z)
    return (model.log_likelihood(x.expand(k, -1, -1), logits), log_pz,
            log_normal_diag(z, mu, log_var))


def iwae_loss(model: LatentVariableModel, x: torch.Tensor, label: tuple = (),
              beta: float = 1.0, k: int = 1, prior: nn.Module | None = None) -> torch.Tensor:
    """-L_k summed over the batch, with L_k = ``iw_bound`` of log w_i = log p(x|z_i) +
    beta (log p(z_i) - log q(z_i|x)) (Burda et al., 2016).

    k = 1 is the ELBO with a one-sample estimate of the KL term, which any ``prior`` allows;
    beta != 1 weighs that term as the beta-VAE does (and KL annealing, step by step) (chapter 12).
    """
    mu, log_var = model.encode(x, *label)
    log_px, log_pz, log_q = log_weight_terms(model, x, label, mu, log_var, k, prior)
    return -iw_bound(log_px + beta * (log_pz - log_q)).sum()


def free_bits_loss(model: LatentVariableModel, x: torch.Tensor, label: tuple = (),
                   beta: float = 1.0, floor: float = 0.5) -> torch.Tensor:
    """The negative ELBO with free bits (Kingma et al., 2016), summed over the batch: each
    latent dimension's KL, averaged over the batch, counts as max(``floor``, KL_j), so the
    first ``floor`` nats of every dimension cost nothing (chapter 11)."""
    if floor < 0:
        raise ValueError(f"floor must be zero or positive, not {floor!r}.")
    logits, mu, log_var = model(x, *label)
    kl_j = kl_to_standard_normal(mu.unsqueeze(-1), log_var.unsqueeze(-1)).mean(0)
    return -model.log_likelihood(x, logits).sum() + len(x) * beta * kl_j.clamp(min=floor).sum()


def cyclical_kl_weight(step: int, steps_per_cycle: int, beta: float = 1.0,
                       ramp: float = 0.5) -> float:
    """The cyclical schedule of Fu et al. (2019): within each cycle of ``steps_per_cycle``
    steps the weight rises linearly from 0 to ``beta`` over the first ``ramp`` of the cycle,
    then stays at ``beta``. Pass ``lambda step: cyclical_kl_weight(step, n)`` as ``fit``'s beta.
    Chapter 11."""
    if steps_per_cycle < 1:
        raise ValueError(f"steps_per_cycle must be a positive integer, not {steps_per_cycle!r}.")
    if not 0 < ramp <= 1:
        raise ValueError(f"ramp must be in (0, 1], not {ramp!r}.")
    position = (step % steps_per_cycle) / steps_per_cycle
    return beta * min(1.0, position / ramp)


def gradient_snr(model: LatentVariableModel, x: torch.Tensor, k: int, repeats: int = 50,
                 prior: nn.Module | None = None, label: tuple = ()) -> dict[str, float]:
    """Signal-to-noise ratio |E[g]| / std[g] of the gradient of L_k (averaged over the batch
    ``x``) for each parameter, from ``repeats`` independent estimates, averaged over the
    parameters of the encoder (names starting "encoder") and of the decoder (the rest); the
    measure of Rainforth et al. (2018). Parameters whose estimates never vary are left out.
    Chapter 12.
    """
    return estimator_snr(partial(iwae_loss, k=k, prior=prior), model, x, repeats, label)


def estimator_snr(loss: Callable[..., torch.Tensor], model: LatentVariableModel,
                  x: torch.Tensor, repeats: int = 50, label: tuple = ()) -> dict[str, float]:
    """``gradient_snr`` for any surrogate ``loss(model, x, label)`` whose ``backward()`` leaves an
    estimator of the gradient in ``.grad`` (e.g. ``partial(dreg_loss, k=16)``): the SNR of each
    parameter's gradient of the loss averaged over the batch, from ``repeats`` estimates, averaged
    over the encoder's parameters and the decoder's. Chapters 12 and 15.
    """
    if repeats < 2:
        raise ValueError(f"repeats must be at least 2, not {repeats!r}.")
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    draws = []
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        (loss(model, x, label) / len(x)).backward()
        draws.append(torch.cat([p.grad.flatten() if p.grad is not None
                                else torch.zeros(p.numel(), device=p.device) for _, p in named]))
    model.zero_grad(set_to_none=True)
    draws = torch.stack(draws)
    snr = draws.mean(0).abs() / draws.std(0)
    parts = {"encoder": [], "decoder": []}
    for (name, _), values in zip(named, snr.split([p.numel() for _, p in named])):
        parts["encoder" if name.startswith("encoder") else "decoder"].append(values)
    result = {}
    for part, values in parts.items():
        values = torch.cat(values) if values else torch.empty(0)
        values = values[torch.isfinite(values)]
        result[part] = float(values.mean()) if len(values) else math.nan
    return result
