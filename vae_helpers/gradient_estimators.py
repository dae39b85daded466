"""Two ways to estimate d/d mu E_{z ~ N(mu, sigma^2)}[f(z)]: reparameterization and score function.

Both are unbiased; the theory chapter compares their variance, with and without a baseline.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def reparameterization_gradients(
    f: Callable[[torch.Tensor], torch.Tensor],
    mu: float,
    sigma: float,
    n: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """n single-sample estimates of the gradient, each d f(mu + sigma * eps) / d mu by autograd.
    Chapter 3."""
    mu_t = torch.full((n,), float(mu), dtype=torch.float64, requires_grad=True)
    eps = torch.randn(n, generator=generator, dtype=torch.float64)
    f(mu_t + sigma * eps).sum().backward()
    return mu_t.grad


def score_function_gradients(
    f: Callable[[torch.Tensor], torch.Tensor],
    mu: float,
    sigma: float,
    n: int,
    generator: torch.Generator | None = None,
    baseline: float = 0.0,
) -> torch.Tensor:
    """n single-sample REINFORCE estimates (f(z) - b) * d log N(z; mu, sigma^2) / d mu.

    The score d/d mu log N(z; mu, sigma^2) = (z - mu) / sigma^2 needs no gradient of f at all.
    Any constant ``baseline`` b keeps the estimate unbiased, since the score has mean zero; a
    good one (a control variate) removes most of its variance (chapter 3).
    """
    z = mu + sigma * torch.randn(n, generator=generator, dtype=torch.float64)
    return (f(z) - baseline) * (z - mu) / sigma**2
