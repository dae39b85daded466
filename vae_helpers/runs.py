"""Runs that are seeded and cached: build and train in one call (``train_model``, the command
line's numbers), or load the model a previous notebook trained (``load_or_train``)."""

from __future__ import annotations

import inspect
import os

import torch

from .checkpoints import check_target, load_checkpoint, save_checkpoint
from .data import ImageSet
from .errors import CheckpointError
from .model import LatentVariableModel, model_classes
from .training import DEFAULT_SEED, History, fit


def train_model(
    train: ImageSet,
    test: ImageSet | None = None,
    epochs: int = 5,
    seed: int = DEFAULT_SEED,
    kind: str = "VAE",
    **options,
) -> tuple[LatentVariableModel, History]:
    """Build a ``kind`` model with its initial weights drawn from ``seed``, train it with
    ``fit`` (same ``seed``) and return ``(model, history)`` (chapter 5).

    ``options`` holds the model's sizes and likelihood (``nh``, ``nz``, ``likelihood``...) and any
    other ``fit`` argument (``pixels``, ``beta``, ``lr``, ``progress``, ``on_epoch``...).
    ``history.settings`` records them, for ``load_or_train``.
    """
    classes = model_classes()
    if kind not in classes:
        raise ValueError(f"kind must be one of {sorted(classes)}, not {kind!r}.")
    model_options = inspect.signature(classes[kind]).parameters
    sizes = {name: value for name, value in options.items() if name in model_options}
    fit_options = {name: value for name, value in options.items() if name not in model_options}
    torch.manual_seed(seed)
    model = classes[kind](**sizes)
    history = fit(model, train, test, epochs=epochs, seed=seed,
                  settings=_settings(kind, epochs, seed, options), **fit_options)
    return model, history


def _settings(kind: str, epochs: int, seed: int, options: dict) -> dict:
    """What identifies a ``train_model`` run: its plain-valued arguments (not those that only
    say how it runs: ``progress``, ``checkpoint``, ``resume``)."""
    plain = (int, float, str, bool, type(None))
    return {"kind": kind, "epochs": epochs, "seed": seed,
            **{name: value for name, value in sorted(options.items())
               if name not in ("progress", "checkpoint", "resume") and isinstance(value, plain)}}


def load_or_train(
    path: str | os.PathLike,
    train: ImageSet,
    test: ImageSet | None = None,
    epochs: int = 5,
    seed: int = DEFAULT_SEED,
    kind: str = "VAE",
    **options,
) -> tuple[LatentVariableModel, History]:
    """Load the checkpoint at ``path`` when it holds a model that ``train_model`` trained with
    exactly these arguments (``kind``, ``epochs``, ``seed``, sizes, likelihood, ``pixels``,
    ``beta``...), else train one with ``train_model`` and save it there, so later notebooks load
    it instead of training again (chapter 7 on). Arguments that are not plain values are not
    compared. The path is checked before training, so a model is never trained only to be lost.
    """
    check_target(path)
    try:
        model, saved = load_checkpoint(path, device=train.device)
        if saved.get("settings") == _settings(kind, epochs, seed, options):
            return model, History.from_dict(saved)
    except CheckpointError:
        pass
    model, history = train_model(train, test, epochs, seed, kind, **options)
    save_checkpoint(path, model, history.as_dict())
    return model, history
