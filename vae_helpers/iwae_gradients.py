"""Lower-variance gradients of the importance-weighted bound L_k for the encoder: sticking the
landing (STL, Roeder et al., 2017) and doubly reparameterized gradients (DReG, Tucker et al.,
2019), each as a surrogate loss whose ``backward()`` leaves that estimator in ``.grad``
(``estimator_snr`` measures any of them).

Each loss is called like ``iwae_loss`` (``loss(model, x, label, beta)``, bind ``k`` with
``functools.partial``), draws its codes in the same order, so that with the same seed its value
equals ``iwae_loss``'s; only the encoder's gradient differs. Both are for the diagonal Gaussian
encoder of the book's models. Chapter 15.
"""

from __future__ import annotations

import torch
from torch import nn

from .losses import iw_bound, log_normal_diag, log_standard_normal
from .model import LatentVariableModel


def _log_weights_stopped(model: LatentVariableModel, x: torch.Tensor, label: tuple, beta: float,
                         k: int, prior: nn.Module | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Reparameterized codes z (k, batch, nz) and log w = log p(x|z) + beta (log p(z) -
    log q(z|x)), with q's parameters detached in log q: the encoder reaches log w through z
    alone (its path derivative)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}.")
    mu, log_var = model.encode(x, *label)
    z = mu + torch.exp(0.5 * log_var) * torch.randn((k, *mu.shape), device=mu.device)
    logits = model.decode(z, *[y.expand(k, -1) for y in label])
    log_pz = log_standard_normal(z) if prior is None else prior.log_prob(z)
    log_q = log_normal_diag(z, mu.detach(), log_var.detach())
    return z, model.log_likelihood(x.expand(k, -1, -1), logits) + beta * (log_pz - log_q)


def stl_loss(model: LatentVariableModel, x: torch.Tensor, label: tuple = (), beta: float = 1.0,
             k: int = 1, prior: nn.Module | None = None) -> torch.Tensor:
    """-L_k summed over the batch, with log q(z|x)'s parameters detached: the encoder's gradient
    drops the score term -sum_i w~_i d log q(z_i)/d phi (z held fixed) of the plain gradient.
    That term has mean zero for k = 1, so STL is unbiased there and has zero variance when q is
    the exact posterior; for k > 1 it is biased (Tucker et al., 2019). The decoder's gradient
    is the plain one (Roeder et al., 2017). Chapter 15."""
    _, log_w = _log_weights_stopped(model, x, label, beta, k, prior)
    return -iw_bound(log_w).sum()


def dreg_loss(model: LatentVariableModel, x: torch.Tensor, label: tuple = (), beta: float = 1.0,
              k: int = 1, prior: nn.Module | None = None) -> torch.Tensor:
    """-L_k summed over the batch, whose backward gives the DReG estimator (Tucker et al.,
    2019): the encoder gets sum_i w~_i^2 (d log w_i / d z_i)(d z_i / d phi), the score term
    replaced by its reparameterized equivalent (unbiased for every k), the decoder the plain
    sum_i w~_i d log w_i / d theta. A hook multiplies the gradient that reaches each code z_i
    by its normalized weight w~_i once more. Needs ``beta`` = 1 (true importance weights).
    Chapter 15."""
    if beta != 1:
        raise ValueError(f"DReG needs beta = 1 (importance weights), not {beta!r}.")
    z, log_w = _log_weights_stopped(model, x, label, beta, k, prior)
    normalized = torch.softmax(log_w.detach(), dim=0)      # w~_i, (k, batch)
    if z.requires_grad:
        z.register_hook(lambda grad: grad * normalized.unsqueeze(-1))
    return -iw_bound(log_w).sum()
