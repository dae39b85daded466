"""An MLP VAE as deep as the convolutional one: the control of chapter 10's comparison.

``ConvVAE`` has three hidden layers in its encoder (two convolutions, one linear layer) and
four weight layers in its decoder (two linear, two transposed convolutions); the tutorial's
``VAE`` has one hidden layer in each network. ``DeepVAE`` has ``depth`` fully connected hidden
ReLU layers of width ``nh`` in each network, so with ``depth=3`` it matches the convolutional
model layer for layer while sharing no weights across pixel positions. Chapter 10 trains it
beside the others; ``benchmarks/architectures.py`` repeats that over seeds.
"""

from __future__ import annotations

import torch
from torch import nn

from .data import NX
from .errors import check_integers
from .model import LatentVariableModel


def _hidden_layers(n_in: int, nh: int, depth: int) -> nn.Sequential:
    """``depth`` linear layers of width ``nh``, each followed by a ReLU."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(n_in if i == 0 else nh, nh), nn.ReLU()]
    return nn.Sequential(*layers)


class DeepVAE(LatentVariableModel):
    """MLP encoder and decoder with ``depth`` hidden ReLU layers each (the tutorial's ``VAE`` is
    ``depth=1``): x -> nh -> ... -> nh -> (mu, log_var) and z -> nh -> ... -> nh -> logits.
    Chapter 10 trains it, with ``depth=3``, as the convolutional model's depth-matched control."""

    def __init__(self, nx: int = NX, nh: int = 512, nz: int = 2, depth: int = 3,
                 likelihood: str = "bernoulli", sigma: float | str | None = 0.1) -> None:
        super().__init__()
        check_integers(nx=nx, nh=nh, nz=nz, depth=depth)
        self.nx, self.nh, self.nz, self.depth = nx, nh, nz, depth
        self._set_likelihood(likelihood, sigma)
        self.encoder_hidden = _hidden_layers(nx, nh, depth)
        self.encoder_mu = nn.Linear(nh, nz)
        self.encoder_log_var = nn.Linear(nh, nz)
        self.decoder_hidden = _hidden_layers(nz, nh, depth)
        self.decoder_logits = nn.Linear(nh, nx)

    @property
    def sizes(self) -> dict[str, int]:
        return {"nx": self.nx, "nh": self.nh, "nz": self.nz, "depth": self.depth}

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z|x) = N(mu, diag(exp(log_var))) for a (batch, nx) input."""
        self._check_x(x)
        h = self.encoder_hidden(x)
        return self.encoder_mu(h), self.encoder_log_var(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of p(x|z) for a (..., nz) latent."""
        self._check_z(z)
        return self.decoder_logits(self.decoder_hidden(z))

