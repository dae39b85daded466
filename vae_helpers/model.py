"""VAE models: the original tutorial's MLP, a conditional MLP and a convolutional VAE.

All share one interface: ``encode`` -> (mu, log_var), ``reparameterize``, ``decode`` -> logits,
``probabilities``; conditional models also take the digit label ``y`` in ``encode``, ``decode``
and ``forward``. What the logits mean is the model's ``likelihood`` (``likelihoods.py``):
Bernoulli pixels by default, as in the tutorial. The sigmoid is folded into the loss (BCE with
logits), which is exact and numerically stable; ``probabilities`` gives the pixel means.
"""

from __future__ import annotations

import torch
from torch import nn

from .data import IMAGE_SIDE, NX, check_images
from .errors import check_integers
from .likelihoods import PixelLikelihood, make_likelihood

N_CLASSES = 10


class LatentVariableModel(nn.Module):
    """What every VAE here shares; subclasses define ``encode``, ``decode`` and ``sizes``.
    Chapter 4."""

    conditional = False
    nx: int
    nz: int
    likelihood: PixelLikelihood

    def _set_likelihood(self, likelihood: str, sigma: float | str | None) -> None:
        self.likelihood = make_likelihood(likelihood, sigma)

    @property
    def sizes(self) -> dict[str, int]:
        """The layer sizes of this architecture."""
        raise NotImplementedError

    @property
    def config(self) -> dict[str, int | float | str | None]:
        """What rebuilds this model: ``type(model)(**model.config)``. The likelihood appears
        only when it is not the default Bernoulli (so older checkpoints still match)."""
        config: dict[str, int | float | str | None] = dict(self.sizes)
        if self.likelihood.name != "bernoulli":
            config["likelihood"] = self.likelihood.name
        if self.likelihood.name == "gaussian":
            config["sigma"] = self.likelihood.setting
        return config

    def given(self, labels: torch.Tensor) -> tuple:
        """The extra arguments for ``encode``/``decode``/``forward``: ``(labels,)`` for a
        conditional model, ``()`` otherwise, so callers need not ask which kind they have."""
        return (labels,) if self.conditional else ()

    def _check_x(self, x: torch.Tensor) -> None:
        if x.ndim != 2 or x.shape[-1] != self.nx:
            raise ValueError(f"x must have shape (batch, {self.nx}), not {tuple(x.shape)}.")

    def _check_z(self, z: torch.Tensor) -> None:
        if z.shape[-1] != self.nz:
            raise ValueError(f"z must have shape (..., {self.nz}), not {tuple(z.shape)}.")

    @staticmethod
    def reparameterize(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """A sample z = mu + sigma * eps with eps ~ N(0, I): differentiable in mu and log_var."""
        return mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)

    def probabilities(self, z: torch.Tensor, *label) -> torch.Tensor:
        """Pixel means E[x | z] in [0, 1] (sigmoid(decode(z)) for Bernoulli pixels)."""
        return self.likelihood.mean(self.decode(z, *label))

    def log_likelihood(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """log p(x | z) per example under this model's pixel likelihood."""
        return self.likelihood.log_prob(x, logits)

    def forward(self, x: torch.Tensor, *label) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, mu, log_var) for one reparameterized sample per example."""
        mu, log_var = self.encode(x, *label)
        return self.decode(self.reparameterize(mu, log_var), *label), mu, log_var

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, *label) -> torch.Tensor:
        """Pixel means decoded from the posterior mean: a deterministic reconstruction."""
        check_images(x, self.nx)
        mu, _ = self.encode(x, *label)
        return self.probabilities(mu, *label)

    @torch.no_grad()
    def sample(self, n: int, *label, generator: torch.Generator | None = None,
               pixels: str = "mean") -> torch.Tensor:
        """``n`` images decoded from z ~ p(z) = N(0, I) (with the given labels, if conditional).

        ``pixels="mean"`` returns each image's pixel means E[x | z], what figures usually show;
        ``pixels="draw"`` draws the pixels themselves, x ~ p(x | z): a true sample of the model.
        """
        if pixels not in ("mean", "draw"):
            raise ValueError(f"pixels must be 'mean' or 'draw', not {pixels!r}.")
        device = next(self.parameters()).device
        z = torch.randn(n, self.nz, generator=generator, device=device)
        logits = self.decode(z, *label)
        if pixels == "mean":
            return self.likelihood.mean(logits)
        return self.likelihood.sample(logits, generator=generator)


class VAE(LatentVariableModel):
    """The original tutorial's MLP: Gaussian q(z|x) and (by default) Bernoulli p(x|z), each
    network with one hidden ReLU layer (chapter 4)."""

    def __init__(self, nx: int = NX, nh: int = 512, nz: int = 2, likelihood: str = "bernoulli",
                 sigma: float | str | None = 0.1) -> None:
        super().__init__()
        check_integers(nx=nx, nh=nh, nz=nz)
        self.nx, self.nh, self.nz = nx, nh, nz
        self._set_likelihood(likelihood, sigma)
        self.encoder_hidden = nn.Linear(nx, nh)
        self.encoder_mu = nn.Linear(nh, nz)
        self.encoder_log_var = nn.Linear(nh, nz)
        self.decoder_hidden = nn.Linear(nz, nh)
        self.decoder_logits = nn.Linear(nh, nx)

    @property
    def sizes(self) -> dict[str, int]:
        return {"nx": self.nx, "nh": self.nh, "nz": self.nz}

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z|x) = N(mu, diag(exp(log_var))) for a (batch, nx) input."""
        self._check_x(x)
        h = torch.relu(self.encoder_hidden(x))
        return self.encoder_mu(h), self.encoder_log_var(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of the Bernoulli p(x|z) for a (..., nz) latent."""
        self._check_z(z)
        return self.decoder_logits(torch.relu(self.decoder_hidden(z)))


class ConditionalVAE(LatentVariableModel):
    """The MLP VAE with the digit label given to both networks: q(z|x, y) and p(x|z, y).

    The label enters as a one-hot vector concatenated to the input of each network, so the code
    z is free to describe what the label does not: the style of the digit (chapter 9).
    """

    conditional = True

    def __init__(self, nx: int = NX, nh: int = 512, nz: int = 2, n_classes: int = N_CLASSES,
                 likelihood: str = "bernoulli", sigma: float | str | None = 0.1) -> None:
        super().__init__()
        check_integers(nx=nx, nh=nh, nz=nz, n_classes=n_classes)
        self.nx, self.nh, self.nz, self.n_classes = nx, nh, nz, n_classes
        self._set_likelihood(likelihood, sigma)
        self.encoder_hidden = nn.Linear(nx + n_classes, nh)
        self.encoder_mu = nn.Linear(nh, nz)
        self.encoder_log_var = nn.Linear(nh, nz)
        self.decoder_hidden = nn.Linear(nz + n_classes, nh)
        self.decoder_logits = nn.Linear(nh, nx)

    @property
    def sizes(self) -> dict[str, int]:
        return {"nx": self.nx, "nh": self.nh, "nz": self.nz, "n_classes": self.n_classes}

    def one_hot(self, y: torch.Tensor, batch_shape: torch.Size) -> torch.Tensor:
        """One-hot labels broadcast to ``batch_shape``; a clear error for labels out of range."""
        y = torch.as_tensor(y, device=self.encoder_mu.weight.device)
        # The range check reads the labels back to the host, which a CUDA graph being recorded
        # cannot do; the training data's labels were checked when they were loaded.
        if y.dtype not in (torch.int64, torch.int32) or (
            not (y.is_cuda and torch.cuda.is_current_stream_capturing())
            and bool(((y < 0) | (y >= self.n_classes)).any())
        ):
            raise ValueError(f"y must hold integer labels in 0..{self.n_classes - 1}.")
        y = y.expand(batch_shape) if y.ndim == 0 else y
        if y.shape != batch_shape:
            raise ValueError(f"y must have shape {tuple(batch_shape)}, not {tuple(y.shape)}.")
        classes = torch.arange(self.n_classes, device=y.device)
        return (y.unsqueeze(-1) == classes).to(self.encoder_mu.weight.dtype)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z|x, y)."""
        self._check_x(x)
        h = torch.relu(self.encoder_hidden(torch.cat([x, self.one_hot(y, x.shape[:-1])], -1)))
        return self.encoder_mu(h), self.encoder_log_var(h)

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Logits of p(x|z, y); ``y`` may be one label for the whole batch."""
        self._check_z(z)
        zy = torch.cat([z, self.one_hot(y, z.shape[:-1])], -1)
        return self.decoder_logits(torch.relu(self.decoder_hidden(zy)))


class ConvVAE(LatentVariableModel):
    """Convolutional encoder and transposed-convolution decoder, same ELBO as the MLP.

    Encoder: 1x28x28 -> 32x14x14 -> 64x7x7 -> nh -> (mu, log_var). The decoder mirrors it.
    Inputs and outputs stay flat (batch, 784), so losses and training are shared with ``VAE``.
    Chapter 10.
    """

    def __init__(self, nh: int = 256, nz: int = 2, channels: int = 32,
                 likelihood: str = "bernoulli", sigma: float | str | None = 0.1) -> None:
        super().__init__()
        check_integers(nh=nh, nz=nz, channels=channels)
        self.nx, self.nh, self.nz, self.channels = NX, nh, nz, channels
        self._set_likelihood(likelihood, sigma)
        c, flat = channels, 2 * channels * 7 * 7
        self.encoder_conv = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
            nn.Linear(flat, nh), nn.ReLU())
        self.encoder_mu = nn.Linear(nh, nz)
        self.encoder_log_var = nn.Linear(nh, nz)
        self.decoder = nn.Sequential(
            nn.Linear(nz, nh), nn.ReLU(), nn.Linear(nh, flat), nn.ReLU(),
            nn.Unflatten(-1, (2 * c, 7, 7)),
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1), nn.Flatten())

    @property
    def sizes(self) -> dict[str, int]:
        return {"nh": self.nh, "nz": self.nz, "channels": self.channels}

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_x(x)
        h = self.encoder_conv(x.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE))
        return self.encoder_mu(h), self.encoder_log_var(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        self._check_z(z)
        batch_shape = z.shape[:-1]
        logits = self.decoder(z.reshape(-1, self.nz))
        return logits.reshape(*batch_shape, NX)


def model_classes() -> dict[str, type[LatentVariableModel]]:
    """Every kind of model a checkpoint may hold, by class name."""
    from .autoregressive import AutoregressiveVAE  # it subclasses VAE, so it is imported here

    return {cls.__name__: cls for cls in (VAE, ConditionalVAE, ConvVAE, AutoregressiveVAE)}


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (chapter 4)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
