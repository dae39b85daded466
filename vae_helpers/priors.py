"""Priors p(z) as modules with ``log_prob`` and ``sample``: the standard normal every chapter
has used so far, and a learned mixture of Gaussians (Tomczak & Welling, 2018, compare it with
their VampPrior). A learned prior is trained with the model: pass its parameters to the
optimizer as well.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .errors import check_integers
from .losses import log_normal_diag, log_standard_normal


class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I) in ``nz`` dimensions; no parameters (chapter 12)."""

    def __init__(self, nz: int) -> None:
        super().__init__()
        check_integers(nz=nz)
        self.nz = nz

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) per code (summed over the last axis): ``log_standard_normal``."""
        return log_standard_normal(z)

    def sample(self, n: int, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
        """``n`` codes z ~ N(0, I), shape (n, nz)."""
        return torch.randn(n, self.nz, generator=generator, device=device)


class MixturePrior(nn.Module):
    """p(z) = sum_k pi_k N(z; m_k, diag(exp(v_k))), with the weights pi, means m and
    log-variances v learned. ``components`` Gaussians in ``nz`` dimensions; the means start at
    draws from N(0, I) (from ``torch``'s global generator) and the variances at 1 (chapter 12).
    """

    def __init__(self, nz: int, components: int = 10) -> None:
        super().__init__()
        check_integers(nz=nz, components=components)
        self.nz, self.components = nz, components
        self.means = nn.Parameter(torch.randn(components, nz))
        self.log_vars = nn.Parameter(torch.zeros(components, nz))
        self.weight_logits = nn.Parameter(torch.zeros(components))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) per code: log sum_k pi_k N(z; m_k, e^v_k), by log-sum-exp."""
        if z.shape[-1] != self.nz:
            raise ValueError(f"z must have shape (..., {self.nz}), not {tuple(z.shape)}.")
        per_component = log_normal_diag(z.unsqueeze(-2), self.means, self.log_vars)
        return torch.logsumexp(per_component + torch.log_softmax(self.weight_logits, 0), dim=-1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
        """``n`` codes: a component drawn by its weight, then a Gaussian draw from it."""
        device = device or self.means.device
        weights = torch.softmax(self.weight_logits, 0).to(device)
        k = torch.multinomial(weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.nz, generator=generator, device=device)
        return self.means[k] + torch.exp(0.5 * self.log_vars[k]) * noise


def aggregate_log_density(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor,
                          chunk: int = 1024) -> torch.Tensor:
    """log q(z) of the aggregate posterior q(z) = (1/N) sum_n N(z; mu_n, diag(e^log_var_n)) at
    each code of ``z`` (m, nz), from the N encodings ``mu``, ``log_var`` (N, nz) of a data set.
    Chapter 12.
    """
    if mu.shape != log_var.shape or z.shape[-1] != mu.shape[-1]:
        raise ValueError(f"mu and log_var must share a shape (N, nz) with z's last axis; got "
                         f"{tuple(mu.shape)}, {tuple(log_var.shape)} and {tuple(z.shape)}.")
    parts = [torch.logsumexp(log_normal_diag(block.unsqueeze(1), mu, log_var), dim=1)
             for block in z.split(chunk)]
    return torch.cat(parts) - math.log(len(mu))
