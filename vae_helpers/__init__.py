"""Helpers for the hands-on book on variational autoencoders.

Data flows one way: ``data`` -> ``model`` -> ``losses`` -> ``training`` -> ``evaluation`` /
``plots`` / ``widgets``. Notebooks import what they need in one line::

    from vae_helpers import load_mnist, VAE, fit
"""

from .checkpoints import load_checkpoint, save_checkpoint
from .data import MNIST, batches, check_images, data_root, load_mnist
from .devices import best_device, describe_device
from .errors import CheckpointError, DataError, TrainingDiverged
from .evaluation import iw_log_likelihood, mean_negative_elbo
from .losses import (
    iw_bound,
    kl_to_standard_normal,
    log_bernoulli,
    log_normal_diag,
    log_standard_normal,
    negative_elbo,
)
from .model import VAE, count_parameters
from .training import DEFAULT_SEED, History, fit, load_or_train, make_optimizer, train_epoch

__all__ = [
    "CheckpointError", "DataError", "DEFAULT_SEED", "History", "MNIST", "TrainingDiverged", "VAE",
    "batches", "best_device", "check_images", "count_parameters", "data_root", "describe_device",
    "fit", "iw_bound", "iw_log_likelihood", "kl_to_standard_normal", "load_checkpoint",
    "load_mnist", "load_or_train", "log_bernoulli", "log_normal_diag", "log_standard_normal",
    "make_optimizer", "mean_negative_elbo", "negative_elbo", "save_checkpoint", "train_epoch",
]
