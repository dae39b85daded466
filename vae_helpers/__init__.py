"""Helpers for the hands-on book on variational autoencoders.

Data flows one way. The core modules, each importing only those before it: ``errors``,
``devices``, ``data``, ``losses``, ``likelihoods``, ``model``, ``objectives``, ``evaluation``,
``steps``, ``cuda_graphs``, ``checkpoints``, ``training``, ``runs``, ``plots``, ``export``,
``widgets``. The later chapters' modules (``priors``, ``autoregressive``, ``shapes``,
``disentanglement``, ``quantization``...) build on them. Notebooks import what they need in one
line::

    from vae_helpers import load_mnist, VAE, fit

Each name is imported from its module when it is first used, so ``import vae_helpers`` (and the
command line's ``--help``) does not pay for torch, matplotlib, ipywidgets or torchvision until
something needs them. The docstring of each helper names the chapter that teaches it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re

# Where each public name lives: module -> names.
_EXPORTS = {
    "ais": ("ais_log_likelihood", "anneal", "AnnealingPath", "bdmc", "hmc_step",
        "sigmoid_schedule", "simulate_data"),
    "autoregressive": ("AutoregressiveVAE", "committed_rate_log_var"),
    "checkpoints": ("check_target", "load_checkpoint", "read_checkpoint", "save_checkpoint",
        "training_state"),
    "data": ("batch_indices", "check_images", "data_root", "draw_pixels", "ImageSet", "load_mnist",
        "MNIST"),
    "devices": ("available_devices", "best_device", "describe_device", "resolve_device"),
    "deep_mlp": ("DeepVAE",),
    "disentanglement": ("aggregate_log_densities", "beta_tc_loss", "discretize", "entropy",
        "estimate_kl_decomposition", "fit_beta_tc", "kl_decomposition", "mutual_information_gap",
        "mutual_information_matrix"),
    "divergences": ("kl_discrete", "kl_full_gaussians", "kl_gaussians", "monte_carlo_kl"),
    "errors": ("CheckpointError", "DataError", "TrainingDiverged"),
    "export": ("export_onnx",),
    "flows": ("FlowVAE", "IAFStep", "log_normal_full", "planar_flow", "PlanarStep",
        "scale_tril"),
    "evaluation": ("active_units", "grid_log_likelihood", "iw_log_likelihood", "kl_per_dimension",
        "log_weights", "mean_negative_elbo", "rate_and_distortion"),
    "gradient_estimators": ("reparameterization_gradients", "score_function_gradients"),
    "hierarchical": ("HierarchicalVAE", "hierarchical_log_likelihood", "hierarchical_loss",
        "kl_normal_diag", "LadderVAE", "layer_active_units", "layer_kl_terms", "TwoLayerVAE"),
    "latent_diffusion": ("Denoiser", "export_denoiser", "fit_diffusion", "LatentDiffusion"),
    "iwae_gradients": ("dreg_loss", "stl_loss"),
    "likelihoods": ("BernoulliPixels", "ContinuousBernoulliPixels", "GaussianPixels",
        "make_likelihood", "PixelLikelihood"),
    "linear_gaussian": ("LinearGaussian", "random_linear_gaussian"),
    "losses": ("iw_bound", "kl_to_standard_normal", "log_bernoulli", "log_normal_diag",
        "log_standard_normal", "negative_elbo"),
    "model": ("ConditionalVAE", "ConvVAE", "count_parameters", "LatentVariableModel", "VAE"),
    "objectives": ("cyclical_kl_weight", "estimator_snr", "free_bits_loss", "gradient_snr",
        "iwae_loss", "log_weight_terms"),
    "plots": ("encode_means", "latent_grid", "plot_history", "plot_interpolation",
        "plot_latent_map", "plot_manifold", "plot_reconstructions", "plot_samples", "show_images"),
    "tables": ("Table",),
    "priors": ("aggregate_log_density", "MixturePrior", "StandardNormalPrior"),
    "quantization": ("codebook_perplexity", "fit_vqvae", "VectorQuantizer", "VQVAE",
        "vqvae_loss"),
    "semi_supervised": ("classifier_accuracy", "fit_classifier", "fit_m2", "labeled_loss",
        "m2_loss", "make_classifier", "SemiSupervisedVAE", "split_labels", "unlabeled_loss"),
    "shapes": ("FACTOR_SIZES", "FACTORS", "factor_values", "make_shapes", "render_shapes",
        "SHAPE_NAMES", "Shapes"),
    "steps": ("kl_weight", "make_optimizer", "train_epoch"),
    "training": ("DEFAULT_SEED", "fit", "History"),
    "runs": ("load_or_train", "train_model"),
    "cuda_graphs": ("CudaGraphEpoch",),
    "widgets": ("DiffusionExplorer", "LatentExplorer"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF, key=str.lower)


def __getattr__(name: str):
    """Import ``name`` from its module on first use (PEP 562), then keep it here."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'vae_helpers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


def check_torch_pair(version=importlib.metadata.version) -> None:
    """An ``ImportError`` in one line when the installed torchvision was built for another torch
    (as a CPU-only index or an old wheel can leave them); torchvision 0.N pairs with torch
    2.(N - 15). Nothing is imported to find out."""
    try:
        torch_version, vision_version = version("torch"), version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        return
    torch_minor, vision_minor = (re.match(r"(\d+)\.(\d+)", text) for text in
                                 (torch_version, vision_version))
    if not (torch_minor and vision_minor and torch_minor[1] == "2" and vision_minor[1] == "0"):
        return
    wanted = int(torch_minor[2]) + 15
    if int(vision_minor[2]) != wanted:
        raise ImportError(
            f"torchvision {vision_version} does not match torch {torch_version} (it needs "
            f"torchvision 0.{wanted}): reinstall them together, e.g. pip install --upgrade "
            f"--force-reinstall torch=={torch_version.split('+')[0]} 'torchvision==0.{wanted}.*'.")


check_torch_pair()
