"""Choosing the device once, so no code is hard-wired to CUDA."""

from __future__ import annotations

import torch


def best_device() -> torch.device:
    """CUDA when a GPU is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe_device(device: torch.device | str | None = None) -> str:
    """A one-line description of ``device`` (default: the best available one)."""
    device = torch.device(device) if device is not None else best_device()
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"
