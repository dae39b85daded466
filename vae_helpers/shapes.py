"""A small procedural data set with known factors, in the spirit of dSprites.

Each image is one white shape on a black ``side`` x ``side`` canvas, set by five discrete
factors: ``shape`` (square, ellipse, triangle), ``scale``, ``rotation``, ``x`` and ``y``. The
factors are drawn uniformly from a seed and returned beside the images, so that a model's code
can be compared with what really made each image (``disentanglement.py``). Rendering is
vectorized and anti-aliased by supersampling; each distinct combination of factors (there are
4,608) is drawn once, so any number of images takes a few seconds on one CPU core.
"""

from __future__ import annotations

import math

import torch

from .data import ImageSet
from .errors import check_integers

FACTORS = ("shape", "scale", "rotation", "x", "y")
FACTOR_SIZES = (3, 4, 6, 8, 8)
SHAPE_NAMES = ("square", "ellipse", "triangle")
SIDE = 32
ROTATION_RANGE = math.pi / 2  # rotations 0, 15, ..., 75 degrees: none maps a shape onto itself
_SUPERSAMPLE = 3  # each pixel is the mean of 3 x 3 point samples
_CHUNK = 2048


class Shapes(ImageSet):
    """Images (N, side * side) in [0, 1] and their factors (N, 5) as ``labels``: integer levels
    ``0 <= labels[:, k] < FACTOR_SIZES[k]``, also called ``factors`` (chapter 13)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.labels.shape != (len(self), len(FACTORS)):
            raise ValueError(f"Shapes needs factors (N, {len(FACTORS)}), not "
                             f"{tuple(self.labels.shape)}.")

    @property
    def factors(self) -> torch.Tensor:
        return self.labels


def factor_values(side: int = SIDE) -> dict[str, torch.Tensor]:
    """The physical value of each level of each factor: shape index, half-size in pixels,
    rotation in radians, and the center's x and y in pixels (the shape always fits) (chapter 13)."""
    _check_side(side)
    scales = torch.linspace(0.12, 0.21, FACTOR_SIZES[1]) * side
    margin = 0.29 * side  # the largest shape, rotated, stays inside the canvas
    return {"shape": torch.arange(FACTOR_SIZES[0], dtype=torch.float32),
            "scale": scales,
            "rotation": torch.arange(FACTOR_SIZES[2]) * ROTATION_RANGE / FACTOR_SIZES[2],
            "x": torch.linspace(margin, side - margin, FACTOR_SIZES[3]),
            "y": torch.linspace(margin, side - margin, FACTOR_SIZES[4])}


def _check_side(side: int) -> None:
    check_integers(16, side=side)


def _check_factors(factors: torch.Tensor) -> None:
    if not isinstance(factors, torch.Tensor):
        raise TypeError(f"factors must be a torch.Tensor, not {type(factors).__name__}.")
    if factors.dtype != torch.long or factors.ndim != 2 or factors.shape[1] != len(FACTORS):
        raise ValueError(f"factors must be an integer (N, {len(FACTORS)}) tensor of levels, "
                         f"not {factors.dtype} with shape {tuple(factors.shape)}.")
    sizes = torch.tensor(FACTOR_SIZES, device=factors.device)
    if len(factors) and bool(((factors < 0) | (factors >= sizes)).any()):
        raise ValueError(f"factors out of range: column k must lie in [0, FACTOR_SIZES[k]), "
                         f"FACTOR_SIZES = {FACTOR_SIZES}.")


def _inside(shape: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Whether the point (u, v), in the shape's own frame with half-size 1, is in the shape."""
    square = torch.maximum(u.abs(), v.abs()) <= 0.85
    ellipse = u.pow(2) + (v / 0.5).pow(2) <= 1.0
    triangle = torch.ones_like(u, dtype=torch.bool)
    for angle in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6):  # three edges, inradius 0.5
        triangle &= u * math.cos(angle) + v * math.sin(angle) <= 0.5
    return torch.where(shape == 0, square, torch.where(shape == 1, ellipse, triangle))


def render_shapes(factors: torch.Tensor, side: int = SIDE) -> torch.Tensor:
    """The (N, side * side) float32 images of the given (N, 5) factor levels, deterministic.
    Chapter 13."""
    _check_factors(factors)
    _check_side(side)
    values = {name: table.to(factors.device) for name, table in factor_values(side).items()}
    offsets = (torch.arange(_SUPERSAMPLE, device=factors.device) + 0.5) / _SUPERSAMPLE
    points = (torch.arange(side, device=factors.device)[:, None] + offsets).reshape(-1)
    images = []
    for chunk in factors.split(_CHUNK):
        shape = chunk[:, 0, None, None]
        scale = values["scale"][chunk[:, 1]][:, None, None]
        angle = values["rotation"][chunk[:, 2]][:, None, None]
        dx = points[None, None, :] - values["x"][chunk[:, 3]][:, None, None]
        dy = values["y"][chunk[:, 4]][:, None, None] - points[None, :, None]  # y points up
        u = (torch.cos(angle) * dx + torch.sin(angle) * dy) / scale  # rotate by -angle
        v = (-torch.sin(angle) * dx + torch.cos(angle) * dy) / scale
        fine = _inside(shape, u, v).float()
        coarse = fine.reshape(len(chunk), side, _SUPERSAMPLE, side, _SUPERSAMPLE).mean((2, 4))
        images.append(coarse.reshape(len(chunk), side * side))
    if not images:
        return torch.empty(0, side * side, device=factors.device)
    return torch.cat(images)


def make_shapes(n: int, seed: int = 0, side: int = SIDE,
                device: str | torch.device = "cpu") -> Shapes:
    """``n`` images with factor levels drawn uniformly and independently from ``seed``.
    Chapter 13."""
    check_integers(n=n)
    check_integers(0, seed=seed)
    _check_side(side)
    generator = torch.Generator().manual_seed(seed)
    factors = torch.stack([torch.randint(size, (n,), generator=generator)
                           for size in FACTOR_SIZES], dim=1)
    unique, where = torch.unique(factors, dim=0, return_inverse=True)  # at most 4,608 to draw
    return Shapes(render_shapes(unique, side)[where], factors).to(device)
