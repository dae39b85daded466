"""A diffusion model (DDPM, Ho et al. 2020) as a prior over the codes of a trained VAE: latent
diffusion at MNIST scale (chapter 16).

A code z_0 (the VAE's z, drawn from its encoder) is noised by a fixed forward chain,
q(z_t | z_{t-1}) = N(sqrt(1 - beta_t) z_{t-1}, beta_t I) for t = 1..T, so that
q(z_t | z_0) = N(sqrt(abar_t) z_0, (1 - abar_t) I) with abar_t = prod_{s <= t} (1 - beta_s).
A small MLP eps(z_t, t) predicts the noise, and the learned reverse chain is
p(z_{t-1} | z_t) = N(m(z_t, t), beta_t I), m = (z_t - beta_t / sqrt(1 - abar_t) eps) /
sqrt(1 - beta_t), from p(z_T) = N(0, I). (Of Ho et al.'s two fixed variances, beta_t is the one
that is exact when the codes are N(0, I), as a VAE's nearly are; the other, the forward
posterior's, loosens the bound by some 20 nats on N(0, I) codes in 16 dimensions at T = 100,
even with the best denoiser.) The ELBO of a code is a sum
of per-step terms, each a Gaussian KL:

    log p(z_0) >= log p(z_0 | z_1) - sum_{t=2}^T KL(q(z_{t-1} | z_t, z_0) || p(z_{t-1} | z_t))
                  - KL(q(z_T | z_0) || N(0, I)),

and step t's term is w_t ||eps - eps(z_t, t)||^2 + c_t: the DDPM loss, weighted.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import torch
from torch import nn

from .errors import check_integers, check_numbers
from .export import check_name, export_network
from .losses import LOG_2PI


class Denoiser(nn.Module):
    """eps(z_t, t): the noise in z_t, predicted by an MLP from z_t and sinusoidal features of
    the step number t (a float, 1..steps), three hidden SiLU layers of ``nh`` units.
    Chapter 16."""

    def __init__(self, nz: int, nh: int = 256, frequencies: int = 16) -> None:
        super().__init__()
        check_integers(nz=nz, nh=nh, frequencies=frequencies)
        self.nz = nz
        self.register_buffer("frequencies", torch.exp(
            -math.log(1000.0) * torch.arange(frequencies) / frequencies))
        self.net = nn.Sequential(
            nn.Linear(nz + 2 * frequencies, nh), nn.SiLU(), nn.Linear(nh, nh), nn.SiLU(),
            nn.Linear(nh, nh), nn.SiLU(), nn.Linear(nh, nz))

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        angles = t.to(z.dtype).unsqueeze(-1) * self.frequencies
        return self.net(torch.cat([z, torch.sin(angles), torch.cos(angles)], -1))


class LatentDiffusion(nn.Module):
    """A DDPM over ``nz``-dimensional codes with ``steps`` steps and a linear schedule of
    beta_t from ``beta_start`` to ``beta_end`` (by default Ho et al.'s 1e-4..0.02 over 1000
    steps, scaled to ``steps``, the last at most 0.5). The schedule's numbers are float64
    buffers. Chapter 16."""

    def __init__(self, nz: int, steps: int = 100, nh: int = 256,
                 beta_start: float | None = None, beta_end: float | None = None) -> None:
        super().__init__()
        check_integers(nz=nz)
        check_integers(2, steps=steps)
        beta_start = 0.1 / steps if beta_start is None else beta_start
        beta_end = min(20.0 / steps, 0.5) if beta_end is None else beta_end
        check_numbers(beta_start=beta_start, beta_end=beta_end)
        if not beta_start <= beta_end < 1:
            raise ValueError("the schedule needs beta_start <= beta_end < 1.")
        self.nz, self.steps = nz, steps
        self.denoiser = Denoiser(nz, nh)
        betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
        alphas = 1 - betas
        alpha_bars = torch.cumprod(alphas, 0)
        previous = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
        posterior_variances = betas * (1 - previous) / (1 - alpha_bars)  # 0 at t = 1
        variances = betas.clone()  # of the reverse steps p(z_{t-1} | z_t)
        for name, value in (("betas", betas), ("alphas", alphas), ("alpha_bars", alpha_bars),
                            ("alpha_bars_previous", previous),
                            ("posterior_variances", posterior_variances),
                            ("variances", variances)):
            self.register_buffer(name, value)

    def _at(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Schedule value ``name`` at steps ``t`` (1..T), shaped to broadcast against ``like``."""
        return getattr(self, name)[t - 1].to(like.dtype).reshape(*t.shape, *[1] * (like.ndim
                                                                                   - t.ndim))

    def _check_t(self, t: torch.Tensor) -> None:
        if t.dtype not in (torch.int64, torch.int32) or bool(((t < 1) | (t > self.steps)).any()):
            raise ValueError(f"t must hold integer steps from 1 to {self.steps}.")

    def q_sample(self, z0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) noise: a draw of q(z_t | z_0)."""
        self._check_t(t)
        abar = self._at("alpha_bars", t, z0)
        return abar.sqrt() * z0 + (1 - abar).sqrt() * noise

    def posterior(self, z0: torch.Tensor, zt: torch.Tensor, t: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of the forward posterior q(z_{t-1} | z_t, z_0), for t >= 2."""
        beta, alpha = self._at("betas", t, z0), self._at("alphas", t, z0)
        abar, previous = self._at("alpha_bars", t, z0), self._at("alpha_bars_previous", t, z0)
        mean = (beta * previous.sqrt() * z0 + alpha.sqrt() * (1 - previous) * zt) / (1 - abar)
        return mean, self._at("posterior_variances", t, z0).expand_as(mean)

    def reverse(self, zt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of the learned p(z_{t-1} | z_t), from the predicted noise."""
        self._check_t(t)
        beta, alpha = self._at("betas", t, zt), self._at("alphas", t, zt)
        abar = self._at("alpha_bars", t, zt)
        eps = self.denoiser(zt, t)
        mean = (zt - beta / (1 - abar).sqrt() * eps) / alpha.sqrt()
        return mean, self._at("variances", t, zt).expand_as(mean)

    def loss_weights(self) -> torch.Tensor:
        """w_t = beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t)), t = 1..T, with sigma_t^2 the
        reverse variance: step t's term of the negative ELBO is w_t ||eps - eps(z_t, t)||^2 +
        c_t (``loss_constants``)."""
        return self.betas.pow(2) / (2 * self.variances * self.alphas * (1 - self.alpha_bars))

    def loss_constants(self) -> torch.Tensor:
        """c_t, t = 1..T: (nz/2) log(2 pi sigma_1^2) at t = 1 (the Gaussian p(z_0 | z_1)) and
        the KL of the two variances, (nz/2) (r - 1 - log r) with r = posterior variance /
        sigma_t^2, at t >= 2."""
        ratio = self.posterior_variances[1:] / self.variances[1:]
        first = 0.5 * self.nz * torch.log(2 * math.pi * self.variances[:1])
        return torch.cat([first, 0.5 * self.nz * (ratio - 1 - torch.log(ratio))])

    def step_term(self, z0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Step t's term of the negative ELBO at z_t = ``q_sample(z0, t, noise)``, per code:
        KL(q(z_{t-1} | z_t, z_0) || p(z_{t-1} | z_t)) for t >= 2, -log p(z_0 | z_1) for t = 1,
        both from the Gaussians' means and variances."""
        zt = self.q_sample(z0, t, noise)
        mean_p, var_p = self.reverse(zt, t)
        mean_q, var_q = self.posterior(z0, zt, torch.clamp(t, min=2))
        kl = 0.5 * (torch.log(var_p / var_q) + (var_q + (mean_q - mean_p).pow(2)) / var_p
                    - 1).sum(-1)
        decoder = 0.5 * (LOG_2PI + torch.log(var_p) + (z0 - mean_p).pow(2) / var_p).sum(-1)
        return torch.where(t == 1, decoder, kl)

    def prior_term(self, z0: torch.Tensor) -> torch.Tensor:
        """KL(q(z_T | z_0) || N(0, I)) per code: almost 0 when abar_T is."""
        abar = self.alpha_bars[-1].to(z0.dtype)
        return 0.5 * (abar * z0.pow(2) + (1 - abar) - 1 - torch.log(1 - abar)).sum(-1)

    def elbo_terms(self, z0: torch.Tensor, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
        """Every term of the negative ELBO per code, (batch, T + 1): steps t = 1..T (one draw
        of z_t each), then the prior's KL. Their sum is -ELBO, an upper bound on -log p(z_0)."""
        steps = torch.arange(1, self.steps + 1, device=z0.device)
        columns = [self.step_term(z0, t.expand(len(z0)),
                                  torch.randn(z0.shape, generator=generator, device=z0.device,
                                              dtype=z0.dtype)) for t in steps]
        return torch.stack([*columns, self.prior_term(z0)], -1)

    def elbo(self, z0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The ELBO, a lower bound on log p(z_0), per code (one draw of each z_t)."""
        return -self.elbo_terms(z0, generator).sum(-1)

    def loss(self, z0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Ho et al.'s simple loss: ||eps - eps(z_t, t)||^2 at a uniform step t per code,
        averaged over the batch (the ELBO's terms without their weights w_t)."""
        t = torch.randint(1, self.steps + 1, (len(z0),), generator=generator, device=z0.device)
        noise = torch.randn(z0.shape, generator=generator, device=z0.device, dtype=z0.dtype)
        return (noise - self.denoiser(self.q_sample(z0, t, noise), t)).pow(2).sum(-1).mean()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               noise: torch.Tensor | None = None, trajectory: bool = False) -> torch.Tensor:
        """``n`` codes by ancestral sampling: z_T ~ N(0, I), then z_{t-1} = m(z_t, t) +
        sigma_t * noise for t = T..2 and z_0 = m(z_1, 1) (the mean at the last step, as Ho et
        al. do).
        ``noise`` (T, n, nz), when given, supplies z_T (``noise[0]``) and the noise of each
        step t (``noise[T - t + 1]``). ``trajectory=True`` returns every z_t, (T + 1, n, nz),
        from z_T down to z_0."""
        device = self.betas.device
        weight = next(self.denoiser.parameters(), None)
        dtype = self.betas.dtype if weight is None else weight.dtype
        if noise is None:
            noise = torch.randn(self.steps, n, self.nz, generator=generator, device=device,
                                dtype=dtype)
        elif noise.shape != (self.steps, n, self.nz):
            raise ValueError(f"noise must have shape {(self.steps, n, self.nz)}, not "
                             f"{tuple(noise.shape)}.")
        z = noise[0]
        path = [z]
        for t in range(self.steps, 0, -1):
            mean, variance = self.reverse(z, torch.full((n,), t, device=device))
            z = mean + variance.sqrt() * noise[self.steps - t + 1] if t > 1 else mean
            path.append(z)
        return torch.stack(path) if trajectory else z


def fit_diffusion(prior: LatentDiffusion, mu: torch.Tensor, log_var: torch.Tensor | None = None,
                  epochs: int = 20, batch_size: int = 256, lr: float = 2e-3,
                  seed: int = 0) -> list[float]:
    """Train ``prior`` with Adam on the simple loss over the codes of a data set: ``mu`` (N, nz),
    or fresh draws z = mu + e^(log_var / 2) * eps of the encoder's q(z | x) at every epoch when
    ``log_var`` is given (the aggregate posterior). Returns each epoch's average loss.
    Chapter 16."""
    check_integers(epochs=epochs, batch_size=batch_size)
    check_numbers(lr=lr)
    if mu.ndim != 2 or mu.shape[1] != prior.nz or (log_var is not None
                                                    and log_var.shape != mu.shape):
        raise ValueError(f"mu (and log_var) must have shape (N, {prior.nz}).")
    generator = torch.Generator(device=mu.device).manual_seed(seed)
    adam = torch.optim.Adam(prior.denoiser.parameters(), lr=lr)
    prior.train()
    losses = []
    for _ in range(epochs):
        codes = mu if log_var is None else mu + torch.exp(0.5 * log_var) * torch.randn(
            mu.shape, generator=generator, device=mu.device)
        order = torch.randperm(len(codes), generator=generator, device=mu.device)
        total = 0.0
        for indices in order.split(batch_size):
            loss = prior.loss(codes[indices], generator)
            adam.zero_grad(set_to_none=True)
            loss.backward()
            adam.step()
            total += float(loss.detach()) * len(indices)
        losses.append(total / len(codes))
    prior.eval()
    return losses


def export_denoiser(prior: LatentDiffusion, folder: str | os.PathLike, name: str) -> Path:
    """Write the network of ``prior`` to ``folder/{name}_denoiser.onnx``: inputs ``z`` (batch,
    nz) and ``t`` (batch,), the step as float32 (1..T), output ``eps``, the predicted noise.
    The schedule stays out of the file: a page computes the reverse steps from it. Chapter 16."""
    if not isinstance(prior, LatentDiffusion):
        raise TypeError(f"prior must be a LatentDiffusion, not {type(prior).__name__}.")
    check_name(name)
    denoiser = copy.deepcopy(prior.denoiser).cpu().float().eval()
    return export_network(denoiser, (torch.zeros(1, prior.nz), torch.ones(1)),
                          Path(folder, f"{name}_denoiser.onnx"), ["z", "t"], ["eps"])
