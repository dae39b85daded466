"""Shared fixtures: the MNIST copy named by $VAE_DATA_DIR (CI points it at ../shared/data)."""

from __future__ import annotations

import os

import pytest
import torch

from vae_helpers import VAE, data_root, load_mnist


def in_ci() -> bool:
    """True under a CI run: ``CI`` set to anything but empty, ``false``, ``0`` or ``no``."""
    return os.environ.get("CI", "").strip().lower() not in ("", "false", "0", "no")


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
