"""Discrete latents: the vector quantizer and a small VQ-VAE (van den Oord et al. 2017).

The encoder maps an MNIST image to a 7 x 7 grid of vectors z_e; each is replaced by its nearest
entry of a learned codebook, z_q = e_k with k = argmin_j ||z_e - e_j||, and the decoder sees
z_q. The argmin has no gradient, so the backward pass copies the decoder's gradient from z_q to
z_e (the straight-through estimator); the codebook learns from ||sg[z_e] - e_k||^2 and the
encoder is held near its codes by the commitment term beta ||z_e - sg[e_k]||^2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .adam import adam_epochs
from .data import IMAGE_SIDE, NX, check_images
from .errors import check_integers


class VectorQuantizer(nn.Module):
    """A codebook of ``codes`` vectors of size ``dim``. ``forward(z_e)``, for any (..., dim)
    input, returns ``(z_q, indices, codebook_loss, commitment_loss)``: z_q carries the codebook
    vectors forward and passes the gradient straight through to z_e; the two losses are summed
    squared distances, divided by the number of leading (batch) entries of z_e (chapter 14)."""

    def __init__(self, codes: int = 64, dim: int = 16) -> None:
        super().__init__()
        check_integers(codes=codes, dim=dim)
        self.codes, self.dim = codes, dim
        self.codebook = nn.Embedding(codes, dim)
        self.codebook.weight.data.uniform_(-1 / codes, 1 / codes)

    @torch.no_grad()
    def initialize(self, z_e: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Set the codebook to ``codes`` vectors drawn without replacement from the (..., dim)
        encoder outputs ``z_e``: codes start where the data are, so fewer go unused."""
        flat = z_e.reshape(-1, self.dim)
        if len(flat) < self.codes:
            raise ValueError(f"z_e holds {len(flat)} vectors, fewer than the {self.codes} codes.")
        chosen = torch.randperm(len(flat), generator=generator, device=flat.device)[:self.codes]
        self.codebook.weight.copy_(flat[chosen])

    def nearest(self, z_e: torch.Tensor) -> torch.Tensor:
        """The index of the nearest codebook vector to each (..., dim) vector of ``z_e``."""
        if not isinstance(z_e, torch.Tensor) or z_e.ndim < 1 or z_e.shape[-1] != self.dim:
            raise ValueError(f"z_e must be a tensor of shape (..., {self.dim}), "
                             f"not {tuple(getattr(z_e, 'shape', ()))}.")
        flat = z_e.reshape(-1, self.dim)
        distances = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.weight.T
                     + self.codebook.weight.pow(2).sum(1)[None, :])
        return distances.argmin(1).reshape(z_e.shape[:-1])

    def forward(self, z_e: torch.Tensor):
        indices = self.nearest(z_e)
        e = self.codebook(indices)
        batch = z_e.shape[0] if z_e.ndim > 1 else 1
        codebook_loss = (z_e.detach() - e).pow(2).sum() / batch
        commitment_loss = (z_e - e.detach()).pow(2).sum() / batch
        z_q = z_e + (e - z_e).detach()  # forward: e; backward: the identity to z_e
        return z_q, indices, codebook_loss, commitment_loss


def codebook_perplexity(indices: torch.Tensor, codes: int) -> float:
    """exp(entropy) of how often each of the ``codes`` entries is used in ``indices``: the
    number of equally used codes that would give the same entropy (1 .. codes) (chapter 14)."""
    check_integers(codes=codes)
    if not isinstance(indices, torch.Tensor) or indices.dtype != torch.long or indices.numel() == 0:
        raise ValueError("indices must be a non-empty integer (long) tensor.")
    if bool((indices < 0).any()) or bool((indices >= codes).any()):
        raise ValueError(f"indices must lie in [0, {codes}).")
    p = torch.bincount(indices.reshape(-1), minlength=codes).double() / indices.numel()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


class VQVAE(nn.Module):
    """A small convolutional VQ-VAE for 28 x 28 images: two stride-2 convolutions to a 7 x 7
    grid of ``dim``-vectors, the quantizer, and two transposed convolutions back to logits of
    Bernoulli pixels. ``forward(x)`` takes (batch, 784) images and returns
    ``(logits, indices, codebook_loss, commitment_loss)`` (chapter 14)."""

    def __init__(self, codes: int = 64, dim: int = 16, channels: int = 32) -> None:
        super().__init__()
        check_integers(codes=codes, dim=dim, channels=channels)
        self.nx, self.channels = NX, channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, channels, 4, stride=2, padding=1), nn.ReLU(),         # 14 x 14
            nn.Conv2d(channels, channels, 4, stride=2, padding=1), nn.ReLU(),  # 7 x 7
            nn.Conv2d(channels, dim, 1))
        self.quantizer = VectorQuantizer(codes, dim)
        self.decoder = nn.Sequential(
            nn.Conv2d(dim, channels, 3, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(channels, 1, 4, stride=2, padding=1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z_e: a (batch, 7, 7, dim) grid of continuous vectors."""
        check_images(x, self.nx)
        return self.encoder(x.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)).permute(0, 2, 3, 1)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """Pixel logits (batch, 784) from a (batch, 7, 7, dim) grid of vectors."""
        return self.decoder(z_q.permute(0, 3, 1, 2)).reshape(len(z_q), self.nx)

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Pixel means (batch, 784) of a (batch, 7, 7) grid of code indices."""
        return torch.sigmoid(self.decode(self.quantizer.codebook(indices)))

    def forward(self, x: torch.Tensor):
        z_q, indices, codebook_loss, commitment_loss = self.quantizer(self.encode(x))
        return self.decode(z_q), indices, codebook_loss, commitment_loss


def vqvae_loss(x: torch.Tensor, logits: torch.Tensor, codebook_loss: torch.Tensor,
               commitment_loss: torch.Tensor, commitment: float = 0.25) -> torch.Tensor:
    """Bernoulli cross-entropy summed over pixels, plus the codebook loss and ``commitment``
    times the commitment loss, averaged per image (chapter 14)."""
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
    return reconstruction + codebook_loss + commitment * commitment_loss


def fit_vqvae(model: VQVAE, data, epochs: int = 2, batch_size: int = 128, lr: float = 2e-3,
              commitment: float = 0.25, seed: int = 0, initialize: bool = True) -> list[float]:
    """Train ``model`` on ``data.images`` with ``vqvae_loss`` (Adam, shuffled batches from
    ``seed``) and return the average loss per image of each epoch. ``initialize``: first set
    the codebook to encoder outputs of the first 1,000 images (``VectorQuantizer.initialize``).
    Chapter 14."""
    check_integers(epochs=epochs, batch_size=batch_size)
    check_images(data.images, model.nx, "data.images")
    model.to(data.device).train()
    order = torch.Generator(device=data.device).manual_seed(seed)
    if initialize:
        with torch.no_grad():
            model.quantizer.initialize(model.encode(data.images[:1000]), order)

    def batch_loss(x: torch.Tensor) -> torch.Tensor:
        logits, _, codebook_loss, commitment_loss = model(x)
        return vqvae_loss(x, logits, codebook_loss, commitment_loss, commitment)

    losses = adam_epochs(model, data.images, batch_loss, epochs, batch_size, lr, order,
                         per_image=True)
    model.eval()
    return losses
