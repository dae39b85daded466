"""The seed's MLP variational autoencoder: 784 -> 512 -> (mu, log_var) in R^nz -> 512 -> 784."""

from __future__ import annotations

import torch
from torch import nn

from .data import NX, check_images


class VAE(nn.Module):
    """Gaussian encoder q(z|x) and Bernoulli decoder p(x|z), each one hidden ReLU layer.

    ``decode`` returns logits; the sigmoid is folded into the loss (BCE with logits), which is
    exact and numerically stable. ``probabilities`` applies it when pixels are wanted.
    """

    def __init__(self, nx: int = NX, nh: int = 512, nz: int = 2) -> None:
        super().__init__()
        for name, value in (("nx", nx), ("nh", nh), ("nz", nz)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}.")
        self.nx, self.nh, self.nz = nx, nh, nz
        self.encoder_hidden = nn.Linear(nx, nh)
        self.encoder_mu = nn.Linear(nh, nz)
        self.encoder_log_var = nn.Linear(nh, nz)
        self.decoder_hidden = nn.Linear(nz, nh)
        self.decoder_logits = nn.Linear(nh, nx)

    @property
    def config(self) -> dict[str, int]:
        """The sizes that rebuild this architecture: ``VAE(**model.config)``."""
        return {"nx": self.nx, "nh": self.nh, "nz": self.nz}

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z|x) = N(mu, diag(exp(log_var))) for a (batch, nx) input."""
        if x.ndim != 2 or x.shape[-1] != self.nx:
            raise ValueError(f"x must have shape (batch, {self.nx}), not {tuple(x.shape)}.")
        h = torch.relu(self.encoder_hidden(x))
        return self.encoder_mu(h), self.encoder_log_var(h)

    @staticmethod
    def reparameterize(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """A sample z = mu + sigma * eps with eps ~ N(0, I): differentiable in mu and log_var."""
        return mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of the Bernoulli p(x|z) for a (batch, nz) latent."""
        if z.shape[-1] != self.nz:
            raise ValueError(f"z must have shape (..., {self.nz}), not {tuple(z.shape)}.")
        return self.decoder_logits(torch.relu(self.decoder_hidden(z)))

    def probabilities(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel means sigmoid(decode(z)) in [0, 1]."""
        return torch.sigmoid(self.decode(z))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, mu, log_var) for one reparameterized sample per example."""
        mu, log_var = self.encode(x)
        return self.decode(self.reparameterize(mu, log_var)), mu, log_var

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Pixel means decoded from the posterior mean: a deterministic reconstruction."""
        check_images(x, self.nx)
        mu, _ = self.encode(x)
        return self.probabilities(mu)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pixel means of ``n`` draws z ~ p(z) = N(0, I)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.nz, generator=generator, device=device)
        return self.probabilities(z)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
