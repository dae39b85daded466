"""A VAE whose decoder also sees the image: each pixel's logit adds a linear function of the
pixels before it (raster order) to what the code says. Strong enough to do without z, it is the
posterior-collapse chapter's model.

    log p(x | z) = sum_i log Bernoulli(x_i; sigmoid(g(z)_i + sum_{j<i} A_ij x_j + c_i))

With ``delta`` > 0 it is a delta-VAE (Razavi et al., 2019): the posterior variances are capped
below 1, so that KL(q(z_j|x) || N(0, 1)) >= ``delta`` for every dimension and every x, and the
rate can never collapse to zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .data import NX
from .errors import check_numbers
from .model import VAE


def committed_rate_log_var(delta: float) -> float:
    """The largest log-variance s with KL(N(m, e^s) || N(0, 1)) >= ``delta`` for every mean m.

    The KL at m = 0 is (e^s - 1 - s) / 2, which falls to 0 as s rises to 0; this solves
    (e^s - 1 - s) / 2 = delta for s < 0 by bisection (chapter 11).
    """
    check_numbers(delta=delta)
    low, high = -2.0 * delta - 2.0, 0.0  # (e^s - 1 - s) / 2 >= delta at s = -2 delta - 2
    for _ in range(100):
        middle = 0.5 * (low + high)
        if 0.5 * (math.exp(middle) - 1.0 - middle) > delta:
            low = middle
        else:
            high = middle
    return low


class AutoregressiveVAE(VAE):
    """``VAE``'s MLP encoder and decoder, with a masked linear map of the image (each pixel sees
    only the pixels before it) added to the logits decoded from z (chapter 11).

    ``decode(z, x)`` needs the image, as a teacher-forced autoregressive decoder does; ``sample``
    draws the pixels one at a time. ``delta`` > 0 caps the posterior variances (delta-VAE).
    ``fit``, ``rate_and_distortion``, ``kl_per_dimension``, ``active_units`` and the checkpoints
    take it; the helpers that decode codes alone (``iw_log_likelihood``, plots) do not.
    """

    def __init__(self, nx: int = NX, nh: int = 512, nz: int = 16, delta: float = 0.0) -> None:
        super().__init__(nx, nh, nz)
        check_numbers(strict=False, delta=delta)
        self.delta = float(delta)
        self.max_log_var = committed_rate_log_var(delta) if delta > 0 else None
        self.autoregressive = nn.Linear(nx, nx, bias=False)
        nn.init.zeros_(self.autoregressive.weight)
        self.register_buffer("mask", torch.ones(nx, nx).tril(diagonal=-1))

    @property
    def config(self) -> dict[str, int | float]:
        return {**self.sizes, "delta": self.delta}

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z|x); with ``delta`` > 0 the log-variances stay below the cap."""
        mu, log_var = super().encode(x)
        if self.max_log_var is not None:
            log_var = self.max_log_var - F.softplus(self.max_log_var - log_var)
        return mu, log_var

    def decode(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits of p(x|z): the code's part plus the masked linear map of the pixels ``x``."""
        self._check_z(z)
        self._check_x(x.reshape(-1, x.shape[-1]))
        from_code = self.decoder_logits(torch.relu(self.decoder_hidden(z)))
        return from_code + F.linear(x, self.autoregressive.weight * self.mask)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, log_var = self.encode(x)
        return self.decode(self.reparameterize(mu, log_var), x), mu, log_var

    def param_groups(self, lr: float = 1e-3, autoregressive_lr: float = 3e-2) -> list[dict]:
        """Parameter groups for an optimizer: the autoregressive weights with their own, larger
        learning rate (a 784 x 784 map learns slowly at the usual step), the rest with ``lr``."""
        rest = [p for name, p in self.named_parameters() if name != "autoregressive.weight"]
        return [{"params": rest, "lr": lr},
                {"params": [self.autoregressive.weight], "lr": autoregressive_lr}]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Pixel means given the posterior mean and the true previous pixels (teacher forcing)."""
        mu, _ = self.encode(x)
        return self.likelihood.mean(self.decode(mu, x))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               pixels: str = "draw") -> torch.Tensor:
        """``n`` images from z ~ N(0, I), one pixel at a time, each drawn given those before it.

        ``pixels="mean"`` feeds each pixel's mean instead of a draw to the pixels after it.
        """
        if pixels not in ("mean", "draw"):
            raise ValueError(f"pixels must be 'mean' or 'draw', not {pixels!r}.")
        device = self.mask.device
        z = torch.randn(n, self.nz, generator=generator, device=device)
        from_code = self.decoder_logits(torch.relu(self.decoder_hidden(z)))
        weight = self.autoregressive.weight * self.mask
        x = torch.zeros(n, self.nx, device=device)
        for i in range(self.nx):
            p = torch.sigmoid(from_code[:, i] + x @ weight[i])
            x[:, i] = p if pixels == "mean" else torch.bernoulli(p, generator=generator)
        return x
