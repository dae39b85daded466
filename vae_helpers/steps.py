"""The epoch loop written once: Adam steps over shuffled batches of an image set (chapter 5),
run eagerly by ``fit`` and recorded as a CUDA graph by ``cuda_graphs``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

from .data import ImageSet, batch_indices, draw_pixels
from .losses import negative_elbo
from .model import LatentVariableModel


def make_optimizer(model: LatentVariableModel, lr: float = 1e-3) -> torch.optim.Adam:
    """Adam with the original tutorial's (default) learning rate; fused where torch has it
    (chapter 5). The fused kernel keeps Adam's step count on the device, so a CUDA graph can
    record it."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr)


def kl_weight(step: int, steps_per_epoch: int, beta: float = 1.0,
              warmup_epochs: float = 0.0) -> float:
    """The KL weight at training step ``step`` (from 0): ``beta``, reached by a linear ramp
    from 0 over the first ``warmup_epochs`` epochs when that is positive (KL annealing,
    chapter 11)."""
    if warmup_epochs <= 0:
        return beta
    return beta * min(1.0, step / (warmup_epochs * steps_per_epoch))


def run_steps(
    model: LatentVariableModel,
    optimizer: torch.optim.Optimizer,
    data: ImageSet,
    batches: Iterable[torch.Tensor],
    weights: Sequence[float] | torch.Tensor,
    step_losses: torch.Tensor,
    on_batch: Callable[[], object] | None = None,
    pixels: str = "gray",
    loss: Callable[..., torch.Tensor] | None = None,
) -> None:
    """One Adam step per batch of indices, the loss of step i written to ``step_losses[i]``.

    ``pixels``: each batch's images are drawn afresh by ``draw_pixels`` (e.g. dynamic
    binarization). ``loss(model, x, label, beta)``, when given, replaces the negative ELBO
    (``objectives.py``). The same code runs eagerly (``train_epoch``) and inside a CUDA graph
    (``cuda_graphs.CudaGraphEpoch``), so it must not read anything back to the host.
    """
    for step, indices in enumerate(batches):
        x = draw_pixels(data.images[indices], pixels)
        label = model.given(data.labels[indices])
        if loss is None:
            logits, mu, log_var = model(x, *label)
            value = negative_elbo(x, logits, mu, log_var, beta=weights[step],
                                  likelihood=model.likelihood)
        else:
            value = loss(model, x, label, weights[step])
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        step_losses[step] = value.detach()
        if on_batch is not None:
            on_batch()


def step_weights(beta: float | Callable[[int], float], n_steps: int) -> list[float]:
    """The KL weight of each step of an epoch: ``beta``, or ``beta(step)`` when it is callable."""
    return [float(beta(step)) if callable(beta) else float(beta) for step in range(n_steps)]


def train_epoch(
    model: LatentVariableModel,
    optimizer: torch.optim.Optimizer,
    data: ImageSet,
    batch_size: int = 128,
    generator: torch.Generator | None = None,
    beta: float | Callable[[int], float] = 1.0,
    on_batch: Callable[[], object] | None = None,
    pixels: str = "gray",
    loss: Callable[..., torch.Tensor] | None = None,
) -> torch.Tensor:
    """One pass over shuffled ``data``; returns the summed loss of each step (on the device).

    ``beta`` weighs the KL term; a callable gets the step number within the epoch (for KL
    annealing). ``pixels`` and ``loss``: see ``run_steps``. Nothing here waits for the device:
    losses stay on it until the caller reads them (chapter 5 writes this loop by hand).
    """
    model.train()
    n_steps = -(-len(data) // batch_size)
    step_losses = torch.empty(n_steps, device=data.device)
    batches = batch_indices(len(data), batch_size, generator=generator, device=data.device)
    run_steps(model, optimizer, data, batches, step_weights(beta, n_steps), step_losses,
              on_batch, pixels, loss)
    return step_losses
