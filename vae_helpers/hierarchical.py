"""VAEs with two stochastic layers over one generative model, as chapter 16 builds them.

Both models generate top-down, p(z2) p(z1 | z2) p(x | z1), with p(z2) = N(0, I), a Gaussian
p(z1 | z2) and Bernoulli pixels; between layers sit two fully connected layers (``nh1`` units
between x and z1, ``nh2`` between z1 and z2), the architecture of Burda et al. (2016), with the
book's ReLU where they used tanh. They differ only in the encoder:

* ``TwoLayerVAE`` infers bottom-up, q(z1 | x) q(z2 | z1), as Burda et al. did;
* ``LadderVAE`` infers top-down (Sønderby et al., 2016): a deterministic pass up from x gives
  each layer a Gaussian "vote"; z2 is drawn from the top one, q(z2 | x), then z1 from the
  precision-weighted product of its vote and the generative p(z1 | z2), q(z1 | z2, x).

Each model's ``forward`` gives the logits of p(x | z1) and the ELBO's KL term layer by layer;
``log_weight_terms`` gives log p(x | z1) and log p(z) - log q(z | x) for k draws, so that the
book's importance-weighted bound L_k (``iw_bound``) applies. ``hierarchical_loss`` is what
``fit(..., loss=...)`` trains with (its ``beta`` is fit's KL weight, so warm-up works).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .data import NX, ImageSet, check_images
from .errors import check_integers, check_numbers
from .losses import iw_bound, kl_to_standard_normal, log_normal_diag, log_standard_normal
from .model import LatentVariableModel


def kl_normal_diag(mu_q: torch.Tensor, log_var_q: torch.Tensor, mu_p: torch.Tensor,
                   log_var_p: torch.Tensor) -> torch.Tensor:
    """KL( N(mu_q, diag e^log_var_q) || N(mu_p, diag e^log_var_p) ), summed over the last axis:
    1/2 sum (log_var_p - log_var_q + (e^log_var_q + (mu_q - mu_p)^2) / e^log_var_p - 1)
    (chapter 16; chapter 3's ``kl_to_standard_normal`` is the case mu_p = 0, log_var_p = 0)."""
    return 0.5 * (log_var_p - log_var_q + (log_var_q.exp() + (mu_q - mu_p).pow(2))
                  / log_var_p.exp() - 1.0).sum(-1)


def _hidden_layers(n_in: int, nh: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, nh), nn.ReLU(), nn.Linear(nh, nh), nn.ReLU())


class _Gaussian(nn.Module):
    """A linear map to the mean and log-variance of a diagonal Gaussian."""

    def __init__(self, n_in: int, nz: int) -> None:
        super().__init__()
        self.mu, self.log_var = nn.Linear(n_in, nz), nn.Linear(n_in, nz)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu(h), self.log_var(h)


class Draws(NamedTuple):
    """One pass of the encoder: codes z1, z2 of shape (k, batch, n) and the parameters
    (mu, log_var) of q(z1 | .), q(z2 | .) and of the generative p(z1 | z2) at the drawn z2."""

    z1: torch.Tensor
    z2: torch.Tensor
    q1: tuple[torch.Tensor, torch.Tensor]
    q2: tuple[torch.Tensor, torch.Tensor]
    p1: tuple[torch.Tensor, torch.Tensor]


