"""MNIST as device-resident tensors, and shuffled mini-batches drawn from them.

The whole split lives on the target device as one ``(N, 784)`` float tensor with pixels in
[0, 1]. Mini-batches are slices of a device-side permutation: no per-image PIL transform and no
DataLoader in the training loop.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .errors import DataError, check_integers

DATA_DIR_VARIABLE = "VAE_DATA_DIR"
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
}
ALL_FILES = ", ".join(name for names in MNIST_FILES.values() for name in names[:2])
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
    Chapter 6.
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
class ImageSet:
    """What every data set here is: ``images`` (N, pixels) in [0, 1] and one row of ``labels``
    per image, on one device. ``fit``, the evaluation helpers and the plots take any of them.
    Chapter 4."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        for name in ("images", "labels"):
            if not isinstance(getattr(self, name), torch.Tensor):
                raise TypeError(f"{type(self).__name__} {name} must be a torch.Tensor, not "
                                f"{type(getattr(self, name)).__name__}.")
        if self.images.ndim != 2 or self.labels.ndim < 1 or \
                self.images.shape[0] != self.labels.shape[0]:
            raise ValueError(f"{type(self).__name__} needs images (N, pixels) and one label per "
                             f"image, not images {tuple(self.images.shape)} and labels "
                             f"{tuple(self.labels.shape)}.")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __getitem__(self, index) -> ImageSet:
        """A part of the set, e.g. ``test[:500]``, still images and labels together."""
        return replace(self, images=self.images[index], labels=self.labels[index])

    def to(self, device: str | torch.device) -> ImageSet:
        """The same set on ``device``."""
        return replace(self, images=self.images.to(device), labels=self.labels.to(device))

    def drawn(self, pixels: str, seed: int = 0) -> ImageSet:
        """The set with its pixels drawn once (``draw_pixels``), fixed by ``seed``: e.g. the
        stochastically binarized test set of the likelihood literature, ``test.drawn("binarized")``
        (chapter 6)."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        return replace(self, images=draw_pixels(self.images, pixels, generator))


class MNIST(ImageSet):
    """One MNIST split: ``images`` (N, 784) in [0, 1] and digit ``labels`` (N,) (chapter 4)."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds ``MNIST/raw``: ``root``, else ``$VAE_DATA_DIR``, else ``./data``.
    Chapter 4."""
    if root is None:
        root = os.environ.get(DATA_DIR_VARIABLE) or "data"
    return Path(root).expanduser()


def _raw_folder(root: Path) -> Path:
    return root / "MNIST" / "raw"


def _find(raw: Path, name: str) -> Path | None:
    """The file ``name`` in ``raw``, or its gzip-compressed ``name.gz`` (read directly, as
    torchvision does), or None when neither exists. Something there that is not a readable
    regular file is a ``DataError`` that says what it is, never "missing"."""
    for candidate in (raw / name, raw / f"{name}.gz"):
        try:
            mode = os.stat(candidate).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError:
            raise DataError(f"Permission denied reading {candidate}: make it and its folders "
                            f"readable, or set {DATA_DIR_VARIABLE} to another copy of MNIST."
                            ) from None
        except OSError as error:  # e.g. a loop of symbolic links
            raise DataError(f"{candidate} cannot be read ({error.strerror}); replace it with "
                            "the MNIST file.") from None
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise DataError(f"{candidate} is {kind}: replace it with the MNIST file of that "
                            "name.")
        return candidate
    return None


def _listed(names: list[str]) -> str:
    return f"{names[0]} is" if len(names) == 1 else f"{', '.join(names)} are"


def _missing(root: Path, split: str) -> list[str]:
    return [name for name in MNIST_FILES[split][:2] if _find(_raw_folder(root), name) is None]



def _download(root: Path, missing: list[str]) -> None:
    """Download MNIST with torchvision into a temporary folder and move the four files into
    ``root/MNIST/raw`` only once all arrived, so a failed download leaves ``root`` untouched;
    turn any failure into one clear sentence."""
    from torchvision.datasets import MNIST as TorchvisionMNIST

    try:
        with tempfile.TemporaryDirectory(prefix="mnist-") as temporary:
            TorchvisionMNIST(temporary, train=True, download=True)
            TorchvisionMNIST(temporary, train=False, download=True)
            _raw_folder(root).mkdir(parents=True, exist_ok=True)
            for names in MNIST_FILES.values():
                for name in names[:2]:
                    shutil.move(str(_raw_folder(Path(temporary)) / name), _raw_folder(root))
    except Exception as error:  # urllib, socket, checksum: the reader needs one sentence
        raise DataError(
            f"MNIST is not in {_raw_folder(root)} ({_listed(missing)} missing) and could not "
            f"be downloaded ({type(error).__name__}); copy the four MNIST files ({ALL_FILES}; "
            f"plain or .gz) into that folder, or set {DATA_DIR_VARIABLE} to a folder that "
            "holds MNIST/raw/."
        ) from None


def _read_idx(path: Path, expected_dims: tuple[int, ...]) -> torch.Tensor:
    """Read an IDX file of unsigned bytes (MNIST's format), plain or gzip-compressed, checking
    its header, and its size against the header before reading the data."""
    ndim = len(expected_dims)
    header_size = 4 + 4 * ndim
    compressed = path.suffix == ".gz"
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as file:
            header = file.read(header_size)
            if len(header) < header_size or header[:3] != b"\x00\x00\x08" or header[3] != ndim:
                raise DataError(f"{path} is not an MNIST IDX file of {ndim} dimensions "
                                "(bad header).")
            dims = tuple(int.from_bytes(header[4 + 4 * i: 8 + 4 * i], "big")
                         for i in range(ndim))
            size = math.prod(dims)
            held = None if compressed else os.fstat(file.fileno()).st_size - header_size
            if dims != expected_dims or (held is not None and held != size):
                raise DataError(
                    f"{path} is corrupt or truncated: its header says {dims}, expected "
                    f"{expected_dims}" + (f", and it holds {held} data bytes" if held is not None
                                          else "") + "; download it again.")
            data = file.read(size)
            if len(data) != size or file.read(1):
                raise DataError(f"{path} is corrupt or truncated: it does not hold the "
                                f"{size} data bytes its header announces; download it again.")
    except PermissionError:
        raise DataError(f"Permission denied reading {path}: make it readable.") from None
    except (OSError, EOFError) as error:
        raise DataError(f"{path} cannot be read ({error}); download it again.") from None
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(dims)


def load_mnist(
    split: str = "train",
    root: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    subset: int | None = None,
    download: bool = True,
) -> MNIST:
    """Load an MNIST split as tensors on ``device`` (default: the best available device).

    ``root`` defaults to ``$VAE_DATA_DIR`` and then ``./data``; torchvision's layout
    (``root/MNIST/raw/...``, the files plain or ``.gz``) is used. ``subset`` keeps the first
    ``subset`` examples, for quick runs. Missing files are downloaded when ``download`` is true
    and the internet is reachable; otherwise a ``DataError`` names the missing files (chapter 4).
    """
    from .devices import resolve_device

    if split not in MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}.")
    if subset is not None:
        check_integers(subset=subset)
    device = resolve_device(device)
    folder = data_root(root)
    missing = _missing(folder, split)
    if missing:
        if not download:
            raise DataError(
                f"MNIST is not in {_raw_folder(folder)}: {_listed(missing)} missing; set "
                f"{DATA_DIR_VARIABLE} to a folder that holds MNIST/raw/, or allow "
                "download=True where the internet is reachable.")
        _download(folder, missing)
    image_name, label_name, count = MNIST_FILES[split]
    raw = _raw_folder(folder)
    images = _read_idx(_find(raw, image_name), (count, IMAGE_SIDE, IMAGE_SIDE))
    labels = _read_idx(_find(raw, label_name), (count,))
    if int(labels.max()) > 9:
        raise DataError(f"{_find(raw, label_name)} holds labels above 9: it is corrupt.")
    if subset is not None:
        images, labels = images[:subset], labels[:subset]
    pixels = images.reshape(-1, NX).to(device=device, dtype=torch.float32).div_(255.0)
    return MNIST(images=pixels, labels=labels.to(device=device, dtype=torch.long))


def check_images(x: torch.Tensor, nx: int = NX, name: str = "x") -> None:
    """Raise a ``ValueError`` or ``TypeError`` naming the problem unless ``x`` is a (N, nx)
    float32 batch (the models' precision) of finite pixels in [0, 1] (chapter 4)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, not {type(x).__name__}.")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must hold floating-point pixels in [0, 1], not {x.dtype}.")
    if x.dtype != torch.float32:
        raise TypeError(f"{name} must be float32, as the models' weights are, not {x.dtype}; "
                        "convert it with .float().")
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
    Chapter 5.
    """
    check_integers(batch_size=batch_size)
    yield from torch.randperm(n, device=device, generator=generator).split(batch_size)
