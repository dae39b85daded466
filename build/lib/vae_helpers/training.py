"""Training with the seed's recipe (Adam, batch 128, summed negative ELBO) on CPU or CUDA."""

from __future__ import annotations

import copy
import os
import time
from dataclasses import asdict, dataclass, field

import torch
from tqdm.auto import tqdm

from .checkpoints import load_checkpoint, save_checkpoint
from .data import MNIST, batches, check_images
from .errors import CheckpointError, TrainingDiverged
from .evaluation import mean_negative_elbo
from .losses import negative_elbo
from .model import VAE

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


def make_optimizer(model: VAE, lr: float = 1e-3) -> torch.optim.Adam:
    """Adam with the seed's default learning rate; the fused kernel where this torch has one."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr)


def train_epoch(
    model: VAE,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    batch_size: int = 128,
    generator: torch.Generator | None = None,
    on_batch=None,
) -> torch.Tensor:
    """One pass over shuffled ``images``; returns the summed loss of each step (on the device).

    Nothing here waits for the device: losses stay on it until the caller looks at them.
    """
    model.train()
    n_steps = -(-images.shape[0] // batch_size)
    step_losses = torch.empty(n_steps, device=images.device)
    for step, x in enumerate(batches(images, batch_size, generator=generator)):
        logits, mu, log_var = model(x)
        loss = negative_elbo(x, logits, mu, log_var)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step_losses[step] = loss.detach()
        if on_batch is not None:
            on_batch()
    return step_losses


def fit(
    model: VAE,
    train: MNIST,
    test: MNIST | None = None,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int | None = DEFAULT_SEED,
    progress: bool = True,
    optimizer: torch.optim.Optimizer | None = None,
) -> History:
    """Train ``model`` on ``train`` (moved to the data's device) and return its ``History``.

    The loss is the seed's: Bernoulli reconstruction summed over pixels plus the closed-form KL,
    summed over each batch of ``batch_size``; ``History.train_loss`` is its average per example.
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
        step_losses = train_epoch(model, optimizer, train.images, batch_size, generator, bar.update)
        _stop_if_diverged(step_losses, epoch, n_steps, model, optimizer, saved)
        history.train_loss.append(float(step_losses.sum()) / len(train))
        history.seconds.append(time.perf_counter() - start)
        if test is not None:
            history.test_loss.append(mean_negative_elbo(model, test.images))
        bar.set_postfix(epoch=epoch, loss=f"{history.train_loss[-1]:.2f}")
    bar.close()
    return history


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
    **model_sizes: int,
) -> tuple[VAE, History]:
    """Load the checkpoint at ``path`` when it holds a model of these sizes, else train one.

    A freshly trained model is saved to ``path``, so later notebooks load it instead of
    training again.
    """
    wanted = VAE(**model_sizes).config
    try:
        model, saved = load_checkpoint(path, device=train.device)
        if model.config == wanted and len(saved.get("train_loss", [])) == epochs:
            return model, History(**saved)
    except CheckpointError:
        pass
    torch.manual_seed(seed)
    model = VAE(**wanted)
    history = fit(model, train, test, epochs=epochs, seed=seed)
    save_checkpoint(path, model, history.as_dict())
    return model, history
