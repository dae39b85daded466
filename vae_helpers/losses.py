"""The probability pieces of the VAE objective, named after the maths.

All per-example quantities sum over dimensions and keep the batch axis, so that the original
tutorial's "sum over the batch" loss is ``negative_elbo(...).sum()``. Each has a
``torch.distributions`` twin, named in its docstring and checked in the tests.
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2.0 * math.pi)


def kl_to_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag(exp(log_var))) || N(0, I) ) per example, in closed form.

    = 1/2 * sum_j ( exp(log_var_j) + mu_j^2 - 1 - log_var_j ), which is
    ``kl_divergence(Normal(mu, exp(log_var / 2)), Normal(0, 1)).sum(-1)`` (chapter 3).
    """
    return 0.5 * (log_var.exp() + mu.pow(2) - 1.0 - log_var).sum(dim=-1)


class _BernoulliNLL(torch.autograd.Function):
    """-log p(x|z) summed over pixels: sum softplus(l) - x * l, with gradient sigmoid(l) - x.

    The same function as ``binary_cross_entropy_with_logits(...).sum(-1)``; written out because
    softplus(l) = max(l, 0) + log(1 + exp(-|l|)) and the gradient sigmoid(l) - x are cheaper than
    the library's log1p path on a CPU, and this term is a large share of a training step.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(logits, x)
        softplus = torch.relu(logits) + torch.log(1.0 + torch.exp(-logits.abs()))
        return (softplus - x * logits).sum(dim=-1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits, x = ctx.saved_tensors
        residual = torch.sigmoid(logits) - x
        grad_x = -logits * grad.unsqueeze(-1) if ctx.needs_input_grad[1] else None
        return residual * grad.unsqueeze(-1), grad_x


def log_bernoulli(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log p(x | z) per example for Bernoulli pixels with the given logits (x in [0, 1]).

    Equals ``-binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)`` and
    ``Bernoulli(logits=logits).log_prob(x).sum(-1)``: stable where the sigmoid saturates, unlike
    the original tutorial's ``binary_cross_entropy(sigmoid(logits), x)``. For x strictly between
    0 and 1 it is a cross-entropy, not the log of a normalized density (likelihood chapter).
    Chapter 4.
    """
    return -_BernoulliNLL.apply(logits, x.expand_as(logits))


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(log_var))) per example:
    ``Normal(mu, exp(log_var / 2)).log_prob(z).sum(-1)`` (chapter 3)."""
    return -0.5 * (LOG_2PI + log_var + (z - mu).pow(2) / log_var.exp()).sum(dim=-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) per example: ``Normal(0, 1).log_prob(z).sum(-1)`` (chapter 3)."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(dim=-1)


def negative_elbo(
    x: torch.Tensor,
    logits: torch.Tensor,
    mu: torch.Tensor,
    log_var: torch.Tensor,
    reduction: str = "sum",
    beta: float = 1.0,
    likelihood=None,
) -> torch.Tensor:
    """-ELBO = -E_q[log p(x|z)] + KL(q(z|x) || p(z)), one-sample estimate of the first term.

    ``reduction``: ``"sum"`` over the batch (the original tutorial's loss), ``"mean"``, or
    ``"none"``. ``beta`` weighs the KL term (the beta-VAE objective); beta = 1 is the ELBO.
    ``likelihood``: a model's ``PixelLikelihood`` (default: Bernoulli pixels, ``log_bernoulli``).
    Chapter 4.
    """
    log_px = log_bernoulli(x, logits) if likelihood is None else likelihood.log_prob(x, logits)
    per_example = -log_px + beta * kl_to_standard_normal(mu, log_var)
    if reduction == "none":
        return per_example
    if reduction == "sum":
        return per_example.sum()
    if reduction == "mean":
        return per_example.mean()
    raise ValueError(f"reduction must be 'sum', 'mean' or 'none', not {reduction!r}.")


def iw_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """Importance-weighted bound log (1/k) sum_i w_i from log-weights of shape (k, batch).

    With w_i = p(x, z_i) / q(z_i | x) and z_i ~ q(z|x) this is Burda et al.'s L_k <= log p(x).
    Chapter 7.
    """
    if not isinstance(log_weights, torch.Tensor) or log_weights.ndim < 1:
        raise ValueError("log_weights must be a tensor of shape (k, ...), one row per sample.")
    k = log_weights.shape[0]
    if k == 0:
        raise ValueError("log_weights is empty: L_k needs at least one sample (k >= 1).")
    return torch.logsumexp(log_weights, dim=0) - math.log(k)
