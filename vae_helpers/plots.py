"""Figures for the chapters: image grids, reconstructions, samples, the latent map, curves."""

from __future__ import annotations

import io
import math

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid

from .data import MNIST, check_images
from .errors import check_integers, check_numbers
from .model import LatentVariableModel

MAX_STEPS = 200  # images per side of a grid, or along an interpolation


def as_image_batch(pixels: torch.Tensor) -> torch.Tensor:
    """(N, 784) pixel means -> (N, 1, 28, 28) on the CPU, for torchvision and PIL; any other
    square image (N, side * side), such as the 32 x 32 shapes, keeps its own side."""
    side = math.isqrt(pixels.shape[-1])
    if side * side != pixels.shape[-1]:
        raise ValueError(f"pixels must hold square images, (N, side * side), "
                         f"not {tuple(pixels.shape)}.")
    return pixels.detach().reshape(-1, 1, side, side).cpu()


def show_images(pixels: torch.Tensor, nrow: int = 10, title: str = "", ax=None):
    """Show (N, 784) images (or other square ones) as one grid made by ``make_grid`` (chapter 6)."""
    grid = make_grid(as_image_batch(pixels), nrow=nrow, padding=2, pad_value=1.0)
    ax = ax or plt.figure(figsize=(nrow * 0.6, (len(pixels) // nrow + 1) * 0.6)).gca()
    ax.imshow(grid[0], cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
    return ax


def plot_reconstructions(model: LatentVariableModel, data: MNIST, n: int = 10):
    """Originals (top row) above their reconstructions from the posterior mean (bottom row).
    Chapter 7."""
    part = data[:n]
    x = part.images
    return show_images(torch.cat([x, model.reconstruct(x, *model.given(part.labels))]), nrow=n,
                       title="originals (top) and reconstructions (bottom)")


def plot_samples(model: LatentVariableModel, n: int = 100, seed: int = 0):
    """Decoded pixel means of ``n`` draws z ~ N(0, I) (a conditional model: digits 0-9 in turn).
    Chapter 5."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    labels = model.given(torch.arange(n, device=device) % 10)
    return show_images(model.sample(n, *labels, generator=generator), nrow=10,
                       title=f"{n} samples from the prior")


def latent_grid(steps: int = 20, limit: float = 3.0, device=None) -> torch.Tensor:
    """A (steps * steps, 2) grid of z, row by row: z2 from +limit down, z1 from -limit up.
    Chapter 7."""
    check_integers(2, MAX_STEPS, steps=steps)
    check_numbers(limit=limit)
    values = torch.linspace(-limit, limit, steps, device=device)
    z2, z1 = torch.meshgrid(values.flip(0), values, indexing="ij")
    return torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1)


@torch.no_grad()
def plot_manifold(model: LatentVariableModel, steps: int = 20, limit: float = 3.0):
    """The decoder's images over a grid of z in [-limit, limit]^2 (z1 across, z2 up) (chapter 7)."""
    z = latent_grid(steps, limit, next(model.parameters()).device)
    ax = show_images(model.probabilities(z), nrow=steps,
                     title=f"decoded manifold, z in [-{limit:g}, {limit:g}]²")
    ax.figure.set_size_inches(8, 8)
    return ax


@torch.no_grad()
def encode_means(
    model: LatentVariableModel, data: MNIST, n: int = 5000
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means of the first ``n`` examples (CPU) and their labels (chapter 7)."""
    check_integers(n=n)
    check_images(data.images, model.nx, "data.images")
    part = data[:n]
    mu, _ = model.encode(part.images, *model.given(part.labels))
    return mu.cpu(), part.labels.cpu()


def scatter_codes(ax, model: LatentVariableModel, data: MNIST, n: int = 5000, size: float = 3):
    """Scatter the posterior means of ``n`` examples on ``ax``, one color per digit."""
    mu, labels = encode_means(model, data, n)
    return ax.scatter(mu[:, 0], mu[:, 1], c=labels, cmap="tab10", s=size, vmin=-0.5, vmax=9.5)


def plot_latent_map(model: LatentVariableModel, data: MNIST, n: int = 5000,
                    limit: float | None = 3.0, ax=None):
    """The posterior means of ``n`` examples in the 2-D latent plane, colored by digit.
    Chapter 7."""
    if model.nz != 2:
        raise ValueError(f"The latent map needs a 2-D latent space (nz=2), not nz={model.nz}.")
    ax = ax or plt.figure(figsize=(6.5, 5.5)).gca()
    points = scatter_codes(ax, model, data, n)
    ax.figure.colorbar(points, ax=ax, ticks=range(10), label="digit")
    if limit is not None:
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_aspect("equal")
    return ax


@torch.no_grad()
def plot_interpolation(model: LatentVariableModel, x_start: torch.Tensor, x_end: torch.Tensor,
                       steps: int = 10):
    """Decode evenly spaced points on the line between two images' posterior means (chapter 7)."""
    check_integers(2, MAX_STEPS, steps=steps)
    for name, x in (("x_start", x_start), ("x_end", x_end)):
        check_images(x.unsqueeze(0) if isinstance(x, torch.Tensor) else x, model.nx, name)
    mu, _ = model.encode(torch.stack([x_start, x_end]))
    t = torch.linspace(0, 1, steps, device=mu.device).unsqueeze(1)
    z = (1 - t) * mu[0] + t * mu[1]
    return show_images(model.probabilities(z), nrow=steps, title="interpolation in z")


def plot_history(history, reference: list[float] | None = None, reference_label: str = "seed"):
    """Average training loss and test negative ELBO per epoch (and a reference curve).
    Chapter 5."""
    ax = plt.figure(figsize=(6, 4)).gca()
    epochs = range(1, len(history.train_loss) + 1)
    ax.plot(epochs, history.train_loss, "o-", label="train (average loss)")
    if history.test_loss:
        ax.plot(epochs, history.test_loss, "s-", label="test (negative ELBO)")
    if reference:
        ax.plot(range(1, len(reference) + 1), reference, "x--", label=reference_label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per image")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def figure_png(fig, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes (and closed)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()