class HierarchicalVAE(LatentVariableModel):
    """The generative model both encoders share, and what is computed the same way for both.
    ``nz`` is nz1 + nz2, all the code's numbers. Subclasses define ``draw`` and ``layer_kl``.
    Chapter 16."""

    def __init__(self, nx: int = NX, nh1: int = 200, nz1: int = 100, nh2: int = 100,
                 nz2: int = 50, likelihood: str = "bernoulli") -> None:
        super().__init__()
        check_integers(nx=nx, nh1=nh1, nz1=nz1, nh2=nh2, nz2=nz2)
        self.nx, self.nh1, self.nz1, self.nh2, self.nz2 = nx, nh1, nz1, nh2, nz2
        self.nz = nz1 + nz2
        self._set_likelihood(likelihood, None)
        self.decoder_z1 = nn.Sequential(_hidden_layers(nz2, nh2), _Gaussian(nh2, nz1))
        self.decoder_x = nn.Sequential(_hidden_layers(nz1, nh1), nn.Linear(nh1, nx))

    @property
    def sizes(self) -> dict[str, int]:
        return {"nx": self.nx, "nh1": self.nh1, "nz1": self.nz1, "nh2": self.nh2,
                "nz2": self.nz2}

    @property
    def layer_sizes(self) -> tuple[int, int]:
        return self.nz1, self.nz2

    def prior_z1(self, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_var) of the generative p(z1 | z2)."""
        return self.decoder_z1(z2)

    def decode(self, z1: torch.Tensor) -> torch.Tensor:
        """Logits of p(x | z1) for a (..., nz1) code of the bottom layer."""
        if z1.shape[-1] != self.nz1:
            raise ValueError(f"z1 must have shape (..., {self.nz1}), not {tuple(z1.shape)}.")
        return self.decoder_x(z1)

    def draw(self, x: torch.Tensor, k: int = 1) -> Draws:
        raise NotImplementedError

    def layer_kl(self, draws: Draws) -> torch.Tensor:
        """The ELBO's KL term of each layer, (batch, 2): [layer 1, layer 2]."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits of p(x | z1), KL term of each layer (batch, 2)) for one draw per image:
        -ELBO = -log p(x | z1) + the sum of the KL terms."""
        draws = self.draw(x, 1)
        return self.decode(draws.z1[0]), self.layer_kl(draws)

    def log_weight_terms(self, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """For k draws (z1, z2) ~ q: log p(x | z1) and log p(z1, z2) - log q(z1, z2 | x), each
        (k, batch); their sum is log w, and ``iw_bound`` of it is L_k."""
        d = self.draw(x, k)
        log_px = self.log_likelihood(x.expand(k, -1, -1), self.decode(d.z1))
        log_ratio = (log_standard_normal(d.z2) + log_normal_diag(d.z1, *d.p1)
                     - log_normal_diag(d.z1, *d.q1) - log_normal_diag(d.z2, *d.q2))
        return log_px, log_ratio

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log w = log p(x, z1, z2) - log q(z1, z2 | x) for k draws: (k, batch)."""
        log_px, log_ratio = self.log_weight_terms(x, k)
        return log_px + log_ratio

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               pixels: str = "mean") -> torch.Tensor:
        """``n`` images: z2 ~ N(0, I), z1 ~ p(z1 | z2), then the pixel means (or a draw)."""
        if pixels not in ("mean", "draw"):
            raise ValueError(f"pixels must be 'mean' or 'draw', not {pixels!r}.")
        device = next(self.parameters()).device
        z2 = torch.randn(n, self.nz2, generator=generator, device=device)
        mu, log_var = self.prior_z1(z2)
        z1 = mu + torch.exp(0.5 * log_var) * torch.randn(mu.shape, generator=generator,
                                                         device=device)
        logits = self.decode(z1)
        if pixels == "mean":
            return self.likelihood.mean(logits)
        return self.likelihood.sample(logits, generator=generator)


def _draw(mu: torch.Tensor, log_var: torch.Tensor, k: int | None = None) -> torch.Tensor:
    shape = mu.shape if k is None else (k, *mu.shape)
    return mu + torch.exp(0.5 * log_var) * torch.randn(shape, device=mu.device, dtype=mu.dtype)


class TwoLayerVAE(HierarchicalVAE):
    """Bottom-up inference, q(z1 | x) q(z2 | z1) (Burda et al., 2016): the encoder of a
    one-layer VAE, applied twice. Chapter 16."""

    def __init__(self, nx: int = NX, nh1: int = 200, nz1: int = 100, nh2: int = 100,
                 nz2: int = 50, likelihood: str = "bernoulli") -> None:
        super().__init__(nx, nh1, nz1, nh2, nz2, likelihood)
        self.encoder_z1 = nn.Sequential(_hidden_layers(nx, nh1), _Gaussian(nh1, nz1))
        self.encoder_z2 = nn.Sequential(_hidden_layers(nz1, nh2), _Gaussian(nh2, nz2))

    def draw(self, x: torch.Tensor, k: int = 1) -> Draws:
        self._check_x(x)
        q1 = self.encoder_z1(x)
        z1 = _draw(*q1, k)
        q2 = self.encoder_z2(z1)
        z2 = _draw(*q2)
        return Draws(z1, z2, q1, q2, self.prior_z1(z2))

    def layer_kl(self, draws: Draws) -> torch.Tensor:
        """Layer 2: KL(q(z2 | z1) || N(0, I)) in closed form at the drawn z1. Layer 1:
        log q(z1 | x) - log p(z1 | z2) at the drawn codes, since p(z1 | z2) depends on a z2
        drawn from z1 (its mean over draws is the layer's share of the ELBO's KL term, not a
        KL divergence of its own, and it can be negative)."""
        z1 = draws.z1[0]
        first = log_normal_diag(z1, *draws.q1) - log_normal_diag(z1, *(p[0] for p in draws.p1))
        second = kl_to_standard_normal(*(q[0] for q in draws.q2))
        return torch.stack([first, second], -1)


