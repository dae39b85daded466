"""Posteriors beyond the diagonal Gaussian: a full-covariance Gaussian (its Cholesky factor),
planar flows (Rezende & Mohamed, 2015) and an inverse autoregressive flow (Kingma et al., 2016).

A flow step is a module ``step(z, h) -> (z', log_det)``: an invertible map of the codes z
(shape (..., batch, nz)) that may read the encoder's hidden features h (batch, nh), with
log_det = log |det dz'/dz| per code. By the change of variables, log q(z') = log q(z) - log_det.
``FlowVAE`` is the book's MLP VAE whose encoder's Gaussian is followed by such steps; its
``posterior(x, k)`` returns k draws per image with their log-density. Chapter 15.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .data import NX
from .errors import check_integers
from .losses import LOG_2PI, log_normal_diag, log_standard_normal
from .model import VAE

PLANAR_IDENTITY = math.log(math.e - 1)  # w.u at which the invertible u_hat of a planar step is 0


def scale_tril(log_diagonal: torch.Tensor, off_diagonal: torch.Tensor) -> torch.Tensor:
    """The lower-triangular L (..., nz, nz) with diagonal exp(``log_diagonal``) (..., nz) and the
    nz(nz - 1)/2 entries below it from ``off_diagonal``, row by row: a Cholesky factor, so that
    L L^T is a covariance and every covariance has one. Chapter 15."""
    nz = log_diagonal.shape[-1]
    if off_diagonal.shape[-1] != nz * (nz - 1) // 2:
        raise ValueError(f"off_diagonal needs {nz * (nz - 1) // 2} entries for nz = {nz}, not "
                         f"{off_diagonal.shape[-1]}.")
    rows, columns = torch.tril_indices(nz, nz, offset=-1, device=log_diagonal.device)
    below = off_diagonal.new_zeros((*off_diagonal.shape[:-1], nz, nz))
    below[..., rows, columns] = off_diagonal
    return below + torch.diag_embed(log_diagonal.exp())


def log_normal_full(z: torch.Tensor, mu: torch.Tensor, scale_tril: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, L L^T) per code, with ``scale_tril`` = L lower triangular:
    ``MultivariateNormal(mu, scale_tril=L).log_prob(z)``. With z = mu + L eps it is
    log N(eps; 0, I) - sum_j log L_jj (chapter 15)."""
    eps = torch.linalg.solve_triangular(scale_tril, (z - mu).unsqueeze(-1), upper=False)
    log_diagonal = scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return log_standard_normal(eps.squeeze(-1)) - log_diagonal


