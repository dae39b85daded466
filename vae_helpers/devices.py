"""Choosing the device once, so no code is hard-wired to CUDA."""

from __future__ import annotations

import os

import torch


def best_device() -> torch.device:
    """CUDA when a GPU is present, else the CPU (chapter 5)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def available_devices() -> list[str]:
    """The devices this machine can train on: ``cpu``, then ``cuda:0``, ``cuda:1``.. (chapter 5)."""
    return ["cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` checked against this machine (default: ``best_device()``).

    Raises a ``ValueError`` that lists the available devices when ``device`` is not one of them
    (``cuda`` without a GPU, ``cuda:9`` on a one-GPU machine, ``tpu``, ``meta``...) (chapter 5).
    """
    if device is None:
        return best_device()
    available = ", ".join(available_devices())
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {str(device)!r} is not a device name; this machine has: "
                         f"{available}.") from None
    if resolved.type == "cpu" and resolved.index in (None, 0):
        return torch.device("cpu")
    if resolved.type == "cuda":
        count = torch.cuda.device_count()
        index = 0 if resolved.index is None else resolved.index
        if index < count:
            return torch.device("cuda", index) if resolved.index is not None else resolved
        found = "no GPU" if count == 0 else f"{count} GPU{'s' if count > 1 else ''}"
        raise ValueError(f"device {str(device)!r} is not available: this machine has {found} "
                         f"(available: {available}).")
    raise ValueError(f"device {str(device)!r} cannot train these models here; this machine has: "
                     f"{available}.")


def memory_bytes(device: torch.device) -> int | None:
    """The memory of ``device`` in bytes: the GPU's, or the machine's physical memory; None
    where the system does not say (``os.sysconf`` is Unix-only)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[1]
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def describe_device(device: torch.device | str | None = None) -> str:
    """A one-line description of ``device`` (default: the best available one) (chapter 5)."""
    device = torch.device(device) if device is not None else best_device()
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'' if threads == 1 else 's'})"
