"""Errors that name the problem, and the two argument checks every helper uses."""

from __future__ import annotations

import math
import numbers


class DataError(RuntimeError):
    """MNIST files are missing, cannot be downloaded, or are corrupt (chapter 4)."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit the model (chapter 5)."""


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite during training (chapter 5)."""


def check_integers(low: int = 1, high: int | None = None, **values: object) -> None:
    """A ``ValueError`` naming the first of ``values`` that is not an integer in [low, high]
    (``True`` is not an integer here): sizes, counts, epochs."""
    for name, value in values.items():
        if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                or value < low or (high is not None and value > high)):
            if high is not None:
                kind = f"an integer from {low} to {high}"
            else:
                kind = {1: "a positive integer", 0: "an integer, zero or more"}.get(
                    low, f"an integer of at least {low}")
            raise ValueError(f"{name} must be {kind}, not {value!r}.")


def check_numbers(low: float = 0.0, strict: bool = True, **values: object) -> None:
    """A ``ValueError`` naming the first of ``values`` that is not a finite real number above
    ``low`` (or at least ``low`` when not ``strict``): rates, weights, limits."""
    for name, value in values.items():
        if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                or not math.isfinite(value) or value < low or (strict and value == low)):
            if low == 0:
                kind = "a positive number" if strict else "a finite number, zero or more"
            else:
                kind = f"a finite number {'above' if strict else 'of at least'} {low}"
            raise ValueError(f"{name} must be {kind}, not {value!r}.")
