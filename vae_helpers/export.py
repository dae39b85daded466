"""Trained networks as ONNX files, for ONNX Runtime in a web page.

``export_onnx`` writes ``{name}_encoder.onnx``, x (and the label y) -> (mu, log_var), and
``{name}_decoder.onnx``, z (and y) -> the pixel means E[x | z], what a page shows.
``latent_diffusion.export_denoiser`` uses ``export_network`` for a diffusion prior's network.
All take a batch of any size. Images are flat (batch, 784) gray
levels in [0, 1], labels int64 and steps float32, as in PyTorch. The legacy TorchScript exporter
(``dynamo=False``) needs only the ``onnx`` package and records the networks exactly as they run
here.
"""

from __future__ import annotations

import copy
import os
import re
import warnings
from pathlib import Path

import torch
from torch import nn

from .model import LatentVariableModel

# What the legacy exporter says of itself (torch 2.9+).
_EXPORTER_DEPRECATION = ("You are using the legacy TorchScript-based ONNX export",
                         "The feature will be removed")


class _Encoder(nn.Module):
    def __init__(self, model: LatentVariableModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, *label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode(x, *label)


class _Decoder(nn.Module):
    def __init__(self, model: LatentVariableModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor, *label: torch.Tensor) -> torch.Tensor:
        return self.model.probabilities(z, *label)


def check_name(name: str) -> None:
    """Refuse a file-name stem that is not letters, digits, ``_`` or ``-`` (chapters 7, 16)."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ValueError(f"name must be letters, digits, '_' or '-', not {name!r}.")


def export_network(network: nn.Module, example: tuple[torch.Tensor, ...], path: Path,
            inputs: list[str], outputs: list[str]) -> Path:
    """Trace ``network`` on ``example`` into ``path``, every input and output batched; returns
    ``path``. The way every network of the book reaches a page (chapters 7 and 16)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        # The tracer warns about the models' argument checks, which it records as constants
        # (they hold for every input of the declared shapes), and about its own deprecation:
        # those warnings only, any other still shows.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning,
                                module=r"vae_helpers\.")
        for message in _EXPORTER_DEPRECATION:
            warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
        torch.onnx.export(network, example, path, dynamo=False, input_names=inputs,
                          output_names=outputs,
                          dynamic_axes={n: {0: "batch"} for n in inputs + outputs})
    return path


def export_onnx(
    model: LatentVariableModel, folder: str | os.PathLike, name: str,
    parts: tuple[str, ...] = ("encoder", "decoder"),
) -> dict[str, Path]:
    """Write ``model``'s encoder and decoder (or the ``parts`` named) to ``folder`` as ONNX;
    returns their paths. Chapter 7 uses it through ``LatentExplorer.static_html``, to run the
    model in its page; chapter 16's diffusion explorer takes the decoder only.

    Inputs are named ``x``, ``z`` and, for a conditional model, ``y``; outputs ``mu``,
    ``log_var`` and ``pixels``. ``name`` is a file-name stem: letters, digits, ``_`` and ``-``.
    """
    if not isinstance(model, LatentVariableModel):
        raise TypeError(f"model must be a vae_helpers model, not {type(model).__name__}.")
    check_name(name)
    if not parts or not set(parts) <= {"encoder", "decoder"}:
        raise ValueError(f"parts must name 'encoder' and/or 'decoder', not {parts!r}.")
    model = copy.deepcopy(model).cpu().eval()  # the caller's model stays where it is
    label = (torch.zeros(1, dtype=torch.int64),) if model.conditional else ()
    label_names = ["y"] if model.conditional else []
    networks = {
        "encoder": (_Encoder(model), torch.zeros(1, model.nx), ["x"], ["mu", "log_var"]),
        "decoder": (_Decoder(model), torch.zeros(1, model.nz), ["z"], ["pixels"]),
    }
    return {part: export_network(network, (first, *label), Path(folder, f"{name}_{part}.onnx"),
                          inputs + label_names, outputs)
            for part, (network, first, inputs, outputs) in networks.items() if part in parts}
