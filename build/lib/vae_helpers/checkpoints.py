"""Checkpoints written atomically and loaded safely (``weights_only=True``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from .errors import CheckpointError
from .model import MODELS, LatentVariableModel


def save_checkpoint(
    path: str | os.PathLike, model: LatentVariableModel, history: dict | None = None
) -> Path:
    """Write the model's sizes, weights and optional history to ``path`` atomically.

    The file is written beside ``path`` under a temporary name and then renamed, so a crash
    never leaves a half-written checkpoint where a good one was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "kind": type(model).__name__,
        "config": model.config,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": history or {},
    }
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | os.PathLike,
    model: LatentVariableModel | None = None,
    device: str | torch.device | None = None,
) -> tuple[LatentVariableModel, dict]:
    """Load ``(model, history)`` from ``path``; build the model when none is given.

    A given ``model`` must have the checkpoint's sizes, or a ``CheckpointError`` says which differ.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path} is not a readable checkpoint ({error}).") from None
    if not isinstance(payload, dict) or not {"config", "state_dict"} <= payload.keys():
        raise CheckpointError(f"{path} is not a vae_helpers checkpoint (no config/state_dict).")
    kind, config = payload.get("kind", "VAE"), payload["config"]
    if kind not in MODELS:
        raise CheckpointError(f"{path} holds an unknown kind of model, {kind!r}.")
    if model is None:
        model = MODELS[kind](**config)
    elif type(model).__name__ != kind or model.config != config:
        raise CheckpointError(
            f"{path} holds a {kind} with sizes {config}, but the model is a "
            f"{type(model).__name__} with sizes {model.config}."
        )
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(f"{path} does not fit the model: {error}") from None
    if device is not None:
        model.to(device)
    return model, payload.get("history", {})
