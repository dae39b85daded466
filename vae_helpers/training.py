"""Training with the seed's recipe (Adam, batch 128, summed negative ELBO) on CPU or CUDA."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from tqdm.auto import tqdm

from .checkpoints import load_checkpoint, save_checkpoint
from .data import MNIST, batch_indices, check_images
from .errors import CheckpointError, TrainingDiverged
from .evaluation import mean_negative_elbo
from .losses import negative_elbo
from .model import MODELS, LatentVariableModel

# The book's seed. Across seeds 0-3 the first epoch's average loss spreads over about 3 nats;
# this one is a typical run, not the best one (see the training chapter).
DEFAULT_SEED = 2


@dataclass
class History:
    """Per-epoch figures: average training loss (the seed's number), test -ELBO, seconds."""

    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[float]]:
        return asdict(self)


def make_optimizer(model: LatentVariableModel, lr: float = 1e-3) -> torch.optim.Adam:
    """Adam with the seed's default learning rate; the fused kernel where this torch has one."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr)


def train_epoch(
    model: LatentVariableModel,
    optimizer: torch.optim.Optimizer,
    data: MNIST,
    batch_size: int = 128,
    generator: torch.Generator | None = None,
    beta: float | Callable[[int], float] = 1.0,
    on_batch: Callable[[], object] | None = None,
) -> torch.Tensor:
    """One pass over shuffled ``data``; returns the summed loss of each step (on the device).

    ``beta`` weighs the KL term; a callable gets the step number within the epoch (for KL
    annealing). Nothing here waits for the device: losses stay on it until the caller reads them.
    """
    model.train()
    n_steps = -(-len(data) // batch_size)
    step_losses = torch.empty(n_steps, device=data.device)
    steps = batch_indices(len(data), batch_size, generator=generator, device=data.device)
    for step, indices in enumerate(steps):
        x = data.images[indices]
        logits, mu, log_var = model(x, *model.given(data.labels[indices]))
        weight = beta(step) if callable(beta) else beta
        loss = negative_elbo(x, logits, mu, log_var, beta=weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step_losses[step] = loss.detach()
        if on_batch is not None:
            on_batch()
    return step_losses


def fit(
    model: LatentVariableModel,
    train: MNIST,
    test: MNIST | None = None,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int | None = DEFAULT_SEED,
    progress: bool = True,
    optimizer: torch.optim.Optimizer | None = None,
    beta: float = 1.0,
    warmup_epochs: float = 0.0,
) -> History:
    """Train ``model`` on ``train`` (moved to the data's device) and return its ``History``.

    The loss is the seed's: Bernoulli reconstruction summed over pixels plus the closed-form KL,
    summed over each batch of ``batch_size``; ``History.train_loss`` is its average per example.
    ``beta`` weighs the KL term (beta-VAE); ``warmup_epochs`` > 0 raises that weight linearly from
    0 to ``beta`` over so many epochs (KL annealing). The test figure is always the plain -ELBO.
    When the loss becomes NaN or infinite, training stops with ``TrainingDiverged`` naming the
    step, and the model and optimizer are put back as they were after the last good epoch.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be zero or more, not {epochs}.")
    check_images(train.images, model.nx, "train.images")
    if test is not None:
        check_images(test.images, model.nx, "test.images")
    device = train.device
    model.to(device)
    optimizer = optimizer or make_optimizer(model, lr)
    generator = None
    if seed is not None:
        torch.manual_seed(seed)
        generator = torch.Generator(device=device).manual_seed(seed)
    history = History()
    n_steps = -(-len(train) // batch_size)
    bar = tqdm(total=epochs * n_steps, desc="training", unit="batch", disable=not progress)
    for epoch in range(1, epochs + 1):
        saved = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
        start = time.perf_counter()
        first = (epoch - 1) * n_steps
        weight = beta if warmup_epochs <= 0 else (
            lambda step, first=first: kl_weight(first + step, n_steps, beta, warmup_epochs))
        step_losses = train_epoch(model, optimizer, train, batch_size, generator, weight,
                                  bar.update)
        _stop_if_diverged(step_losses, epoch, n_steps, model, optimizer, saved)
        history.train_loss.append(float(step_losses.sum()) / len(train))
        history.seconds.append(time.perf_counter() - start)
        if test is not None:
            history.test_loss.append(mean_negative_elbo(model, test))
        bar.set_postfix(epoch=epoch, loss=f"{history.train_loss[-1]:.2f}")
    bar.close()
    return history


def kl_weight(step: int, steps_per_epoch: int, beta: float = 1.0,
              warmup_epochs: float = 0.0) -> float:
    """The KL weight at training step ``step`` (from 0): ``beta``, reached by a linear ramp
    from 0 over the first ``warmup_epochs`` epochs when that is positive (KL annealing)."""
    if warmup_epochs <= 0:
        return beta
    return beta * min(1.0, step / (warmup_epochs * steps_per_epoch))


def _stop_if_diverged(step_losses, epoch, n_steps, model, optimizer, saved) -> None:
    finite = torch.isfinite(step_losses)
    if bool(finite.all()):
        return
    first = int((~finite).nonzero()[0])
    value = float(step_losses[first])
    model.load_state_dict(saved[0])
    optimizer.load_state_dict(saved[1])
    raise TrainingDiverged(
        f"The loss became {value} at step {(epoch - 1) * n_steps + first + 1} "
        f"(epoch {epoch}, batch {first + 1}); the model and optimizer were restored to their "
        f"state after epoch {epoch - 1}. Check the inputs or lower the learning rate."
    )


def load_or_train(
    path: str | os.PathLike,
    train: MNIST,
    test: MNIST | None = None,
    epochs: int = 5,
    seed: int = DEFAULT_SEED,
    kind: str = "VAE",
    **model_sizes: int,
) -> tuple[LatentVariableModel, History]:
    """Load the checkpoint at ``path`` when it holds a ``kind`` model of these sizes and epochs,
    else train one (seeded) and save it there, so later notebooks load it instead of training.
    """
    wanted = MODELS[kind](**model_sizes)
    try:
        model, saved = load_checkpoint(path, device=train.device)
        if (type(model) is type(wanted) and model.config == wanted.config
                and len(saved.get("train_loss", [])) == epochs):
            return model, History(**saved)
    except CheckpointError:
        pass
    torch.manual_seed(seed)
    model = MODELS[kind](**wanted.config)
    history = fit(model, train, test, epochs=epochs, seed=seed)
    save_checkpoint(path, model, history.as_dict())
    return model, history
