"""Held-out numbers: the test negative ELBO and importance-weighted estimates of log p(x)."""

from __future__ import annotations

import torch

from .data import check_images
from .losses import iw_bound, log_bernoulli, log_normal_diag, log_standard_normal, negative_elbo
from .model import VAE


@torch.no_grad()
def mean_negative_elbo(model: VAE, images: torch.Tensor, batch_size: int = 2000) -> float:
    """Average per-example negative ELBO (one z sample per example) over ``images``."""
    check_images(images, model.nx, "images")
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=images.device)
    for x in images.split(batch_size):
        logits, mu, log_var = model(x)
        total += negative_elbo(x, logits, mu, log_var)
    model.train(was_training)
    return float(total) / images.shape[0]


@torch.no_grad()
def iw_log_likelihood(model: VAE, images: torch.Tensor, k: int, max_samples: int = 50_000) -> float:
    """Average importance-weighted bound L_k on log p(x) with ``k`` samples from q(z|x).

    k = 1 gives a (stochastic) ELBO; L_k increases towards log p(x) as k grows. Images are
    processed in chunks of at most ``max_samples`` decoded samples, to bound memory.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}.")
    check_images(images, model.nx, "images")
    total = torch.zeros((), device=images.device)
    for x in images.split(max(1, max_samples // k)):
        mu, log_var = model.encode(x)
        std = torch.exp(0.5 * log_var)
        z = mu + std * torch.randn((k, *mu.shape), device=mu.device)  # (k, batch, nz)
        logits = model.decode(z)
        log_w = (
            log_bernoulli(x.expand(k, -1, -1), logits)
            + log_standard_normal(z)
            - log_normal_diag(z, mu, log_var)
        )
        total += iw_bound(log_w).sum()
    return float(total) / images.shape[0]