class LadderVAE(HierarchicalVAE):
    """Top-down inference (Sønderby et al.'s ladder VAE): a deterministic pass up from x gives
    votes N(m_l, e^v_l) for each layer; q(z2 | x) is the top vote and q(z1 | z2, x) the
    precision-weighted product of the bottom vote with the generative p(z1 | z2), so that the
    encoder shares the top-down path of the generative model. Chapter 16."""

    def __init__(self, nx: int = NX, nh1: int = 200, nz1: int = 100, nh2: int = 100,
                 nz2: int = 50, likelihood: str = "bernoulli") -> None:
        super().__init__(nx, nh1, nz1, nh2, nz2, likelihood)
        self.encoder_up1 = _hidden_layers(nx, nh1)
        self.encoder_vote1 = _Gaussian(nh1, nz1)
        self.encoder_up2 = _hidden_layers(nh1, nh2)
        self.encoder_vote2 = _Gaussian(nh2, nz2)

    def draw(self, x: torch.Tensor, k: int = 1) -> Draws:
        self._check_x(x)
        h1 = self.encoder_up1(x)
        vote_mu, vote_log_var = self.encoder_vote1(h1)
        q2 = self.encoder_vote2(self.encoder_up2(h1))
        z2 = _draw(*q2, k)
        p1 = self.prior_z1(z2)
        precision_vote, precision_p = torch.exp(-vote_log_var), torch.exp(-p1[1])
        log_var1 = -torch.logaddexp(-vote_log_var, -p1[1])
        mu1 = (vote_mu * precision_vote + p1[0] * precision_p) * log_var1.exp()
        return Draws(_draw(mu1, log_var1), z2, (mu1, log_var1), q2, p1)

    def layer_kl(self, draws: Draws) -> torch.Tensor:
        """Both layers in closed form: KL(q(z1 | z2, x) || p(z1 | z2)) at the drawn z2, and
        KL(q(z2 | x) || N(0, I))."""
        first = kl_normal_diag(*(q[0] for q in draws.q1), *(p[0] for p in draws.p1))
        second = kl_to_standard_normal(*draws.q2)
        return torch.stack([first, second], -1)


def hierarchical_loss(model: HierarchicalVAE, x: torch.Tensor, label: tuple = (),
                      beta: float = 1.0, k: int = 1) -> torch.Tensor:
    """The loss ``fit(..., loss=hierarchical_loss)`` trains with, summed over the batch: for
    k = 1 the negative ELBO, -log p(x | z1) + beta * (sum of the layers' KL terms); for k > 1
    -L_k of log w = log p(x | z1) + beta (log p(z) - log q(z | x)), as ``iwae_loss``. ``beta``
    is fit's KL weight of the step (KL warm-up). Chapter 16."""
    check_integers(k=k)
    if k == 1:
        logits, kl = model(x)
        return (-model.log_likelihood(x, logits) + beta * kl.sum(-1)).sum()
    log_px, log_ratio = model.log_weight_terms(x, k)
    return -iw_bound(log_px + beta * log_ratio).sum()


def _chunks(model: HierarchicalVAE, data: ImageSet, size: int):
    check_images(data.images, model.nx, "images")
    return data.images.split(max(1, size))


@torch.no_grad()
def hierarchical_log_likelihood(model: HierarchicalVAE, data: ImageSet, k: int,
                                max_samples: int = 50_000) -> float:
    """Average importance-weighted bound L_k on log p(x) over ``data`` (k draws from the
    model's encoder per image; k = 1 is a one-draw ELBO), in chunks of at most ``max_samples``
    decoded draws. Chapter 16."""
    check_integers(k=k, max_samples=max_samples)
    total = sum(float(iw_bound(model.log_weights(x, k)).sum())
                for x in _chunks(model, data, max_samples // k))
    return total / len(data)


@torch.no_grad()
def layer_kl_terms(model: HierarchicalVAE, data: ImageSet, batch_size: int = 2000
                   ) -> torch.Tensor:
    """The average KL term of each layer over ``data`` (one draw per image): (2,), in nats.
    Chapter 16."""
    totals = sum(model(x)[1].sum(0) for x in _chunks(model, data, batch_size))
    return (totals / len(data)).cpu()


@torch.no_grad()
def layer_active_units(model: HierarchicalVAE, data: ImageSet, threshold: float = 0.01,
                       draws: int = 20, batch_size: int = 1000) -> tuple[int, int]:
    """Active units of each layer, Burda et al.'s measure: dimensions u whose posterior mean
    E_q[u | x], estimated from ``draws`` draws of the encoder, varies across ``data`` with
    variance above ``threshold``. Chapter 16."""
    check_numbers(threshold=threshold)
    check_integers(draws=draws)
    means = [[], []]
    for x in _chunks(model, data, batch_size):
        d = model.draw(x, draws)
        for layer, (mu, _) in enumerate((d.q1, d.q2)):  # E_q[z | x]: q's mean, over the draws
            means[layer].append(mu.mean(0) if mu.ndim == 3 else mu)
    return tuple(int((torch.cat(m).var(0) > threshold).sum()) for m in means)
