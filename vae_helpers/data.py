"""MNIST as device-resident tensors, and shuffled mini-batches drawn from them.

The whole split lives on the target device as one ``(N, 784)`` float tensor with pixels in
[0, 1]. Mini-batches are slices of a device-side permutation: no per-image PIL transform and no
DataLoader in the training loop.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import DataError

DATA_DIR_VARIABLE = "VAE_DATA_DIR"
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
}
IMAGE_SIDE = 28
NX = IMAGE_SIDE * IMAGE_SIDE
LEVELS = 256  # MNIST stores each pixel as one of 256 gray levels, k / 255
PIXELS = ("gray", "binarized", "dequantized")


def draw_pixels(x: torch.Tensor, pixels: str = "gray",
                generator: torch.Generator | None = None) -> torch.Tensor:
    """The images a model is trained or tested on, made from gray levels ``x`` in [0, 1]:

    - ``"gray"``: ``x`` itself (the original tutorial);
    - ``"binarized"``: each pixel drawn as 1 with probability x, else 0: binary images;
    - ``"dequantized"``: level k = 255 x spread uniformly over its bin, (k + u) / 256 with
      u ~ U(0, 1): a continuous density of these is a bound on the probability of the 8-bit image.
    """
    if pixels == "gray":
        return x
    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if pixels == "binarized":
        return (noise < x).to(x.dtype)
    if pixels == "dequantized":
        return (torch.round(x * (LEVELS - 1)) + noise) / LEVELS
    raise ValueError(f"pixels must be one of {PIXELS}, not {pixels!r}.")


@dataclass(frozen=True)
class MNIST:
    """One MNIST split: ``images`` (N, 784) in [0, 1] and ``labels`` (N,) on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __getitem__(self, index) -> MNIST:
        """A part of the split, e.g. ``test[:500]``, still images and labels together."""
        return MNIST(self.images[index], self.labels[index])

    def to(self, device: str | torch.device) -> MNIST:
        """The same split on ``device``."""
        return MNIST(self.images.to(device), self.labels.to(device))

    def drawn(self, pixels: str, seed: int = 0) -> MNIST:
        """The split with its pixels drawn once (``draw_pixels``), fixed by ``seed``: e.g. the
        stochastically binarized test set of the likelihood literature, ``test.drawn("binarized")``.
        """
        generator = torch.Generator(device=self.device).manual_seed(seed)
        return MNIST(draw_pixels(self.images, pixels, generator), self.labels)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds ``MNIST/raw``: ``root``, else ``$VAE_DATA_DIR``, else ``./data``."""
    if root is None:
        root = os.environ.get(DATA_DIR_VARIABLE) or "data"
    return Path(root).expanduser()


def _raw_folder(root: Path) -> Path:
    return root / "MNIST" / "raw"


def _have_files(root: Path, split: str) -> bool:
    return all((_raw_folder(root) / name).is_file() for name in MNIST_FILES[split][:2])


def _download(root: Path) -> None:
    """Download MNIST with torchvision; turn any failure into one clear sentence."""
    from torchvision.datasets import MNIST as TorchvisionMNIST

    try:
        TorchvisionMNIST(str(root), train=True, download=True)
        TorchvisionMNIST(str(root), train=False, download=True)
    except Exception as error:  # urllib, socket, checksum: the reader needs one sentence
        raise DataError(
            f"MNIST is not in {_raw_folder(root)} and could not be downloaded "
            f"({type(error).__name__}); copy the four MNIST files into that folder or set "
            f"{DATA_DIR_VARIABLE} to a folder that holds MNIST/raw/."
        ) from None


def _read_idx(path: Path, expected_dims: tuple[int, ...]) -> torch.Tensor:
    """Read an IDX file of unsigned bytes (MNIST's format), checking its header and size."""
    raw = path.read_bytes()
    ndim = len(expected_dims)
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:3] != b"\x00\x00\x08" or raw[3] != ndim:
        raise DataError(f"{path} is not an MNIST IDX file of {ndim} dimensions (bad header).")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if dims != expected_dims or len(raw) - header != math.prod(dims):
        raise DataError(
            f"{path} is corrupt or truncated: header says {dims}, expected {expected_dims}, "
            f"and it holds {len(raw) - header} data bytes; download it again."
        )
    return torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8).reshape(dims)


def load_mnist(
    split: str = "train",
    root: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    subset: int | None = None,
    download: bool = True,
) -> MNIST:
    """Load an MNIST split as tensors on ``device`` (default: the best available device).

    ``root`` defaults to ``$VAE_DATA_DIR`` and then ``./data``; torchvision's layout
    (``root/MNIST/raw/...``) is used. ``subset`` keeps the first ``subset`` examples, for quick
    runs. Missing files are downloaded when ``download`` is true and the internet is reachable.
    """
    from .devices import best_device

    if split not in MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}.")
    if subset is not None and subset < 1:
        raise ValueError(f"subset must be a positive number of examples, not {subset}.")
    folder = data_root(root)
    if not _have_files(folder, split):
        if not download:
            raise DataError(
                f"MNIST is not in {_raw_folder(folder)}; set {DATA_DIR_VARIABLE} to a folder "
                "that holds MNIST/raw/, or allow download=True where the internet is reachable."
            )
        _download(folder)
    image_name, label_name, count = MNIST_FILES[split]
    images = _read_idx(_raw_folder(folder) / image_name, (count, IMAGE_SIDE, IMAGE_SIDE))
    labels = _read_idx(_raw_folder(folder) / label_name, (count,))
    if int(labels.max()) > 9:
        raise DataError(f"{_raw_folder(folder) / label_name} holds labels above 9: it is corrupt.")
    if subset is not None:
        images, labels = images[:subset], labels[:subset]
    device = torch.device(device) if device is not None else best_device()
    pixels = images.reshape(-1, NX).to(device=device, dtype=torch.float32).div_(255.0)
    return MNIST(images=pixels, labels=labels.to(device=device, dtype=torch.long))


def check_images(x: torch.Tensor, nx: int = NX, name: str = "x") -> None:
    """Raise a ``ValueError`` naming the problem unless ``x`` is a (N, nx) float batch in [0, 1]."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, not {type(x).__name__}.")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must hold floating-point pixels in [0, 1], not {x.dtype}.")
    if x.ndim != 2 or x.shape[1] != nx:
        raise ValueError(f"{name} must have shape (batch, {nx}), not {tuple(x.shape)}.")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: it holds no examples.")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values.")
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{name} must hold pixel values in [0, 1], found [{low:.3g}, {high:.3g}].")


def batch_indices(
    n: int,
    batch_size: int = 128,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
) -> Iterator[torch.Tensor]:
    """Yield index tensors of shuffled mini-batches over ``n`` examples.

    The permutation is drawn on ``device``; gathering each batch with its indices keeps the data
    in place (one small copy per batch, which stays in cache) and draws images and labels alike.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}.")
    yield from torch.randperm(n, device=device, generator=generator).split(batch_size)
