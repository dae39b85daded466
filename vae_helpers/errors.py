"""Errors that name the problem, so a reader knows what to fix."""


class DataError(RuntimeError):
    """MNIST files are missing, cannot be downloaded, or are corrupt."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit the model."""


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite during training."""


def check_positive_integers(**values: object) -> None:
    """A ``ValueError`` naming the first of ``values`` that is not a positive integer (sizes,
    counts, epochs; ``True`` is not an integer here)."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}.")


def check_count(name: str, value: object, low: int = 1, high: int | None = None) -> int:
    """``value`` if it is an integer in [low, high], else a ``ValueError`` naming ``name``."""
    import numbers

    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or value < low or (high is not None and value > high)):
        bounds = f"at least {low}" if high is None else f"from {low} to {high}"
        raise ValueError(f"{name} must be an integer {bounds}, not {value!r}.")
    return int(value)


def check_positive(name: str, value: object) -> float:
    """``value`` if it is a finite number above zero, else a ``ValueError`` naming ``name``."""
    import math
    import numbers

    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value <= 0):
        raise ValueError(f"{name} must be a finite number above zero, not {value!r}.")
    return float(value)
