"""A latent-variable model whose log p(x) and posterior are exact: the linear-Gaussian model.

    z ~ N(0, I_d),    x | z ~ N(W z + b, sigma^2 I_D)

Then p(x) = N(b, W W^T + sigma^2 I) and p(z | x) = N(m, S) with S = (I + W^T W / sigma^2)^-1 and
m = S W^T (x - b) / sigma^2. The theory chapter checks the ELBO against these exact answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .divergences import kl_full_gaussians


@dataclass(frozen=True)
class LinearGaussian:
    """Parameters ``weight`` W (D, d), ``bias`` b (D,) and ``noise_std`` sigma (chapter 1)."""

    weight: torch.Tensor
    bias: torch.Tensor
    noise_std: float

    @property
    def latent_dim(self) -> int:
        return self.weight.shape[1]

    def marginal(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and covariance of p(x)."""
        eye = torch.eye(self.weight.shape[0], dtype=self.weight.dtype)
        return self.bias, self.weight @ self.weight.T + self.noise_std**2 * eye

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x)."""
        mean, cov = self.marginal()
        return torch.distributions.MultivariateNormal(mean, cov).log_prob(x)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and covariance of the exact posterior p(z | x)."""
        s2 = self.noise_std**2
        eye = torch.eye(self.latent_dim, dtype=self.weight.dtype)
        cov = torch.linalg.inv(eye + self.weight.T @ self.weight / s2)
        return cov @ self.weight.T @ (x - self.bias) / s2, cov

    def elbo(self, x: torch.Tensor, q_mean: torch.Tensor, q_cov: torch.Tensor) -> torch.Tensor:
        """ELBO(q) = E_q[log p(x|z)] - KL(q(z) || p(z)) in closed form, for q = N(q_mean, q_cov)."""
        s2, data_dim = self.noise_std**2, self.weight.shape[0]
        residual = x - self.weight @ q_mean - self.bias
        spread = torch.trace(self.weight @ q_cov @ self.weight.T)
        expected_log_lik = -0.5 * data_dim * math.log(2 * math.pi * s2) - (
            residual @ residual + spread
        ) / (2 * s2)
        zeros = torch.zeros_like(q_mean)
        prior_cov = torch.eye(self.latent_dim, dtype=q_cov.dtype)
        return expected_log_lik - kl_full_gaussians(q_mean, q_cov, zeros, prior_cov)

    def posterior_gap(self, x: torch.Tensor, q_mean: torch.Tensor, q_cov: torch.Tensor):
        """KL(q(z) || p(z | x)): what the ELBO falls short of log p(x) by."""
        post_mean, post_cov = self.posterior(x)
        return kl_full_gaussians(q_mean, q_cov, post_mean, post_cov)


def random_linear_gaussian(
    data_dim: int = 2, latent_dim: int = 1, noise_std: float = 0.5, seed: int = 0
) -> LinearGaussian:
    """A linear-Gaussian model with random W and b (float64, seeded) (chapter 1)."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(data_dim, latent_dim, generator=generator, dtype=torch.float64)
    bias = torch.randn(data_dim, generator=generator, dtype=torch.float64)
    return LinearGaussian(weight, bias, noise_std)
