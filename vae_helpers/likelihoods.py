"""What the decoder's 784 outputs mean: the pixel likelihood p(x | z) of each model.

Every model's decoder returns one real number ``a_i`` per pixel (a logit); the likelihood turns
those into log p(x | z) and into the pixel means shown in figures:

- ``"bernoulli"``: pixels in {0, 1} with P(x_i = 1) = sigmoid(a_i). A distribution for binary
  images; on grey levels in (0, 1) it is the original tutorial's cross-entropy, a surrogate
  that is not normalized (the likelihood chapter explains).
- ``"continuous_bernoulli"``: the normalized density on [0, 1] of Loaiza-Ganem & Cunningham
  (2019), ``torch.distributions.ContinuousBernoulli(logits=a)``.
- ``"gaussian"``: N(x_i; sigmoid(a_i), sigma^2), ``torch.distributions.Normal``, with one
  sigma for all pixels, fixed (``sigma=0.1``) or learned (``sigma=None``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .losses import log_bernoulli

LIKELIHOODS = ("bernoulli", "continuous_bernoulli", "gaussian")


class PixelLikelihood(nn.Module):
    """log p(x | z) summed over pixels, from the decoder's logits, and the pixel means."""

    name = "bernoulli"

    def log_prob(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """log p(x | z) per example (summed over the last axis); broadcasts x over samples."""
        return log_bernoulli(x, logits)

    def log_prob_pairs(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """log p(x_n | z_g) for every image n (rows of ``x``) and decoded code g (rows of
        ``logits``): shape (N, G), computed as matrix products, without an (N, G, 784) tensor.
        For Bernoulli pixels log p = x . a - sum softplus(a)."""
        return x @ logits.T - F.softplus(logits).sum(-1)

    def mean(self, logits: torch.Tensor) -> torch.Tensor:
        """E[x | z]: what figures show as the decoded image."""
        return torch.sigmoid(logits)

    def sample(self, logits: torch.Tensor, generator: torch.Generator | None = None):
        """One draw x ~ p(x | z) (the mean is a blurred summary of these)."""
        return torch.bernoulli(torch.sigmoid(logits), generator=generator)


class BernoulliPixels(PixelLikelihood):
    """Independent Bernoulli pixels: ``torch.distributions.Bernoulli(logits=a)``."""


class ContinuousBernoulliPixels(PixelLikelihood):
    """The continuous Bernoulli density on [0, 1]^784: the Bernoulli formula times C(lambda).

    With lambda = sigmoid(a), the normalizer is C = 2 artanh(1 - 2 lambda) / (1 - 2 lambda),
    which in terms of the logit is simply a / tanh(a / 2) (and 2 at a = 0).
    """

    name = "continuous_bernoulli"

    @staticmethod
    def log_normalizer(logits: torch.Tensor) -> torch.Tensor:
        """log C per pixel, stable everywhere: log(a / tanh(a/2)), Taylor-expanded near 0."""
        a = logits.abs()
        small = a < 1e-3
        safe = torch.where(small, torch.ones_like(a), a)
        exact = torch.log(safe) - torch.log(torch.tanh(safe / 2))
        return torch.where(small, math.log(2.0) + a.pow(2) / 12, exact)

    def log_prob(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return log_bernoulli(x, logits) + self.log_normalizer(logits).sum(-1)

    def log_prob_pairs(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return super().log_prob_pairs(x, logits) + self.log_normalizer(logits).sum(-1)

    def mean(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.distributions.ContinuousBernoulli(logits=logits, validate_args=False).mean

    def sample(self, logits: torch.Tensor, generator: torch.Generator | None = None):
        # Inverse-CDF sampling; torch's own sampler takes no generator.
        u = torch.rand(logits.shape, generator=generator, device=logits.device)
        return torch.distributions.ContinuousBernoulli(logits=logits, validate_args=False).icdf(u)


class GaussianPixels(PixelLikelihood):
    """N(x_i; sigmoid(a_i), sigma^2) per pixel, one sigma shared by all pixels.

    ``sigma`` fixed, or ``None`` to learn log sigma with the networks (started at 0.1).
    With sigma fixed, -log p(x|z) = ||x - mean||^2 / (2 sigma^2) + constant: a squared-error
    loss, and the ELBO becomes the beta-VAE objective with beta = 2 sigma^2 on that error.
    """

    name = "gaussian"

    def __init__(self, sigma: float | None = 0.1) -> None:
        super().__init__()
        if sigma is not None and not (isinstance(sigma, (int, float)) and sigma > 0):
            raise ValueError(f"sigma must be a positive number or None (learned), not {sigma!r}.")
        self.learned = sigma is None
        start = torch.tensor(math.log(0.1 if sigma is None else float(sigma)))
        if self.learned:
            self.log_sigma = nn.Parameter(start)
        else:
            self.register_buffer("log_sigma", start)

    @property
    def sigma(self) -> float:
        return float(self.log_sigma.detach().exp())

    def log_prob(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        mean = torch.sigmoid(logits)
        squared = (x - mean).pow(2) * torch.exp(-2 * self.log_sigma)
        return -(0.5 * squared + self.log_sigma + 0.5 * math.log(2 * math.pi)).sum(-1)

    def log_prob_pairs(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        mean = torch.sigmoid(logits)
        squared = (x.pow(2).sum(-1, keepdim=True) - 2 * x @ mean.T + mean.pow(2).sum(-1))
        constant = x.shape[-1] * (self.log_sigma + 0.5 * math.log(2 * math.pi))
        return -0.5 * squared * torch.exp(-2 * self.log_sigma) - constant

    def sample(self, logits: torch.Tensor, generator: torch.Generator | None = None):
        noise = torch.randn(logits.shape, generator=generator, device=logits.device)
        return torch.sigmoid(logits) + self.log_sigma.exp() * noise


def make_likelihood(name: str = "bernoulli", sigma: float | None = 0.1) -> PixelLikelihood:
    """The pixel likelihood called ``name`` (``sigma`` only matters for ``"gaussian"``)."""
    if name == "bernoulli":
        return BernoulliPixels()
    if name == "continuous_bernoulli":
        return ContinuousBernoulliPixels()
    if name == "gaussian":
        return GaussianPixels(sigma)
    raise ValueError(f"likelihood must be one of {LIKELIHOODS}, not {name!r}.")
