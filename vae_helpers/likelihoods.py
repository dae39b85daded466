"""What the decoder's 784 outputs mean: the pixel likelihood p(x | z) of each model.

Every model's decoder returns one real number ``a_i`` per pixel (a logit); the likelihood turns
those into log p(x | z) and into the pixel means shown in figures:

- ``"bernoulli"``: pixels in {0, 1} with P(x_i = 1) = sigmoid(a_i). A distribution for binary
  images; on gray levels in (0, 1) it is the original tutorial's cross-entropy, a surrogate
  that is not normalized (the likelihood chapter explains).
- ``"continuous_bernoulli"``: the normalized density on [0, 1] of Loaiza-Ganem & Cunningham
  (2019), ``torch.distributions.ContinuousBernoulli(logits=a)``.
- ``"gaussian"``: N(x_i; sigmoid(a_i), sigma^2), ``torch.distributions.Normal``, with one
  sigma for all pixels, fixed (``sigma=0.1``), learned by gradient (``sigma=None``) or set to
  its optimum for each batch (``sigma="calibrated"``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .losses import log_bernoulli

LIKELIHOODS = ("bernoulli", "continuous_bernoulli", "gaussian")


class PixelLikelihood(nn.Module):
    """What a pixel likelihood provides: log p(x | z) summed over pixels, from the decoder's
    logits, for matched and for all pairs of images and codes; the pixel means; draws.
    Chapter 6."""

    name: str

    def log_prob(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """log p(x | z) per example (summed over the last axis); broadcasts x over samples."""
        raise NotImplementedError

    def log_prob_pairs(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """log p(x_n | z_g) for every image n (rows of ``x``) and decoded code g (rows of
        ``logits``): shape (N, G), computed as matrix products, without an (N, G, 784) tensor."""
        raise NotImplementedError

    def mean(self, logits: torch.Tensor) -> torch.Tensor:
        """E[x | z]: what figures show as the decoded image."""
        raise NotImplementedError

    def sample(self, logits: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw x ~ p(x | z) (the mean is a blurred summary of these)."""
        raise NotImplementedError


class BernoulliPixels(PixelLikelihood):
    """Independent Bernoulli pixels: ``torch.distributions.Bernoulli(logits=a)`` (chapter 6)."""

    name = "bernoulli"

    def log_prob(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return log_bernoulli(x, logits)

    def log_prob_pairs(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return x @ logits.T - F.softplus(logits).sum(-1)  # x . a - sum softplus(a)

    def mean(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)

    def sample(self, logits: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(logits), generator=generator)


class ContinuousBernoulliPixels(BernoulliPixels):
    """The continuous Bernoulli density on [0, 1]^784: the Bernoulli formula times C(lambda).

    With lambda = sigmoid(a), the normalizer is C = 2 artanh(1 - 2 lambda) / (1 - 2 lambda),
    which in terms of the logit is simply a / tanh(a / 2) (and 2 at a = 0) (chapter 6).
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

    def sample(self, logits: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
        # Inverse-CDF sampling; torch's own sampler takes no generator.
        u = torch.rand(logits.shape, generator=generator, device=logits.device)
        return torch.distributions.ContinuousBernoulli(logits=logits, validate_args=False).icdf(u)


class GaussianPixels(PixelLikelihood):
    """N(x_i; sigmoid(a_i), sigma^2) per pixel, one sigma shared by all pixels.

    ``sigma``: a number (fixed); ``None`` (log sigma learned by gradient steps with the
    networks, started at 0.1); or ``"calibrated"``: in training, each batch uses the sigma that is
    optimal for it, sigma^2 = its mean squared error per pixel (Rybkin et al. 2021), and a running
    average of those (over the last twenty batches or so) is kept for evaluation. With sigma
    fixed, -log p(x|z) = ||x - mean||^2 / (2 sigma^2) + constant: a squared-error loss, and the
    ELBO becomes the beta-VAE objective with beta = 2 sigma^2 on that error (chapter 6).
    """

    name = "gaussian"
    CALIBRATION_RATE = 0.05  # weight of each training batch in the running sigma

    def __init__(self, sigma: float | str | None = 0.1) -> None:
        super().__init__()
        fixed = isinstance(sigma, (int, float)) and not isinstance(sigma, bool) and sigma > 0
        if not (fixed or sigma is None or sigma == "calibrated"):
            raise ValueError("sigma must be a positive number, None (learned) or 'calibrated', "
                             f"not {sigma!r}.")
        self.setting = sigma  # as given: what rebuilds this likelihood
        self.mode = "fixed" if fixed else ("learned" if sigma is None else "calibrated")
        start = torch.tensor(math.log(float(sigma) if fixed else 0.1))
        if self.mode == "learned":
            self.log_sigma = nn.Parameter(start)
        else:
            self.register_buffer("log_sigma", start)
        if self.mode == "calibrated":  # training batches seen so far, for the running average
            self.register_buffer("batches", torch.zeros(()))

    @property
    def sigma(self) -> float:
        return float(self.log_sigma.detach().exp())

    def _log_sigma(self, squared: torch.Tensor) -> torch.Tensor:
        """The log sigma to use: in calibrated training, this batch's optimum (and the running
        average moves towards it); otherwise the stored one."""
        if self.mode == "calibrated" and self.training and torch.is_grad_enabled():
            batch = 0.5 * torch.log(squared.detach().mean())
            with torch.no_grad():  # a plain mean of the first 20 batches, then an EMA
                self.batches += 1
                weight = torch.clamp(1 / self.batches, min=self.CALIBRATION_RATE)
                self.log_sigma.lerp_(batch, weight)
            return batch
        return self.log_sigma

    def log_prob(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        squared = (x - torch.sigmoid(logits)).pow(2)
        log_sigma = self._log_sigma(squared)
        return -(0.5 * squared * torch.exp(-2 * log_sigma) + log_sigma
                 + 0.5 * math.log(2 * math.pi)).sum(-1)

    def mean(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)

    def log_prob_pairs(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        mean = torch.sigmoid(logits)
        squared = (x.pow(2).sum(-1, keepdim=True) - 2 * x @ mean.T + mean.pow(2).sum(-1))
        constant = x.shape[-1] * (self.log_sigma + 0.5 * math.log(2 * math.pi))
        return -0.5 * squared * torch.exp(-2 * self.log_sigma) - constant

    def sample(self, logits: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(logits.shape, generator=generator, device=logits.device)
        return torch.sigmoid(logits) + self.log_sigma.exp() * noise


def make_likelihood(name: str = "bernoulli",
                    sigma: float | str | None = 0.1) -> PixelLikelihood:
    """The pixel likelihood called ``name`` (``sigma`` only matters for ``"gaussian"``).
    Chapter 6."""
    if name == "bernoulli":
        return BernoulliPixels()
    if name == "continuous_bernoulli":
        return ContinuousBernoulliPixels()
    if name == "gaussian":
        return GaussianPixels(sigma)
    raise ValueError(f"likelihood must be one of {LIKELIHOODS}, not {name!r}.")
