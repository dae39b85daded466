"""Kullback-Leibler divergences for the theory chapters: discrete, Gaussian, Monte Carlo."""

from __future__ import annotations

import math

import torch


def kl_discrete(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = sum_i p_i log(p_i / q_i) over the last axis, with 0 log 0 = 0.

    Infinite where q_i = 0 < p_i. Both must be probability vectors (non-negative, summing to 1).
    Chapter 2.
    """
    for name, dist in (("p", p), ("q", q)):
        if bool((dist < 0).any()) or not torch.allclose(
            dist.sum(-1), torch.ones((), dtype=dist.dtype), atol=1e-6
        ):
            raise ValueError(f"{name} must be non-negative and sum to 1 along its last axis.")
    terms = torch.where(p > 0, p * (torch.log(p) - torch.log(q)), torch.zeros_like(p))
    return terms.sum(-1)


def kl_gaussians(
    mean_q: torch.Tensor, var_q: torch.Tensor, mean_p: torch.Tensor, var_p: torch.Tensor
) -> torch.Tensor:
    """KL( N(mean_q, diag var_q) || N(mean_p, diag var_p) ), summed over the last axis.

    = 1/2 sum_j ( var_q/var_p + (mean_q - mean_p)^2 / var_p - 1 + log(var_p / var_q) ) (chapter 2).
    """
    ratio = var_q / var_p
    return 0.5 * (ratio + (mean_q - mean_p).pow(2) / var_p - 1.0 - torch.log(ratio)).sum(-1)


def kl_full_gaussians(
    mean_q: torch.Tensor, cov_q: torch.Tensor, mean_p: torch.Tensor, cov_p: torch.Tensor
) -> torch.Tensor:
    """KL( N(mean_q, cov_q) || N(mean_p, cov_p) ) for full covariance matrices.

    = 1/2 ( tr(cov_p^-1 cov_q) + (m_p - m_q)^T cov_p^-1 (m_p - m_q) - d
            + log(det cov_p / det cov_q) ) (chapter 8).
    """
    d = mean_q.shape[-1]
    diff = (mean_p - mean_q).unsqueeze(-1)
    trace = torch.linalg.solve(cov_p, cov_q).diagonal(dim1=-2, dim2=-1).sum(-1)
    mahalanobis = (diff.transpose(-1, -2) @ torch.linalg.solve(cov_p, diff)).squeeze(-1).squeeze(-1)
    log_dets = torch.logdet(cov_p) - torch.logdet(cov_q)
    return 0.5 * (trace + mahalanobis - d + log_dets)


def monte_carlo_kl(log_q, log_p, samples: torch.Tensor) -> tuple[float, float]:
    """Estimate KL(q || p) = E_q[log q - log p] from ``samples`` of q: (estimate, standard error).

    ``log_q`` and ``log_p`` map a batch of samples to their log densities (chapter 3).
    """
    values = log_q(samples) - log_p(samples)
    n = values.shape[0]
    return float(values.mean()), float(values.std()) / math.sqrt(n)