def planar_flow(z: torch.Tensor, u: torch.Tensor, w: torch.Tensor, b: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """One planar step z' = z + u_hat tanh(w.z + b) and its log |det dz'/dz| =
    log |1 + u_hat.w (1 - tanh^2(w.z + b))|. ``u``, ``w`` (..., nz) and ``b`` (...) broadcast
    against z; u_hat = u + (softplus(w.u) - 1 - w.u) w / |w|^2 makes w.u_hat > -1, so the step
    is invertible (Rezende & Mohamed, 2015, appendix A). Chapter 15."""
    wu = (w * u).sum(-1, keepdim=True)
    u_hat = u + (F.softplus(wu) - 1 - wu) * w / w.pow(2).sum(-1, keepdim=True)
    activation = torch.tanh((w * z).sum(-1) + b)
    slope = 1 - activation.pow(2)
    log_det = torch.log((1 + slope * (u_hat * w).sum(-1)).abs())
    return z + u_hat * activation.unsqueeze(-1), log_det


class PlanarStep(nn.Module):
    """A planar step whose u, w, b are read from the encoder's hidden features h (amortized, as
    Rezende & Mohamed do): one linear layer nh -> 2 nz + 1. Its weights start at zero and its
    bias at a random unit w with w.u = log(e - 1), where u_hat = 0: the step starts as the
    identity. Chapter 15."""

    def __init__(self, nh: int, nz: int) -> None:
        super().__init__()
        check_integers(nh=nh, nz=nz)
        self.nz = nz
        self.parameters_from_h = nn.Linear(nh, 2 * nz + 1)
        w = torch.randn(nz)
        w = w / w.norm()
        with torch.no_grad():
            self.parameters_from_h.weight.zero_()
            self.parameters_from_h.bias.copy_(torch.cat([PLANAR_IDENTITY * w, w, torch.zeros(1)]))

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u, w, b = self.parameters_from_h(h).split([self.nz, self.nz, 1], dim=-1)
        return planar_flow(z, u, w, b.squeeze(-1))


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 ``mask`` (out, in): output o
    sees input i only where mask[o, i] = 1 (MADE, Germain et al., 2015). Chapter 15."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class IAFStep(nn.Module):
    """One step of an inverse autoregressive flow: z'_j = m_j + exp(s_j) z_j, where (m_j, s_j)
    depend only on z_1..z_{j-1} (and on the encoder's features h, through ``context`` inputs),
    computed by a masked network (MADE). dz'/dz is lower triangular with diagonal exp(s), so
    log_det = sum_j s_j, and all nz outputs come from one pass. ``reverse`` runs the same in
    the reversed order of the coordinates (it flips them before and after; dz'/dz is then upper
    triangular), so that stacked steps alternate which coordinate comes first. The output layer
    starts at zero: the step starts as the identity
    (Kingma et al., 2016, use z' = sigma z + (1 - sigma) m with sigma = sigmoid(s), a bounded
    variant). Chapter 15."""

    def __init__(self, nz: int, hidden: int = 64, context: int = 0, reverse: bool = False
                 ) -> None:
        super().__init__()
        check_integers(nz=nz, hidden=hidden)
        check_integers(0, context=context)
        if nz < 2:
            raise ValueError("an autoregressive step needs nz >= 2.")
        self.nz, self.reverse = nz, reverse
        inputs = torch.arange(1, nz + 1)                 # input j has degree j
        degrees = torch.arange(hidden) % (nz - 1) + 1    # hidden degrees cycle over 1..nz-1
        self.hidden_layer = MaskedLinear((degrees[:, None] >= inputs[None, :]).float())
        outputs = inputs.repeat(2)                       # (m_1..m_nz, s_1..s_nz)
        self.output_layer = MaskedLinear((outputs[:, None] > degrees[None, :]).float())
        self.context_layer = nn.Linear(context, hidden, bias=False) if context else None
        with torch.no_grad():
            self.output_layer.weight.zero_()
            self.output_layer.bias.zero_()

    def forward(self, z: torch.Tensor, h: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.reverse:
            z = z.flip(-1)
        hidden = self.hidden_layer(z)
        if self.context_layer is not None:
            hidden = hidden + self.context_layer(h)
        m, s = self.output_layer(torch.relu(hidden)).chunk(2, dim=-1)
        moved = m + s.exp() * z
        return (moved.flip(-1) if self.reverse else moved), s.sum(-1)


class FlowVAE(VAE):
    """The MLP VAE (chapter 4) with a richer q(z|x): the encoder's N(mu, diag sigma^2), or with
    ``full_covariance`` N(mu, L L^T) for L = ``scale_tril``(log sigma, one more linear layer of
    h), followed by the flow ``steps`` (modules ``step(z, h)``, e.g. ``PlanarStep``,
    ``IAFStep``). The new layers' names start with "encoder", like the encoder's, and the
    off-diagonal layer starts at zero: loaded with a VAE's state dict (``strict=False``), the
    model starts with that VAE's q(z|x). ``encode`` still returns only the base (mu, log_var).
    Chapter 15."""

    def __init__(self, nx: int = NX, nh: int = 512, nz: int = 2, full_covariance: bool = False,
                 steps: tuple[nn.Module, ...] | list[nn.Module] = ()) -> None:
        super().__init__(nx=nx, nh=nh, nz=nz)
        self.full_covariance = full_covariance
        self.encoder_off_diagonal = nn.Linear(nh, nz * (nz - 1) // 2) if full_covariance else None
        if self.encoder_off_diagonal is not None:
            nn.init.zeros_(self.encoder_off_diagonal.weight)
            nn.init.zeros_(self.encoder_off_diagonal.bias)
        self.encoder_steps = nn.ModuleList(steps)

    def posterior(self, x: torch.Tensor, k: int = 1, eps: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """k reparameterized draws z ~ q(z|x) per image, (k, batch, nz), and log q(z|x),
        (k, batch); ``eps`` (k, batch, nz), when given, is the standard normal noise to use."""
        check_integers(k=k)
        self._check_x(x)
        h = torch.relu(self.encoder_hidden(x))
        mu, log_var = self.encoder_mu(h), self.encoder_log_var(h)
        if eps is None:
            eps = torch.randn((k, *mu.shape), device=mu.device, dtype=mu.dtype)
        if self.encoder_off_diagonal is None:
            z = mu + torch.exp(0.5 * log_var) * eps
            log_q = log_normal_diag(z, mu, log_var)
        else:
            factor = scale_tril(0.5 * log_var, self.encoder_off_diagonal(h))
            z = mu + (factor @ eps.unsqueeze(-1)).squeeze(-1)
            log_q = -0.5 * (LOG_2PI + eps.pow(2)).sum(-1) - 0.5 * log_var.sum(-1)
        for step in self.encoder_steps:
            z, log_det = step(z, h)
            log_q = log_q - log_det
        return z, log_q

    def log_weights(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x) for k draws from ``posterior``,
        (k, batch), differentiable: their mean is an ELBO estimate and ``iw_bound`` of them is
        L_k."""
        z, log_q = self.posterior(x, k)
        return (self.log_likelihood(x.expand(k, -1, -1), self.decode(z))
                + log_standard_normal(z) - log_q)
