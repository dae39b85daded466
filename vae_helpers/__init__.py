"""Helpers for the hands-on book on variational autoencoders.

Data flows one way: ``data`` -> ``model`` -> ``losses`` -> ``training`` -> ``evaluation`` /
``plots`` / ``widgets``. Notebooks import what they need in one line::

    from vae_helpers import load_mnist, VAE, fit
"""

from .autoregressive import AutoregressiveVAE, committed_rate_log_var
from .checkpoints import load_checkpoint, save_checkpoint
from .data import MNIST, batch_indices, check_images, data_root, draw_pixels, load_mnist
from .devices import best_device, describe_device
from .divergences import kl_discrete, kl_full_gaussians, kl_gaussians, monte_carlo_kl
from .errors import CheckpointError, DataError, TrainingDiverged
from .evaluation import (
    active_units,
    grid_log_likelihood,
    iw_log_likelihood,
    kl_per_dimension,
    log_weights,
    mean_negative_elbo,
    rate_and_distortion,
)
from .gradient_estimators import reparameterization_gradients, score_function_gradients
from .likelihoods import (
    BernoulliPixels,
    ContinuousBernoulliPixels,
    GaussianPixels,
    PixelLikelihood,
    make_likelihood,
)
from .linear_gaussian import LinearGaussian, random_linear_gaussian
from .losses import (
    iw_bound,
    kl_to_standard_normal,
    log_bernoulli,
    log_normal_diag,
    log_standard_normal,
    negative_elbo,
)
from .model import VAE, ConditionalVAE, ConvVAE, LatentVariableModel, count_parameters
from .objectives import (
    cyclical_kl_weight,
    free_bits_loss,
    gradient_snr,
    iwae_loss,
    log_weight_terms,
)
from .plots import (
    encode_means,
    latent_grid,
    plot_history,
    plot_interpolation,
    plot_latent_map,
    plot_manifold,
    plot_reconstructions,
    plot_samples,
    show_images,
)
from .priors import MixturePrior, StandardNormalPrior, aggregate_log_density
from .training import (
    DEFAULT_SEED,
    CudaGraphEpoch,
    History,
    fit,
    kl_weight,
    load_or_train,
    make_optimizer,
    train_epoch,
    train_model,
)
from .widgets import LatentExplorer

__all__ = [
    "active_units",
    "aggregate_log_density",
    "AutoregressiveVAE",
    "batch_indices",
    "BernoulliPixels",
    "best_device",
    "check_images",
    "ConditionalVAE",
    "ContinuousBernoulliPixels",
    "committed_rate_log_var",
    "ConvVAE",
    "CudaGraphEpoch",
    "CheckpointError",
    "cyclical_kl_weight",
    "count_parameters",
    "data_root",
    "DataError",
    "draw_pixels",
    "DEFAULT_SEED",
    "describe_device",
    "encode_means",
    "fit",
    "free_bits_loss",
    "GaussianPixels",
    "gradient_snr",
    "grid_log_likelihood",
    "History",
    "iw_bound",
    "iw_log_likelihood",
    "iwae_loss",
    "kl_discrete",
    "kl_full_gaussians",
    "kl_per_dimension",
    "kl_weight",
    "LatentVariableModel",
    "kl_gaussians",
    "kl_to_standard_normal",
    "latent_grid",
    "LatentExplorer",
    "LinearGaussian",
    "load_checkpoint",
    "load_mnist",
    "load_or_train",
    "log_bernoulli",
    "log_weight_terms",
    "log_weights",
    "log_normal_diag",
    "log_standard_normal",
    "make_likelihood",
    "make_optimizer",
    "mean_negative_elbo",
    "MixturePrior",
    "MNIST",
    "monte_carlo_kl",
    "negative_elbo",
    "PixelLikelihood",
    "plot_history",
    "rate_and_distortion",
    "plot_interpolation",
    "plot_latent_map",
    "plot_manifold",
    "plot_reconstructions",
    "plot_samples",
    "random_linear_gaussian",
    "reparameterization_gradients",
    "save_checkpoint",
    "score_function_gradients",
    "show_images",
    "StandardNormalPrior",
    "train_epoch",
    "train_model",
    "TrainingDiverged",
    "VAE",
]
