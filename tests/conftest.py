"""Shared fixtures: the MNIST copy named by $VAE_DATA_DIR (CI points it at ../shared/data)."""

from __future__ import annotations

import os

import pytest
import torch
import zmq
from jupyter_client.manager import KernelManager

from vae_helpers import VAE, data_root, load_mnist


def in_ci() -> bool:
    """True under a CI run: ``CI`` set to anything but empty, ``false``, ``0`` or ``no``."""
    return os.environ.get("CI", "").strip().lower() not in ("", "false", "0", "no")


SLOW_MODULES = ("test_build.py", "test_book_browser.py")

# nbval's kernels: encrypted local connections (keys provisioned by the kernel manager), which
# also silences ipykernel's "running over TCP without encryption" warning, as in the build.
if zmq.has("curve") and "transport_encryption" in KernelManager.class_traits():
    KernelManager.class_traits()["transport_encryption"].default_value = "auto"


def pytest_collection_modifyitems(items) -> None:
    """Notebooks (nbval), the build and the browser tests are slow: ``-m "not slow"`` leaves
    them, with the tests marked slow by hand, to the full run."""
    for item in items:
        if item.path.suffix == ".ipynb" or item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


def _require_mnist() -> None:
    if not (data_root() / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        message = f"MNIST not found under {data_root()}; set VAE_DATA_DIR."
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def mnist_train():
    _require_mnist()
    return load_mnist("train", device="cpu")


@pytest.fixture(scope="session")
def mnist_test():
    _require_mnist()
    return load_mnist("test", device="cpu")


@pytest.fixture
def small_model() -> VAE:
    torch.manual_seed(0)
    return VAE(nh=32, nz=2)
