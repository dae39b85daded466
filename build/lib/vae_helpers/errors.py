"""Errors that name the problem, so a reader knows what to fix."""


class DataError(RuntimeError):
    """MNIST files are missing, cannot be downloaded, or are corrupt."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit the model."""


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite during training."""
