"""Training epochs recorded once as CUDA graphs and replayed (chapter 5's GPU section): on a
GPU the tutorial's small model spends most of a step launching kernels, which a replay avoids."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

from .data import ImageSet
from .model import LatentVariableModel
from .steps import run_steps, step_weights


class CudaGraphEpoch:
    """A whole training epoch recorded once as a CUDA graph, then replayed: one launch per epoch.

    A step of the tutorial's small model takes the GPU a few microseconds per kernel but costs
    Python and the driver far more to launch; replaying a recorded graph removes that host cost.
    The recorded steps are ``training.train_epoch``'s, reading the shuffle order and the KL
    weights from fixed buffers that are refilled before each replay, so every epoch is a fresh
    shuffle, as eagerly.

    Recording needs a CUDA device and an Adam optimizer that keeps its state on the device: fused
    (as ``make_optimizer`` builds it) or ``capturable``. Before recording, real steps initialize
    Adam's state and the CUDA libraries; the parameters, the optimizer state and the random state
    are then put back as they were. The graph keeps the addresses of the parameters, gradients
    and optimizer state: update them in place only (``load_state_dict`` of the model does; that
    of the optimizer does not, so record a new graph after it) (chapter 5).
    """

    def __init__(self, model: LatentVariableModel, optimizer: torch.optim.Optimizer,
                 data: ImageSet, batch_size: int = 128, pixels: str = "gray") -> None:
        if data.device.type != "cuda":
            raise ValueError(f"CUDA graphs need the data on a CUDA device, not {data.device}.")
        if not isinstance(optimizer, torch.optim.Adam) or not all(
            group["fused"] or group["capturable"] for group in optimizer.param_groups
        ):
            raise ValueError("CUDA graphs need an Adam optimizer with fused=True or "
                             "capturable=True (make_optimizer builds one).")
        for group in optimizer.param_groups:
            group["capturable"] = True  # what a fused Adam already is: its step is on the device
        device = data.device
        self.n_steps = -(-len(data) // batch_size)
        self.order = torch.arange(len(data), device=device)
        self.weights = torch.ones(self.n_steps, device=device)
        self.step_losses = torch.zeros(self.n_steps, device=device)
        model.train()
        # Warm up with both batch shapes (full and last), on the stream that records, so that
        # the CUDA libraries' per-stream handles and workspaces exist before recording starts.
        stream = torch.cuda.Stream(device)
        shapes = [self.order[:batch_size], self.order[:len(data) % batch_size]]
        with warnings.catch_warnings():
            # Torch warns when a capturable optimizer steps outside a graph, as this one must.
            warnings.filterwarnings("ignore", message=".*capturable=True.*without")
            warm_up_and_restore(model, optimizer, lambda: run_steps(
                model, optimizer, data, [batch for batch in shapes if len(batch)], self.weights,
                self.step_losses, pixels=pixels), stream)
        self.graph = torch.cuda.CUDAGraph()
        optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph, stream=stream):
            run_steps(model, optimizer, data, self.order.split(batch_size), self.weights,
                       self.step_losses, pixels=pixels)

    def __call__(self, generator: torch.Generator | None = None,
                 beta: float | Callable[[int], float] = 1.0) -> torch.Tensor:
        """Train one epoch (same arguments and result as ``train_epoch``)."""
        device = self.order.device
        self.order.copy_(torch.randperm(len(self.order), device=device, generator=generator))
        self.weights.copy_(torch.tensor(step_weights(beta, self.n_steps)), non_blocking=True)
        self.graph.replay()
        return self.step_losses.clone()


def warm_up_and_restore(model: nn.Module, optimizer: torch.optim.Optimizer,
                        steps: Callable[[], None],
                        stream: torch.cuda.Stream | None = None) -> None:
    """Run ``steps`` for real (on ``stream`` if given), then put back, in place, the model's
    parameters and buffers, the optimizer's state (zeros where it had none: Adam's starting
    state) and the random state.

    Lazy initialization (Adam's state, the CUDA libraries' workspaces) happens during such a run;
    a CUDA graph must not record it, and wants it done on a side stream.
    """
    weights = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    state = {param: {key: value.clone() for key, value in entry.items()}
             for param, entry in optimizer.state.items()}
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state(stream.device) if stream is not None else None
    if stream is None:
        steps()
    else:
        stream.wait_stream(torch.cuda.current_stream(stream.device))
        with torch.cuda.stream(stream):
            steps()
        torch.cuda.current_stream(stream.device).wait_stream(stream)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            tensor.copy_(weights[name])
        for param, entry in optimizer.state.items():
            for key, value in entry.items():
                if param in state:
                    value.copy_(state[param][key])
                else:
                    value.zero_()
    optimizer.zero_grad(set_to_none=True)
    torch.set_rng_state(cpu_rng)
    if cuda_rng is not None:
        torch.cuda.set_rng_state(cuda_rng, stream.device)


def record_epoch(model: LatentVariableModel, optimizer: torch.optim.Optimizer, data: ImageSet,
                 batch_size: int, pixels: str) -> CudaGraphEpoch | None:
    """A ``CudaGraphEpoch``, or None (with a warning saying why) where one cannot be recorded."""
    if data.device.type != "cuda":
        warnings.warn(f"cuda_graph=True needs the data on a CUDA device, not {data.device}; "
                      "training without a CUDA graph.", stacklevel=3)
        return None
    try:
        return CudaGraphEpoch(model, optimizer, data, batch_size, pixels)
    except (RuntimeError, ValueError) as error:
        warnings.warn(f"Could not record the epoch as a CUDA graph ({error}); training without "
                      "one.", stacklevel=3)
        return None
