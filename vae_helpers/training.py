"""``fit``: epochs of training with checks, a progress bar, checkpoints and resumption
(chapter 5 writes the loop out by hand, then uses ``fit``)."""

from __future__ import annotations

import copy
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from tqdm.auto import tqdm

from .checkpoints import check_same_options, check_target, load_checkpoint, save_checkpoint
from .checkpoints import training_state as saved_training_state
from .cuda_graphs import record_epoch
from .data import PIXELS, ImageSet, check_images
from .errors import CheckpointError, TrainingDiverged, check_integers, check_numbers
from .evaluation import mean_negative_elbo
from .model import LatentVariableModel
from .steps import kl_weight, make_optimizer, train_epoch

# The book's random seed, fixed for reproducibility (chapter 5 reports the spread over seeds).
DEFAULT_SEED = 2
# When this environment variable is set (the book's build sets it), ``fit`` also writes plain
# progress lines to the process's own standard error, which a build log shows while a notebook's
# kernel runs; the notebook itself gets the usual progress bar.
PROGRESS_LOG_VARIABLE = "VAE_LOG_PROGRESS"
PROGRESS_LOG_SECONDS = 30.0
# The progress bar redraws at most this often: in a notebook every redraw is a message to the
# front end, and a flood of them can starve a busy kernel's output channel (nbval times out).
PROGRESS_SECONDS = 1.0


@dataclass
class History:
    """Per-epoch figures: average training loss (the original tutorial's number), test -ELBO,
    seconds; ``step_loss``, the loss per image of every training step, in order; and
    ``settings``, how ``train_model`` trained the model (what ``load_or_train`` matches).
    Chapter 5."""

    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, saved: dict) -> History:
        """A ``History`` from ``as_dict()``'s output (as stored in a checkpoint)."""
        return cls(**{name: saved[name] for name in cls.__dataclass_fields__ if name in saved})

    def as_dict(self) -> dict[str, list[float]]:
        return asdict(self)


@dataclass
class _Run:
    """What ``fit`` prepared before its first epoch: all an epoch step needs."""

    model: LatentVariableModel
    optimizer: torch.optim.Optimizer
    train: ImageSet
    test: ImageSet | None
    epochs: int
    batch_size: int
    beta: float | Callable[[int], float]
    warmup_epochs: float
    pixels: str
    loss: Callable[..., torch.Tensor] | None
    checkpoint: os.PathLike | None
    generator: torch.Generator | None
    options: dict
    history: History
    graphed: Callable | None = None
    bar: tqdm | None = None
    log: _ProgressLog | None = None

    @property
    def n_steps(self) -> int:
        return -(-len(self.train) // self.batch_size)


def fit(
    model: LatentVariableModel,
    train: ImageSet,
    test: ImageSet | None = None,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int | None = DEFAULT_SEED,
    progress: bool = True,
    optimizer: torch.optim.Optimizer | None = None,
    beta: float | Callable[[int], float] = 1.0,
    warmup_epochs: float = 0.0,
    cuda_graph: bool = False,
    stop_when: Callable[[History], bool] | None = None,
    on_epoch: Callable[[History], object] | None = None,
    pixels: str = "gray",
    loss: Callable[..., torch.Tensor] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    settings: dict | None = None,
) -> History:
    """Train ``model`` on ``train`` (moved to the data's device) and return its ``History``
    (chapter 5).

    The loss is the original tutorial's: Bernoulli reconstruction summed over pixels plus the
    closed-form KL, summed over each batch of ``batch_size``; ``History.train_loss`` is its
    average per example. ``beta`` weighs the KL term (beta-VAE); ``warmup_epochs`` > 0 raises that
    weight linearly from 0 to ``beta`` over so many epochs (KL annealing); a callable ``beta``
    gets the step number from the start of training (e.g. a cyclical schedule; it does not
    combine with ``warmup_epochs``). ``loss``, when given, replaces the negative ELBO:
    ``loss(model, x, label, beta)`` returns the batch's summed loss (``objectives.py``); it does
    not combine with ``cuda_graph``. The test figure is always the plain -ELBO.
    ``pixels="binarized"`` or ``"dequantized"`` trains on images drawn afresh from the gray
    levels for every batch (``draw_pixels``); pass a test split drawn once the same way
    (``test.drawn(pixels)``) for a matching test figure.

    ``seed`` fixes the batch order and the Gaussian draws, not the initial weights, which the
    model got when it was built (``train_model`` seeds, builds and trains in one call).
    ``optimizer`` defaults to ``make_optimizer(model, lr)``. ``cuda_graph=True`` records the
    epoch as a CUDA graph and replays it (``cuda_graphs.CudaGraphEpoch``); where that is
    impossible it warns and trains eagerly. After each epoch ``on_epoch(history)`` is called,
    then ``stop_when(history)``, which ends training early when it returns True.

    ``checkpoint``: a file that receives, atomically, the model, history and training state
    (optimizer, random state) after every completed epoch; it is checked before the first
    epoch. ``resume=True`` continues from that file, with the same results as a run that was
    never stopped. ``settings`` is stored as ``History.settings``. When the loss becomes NaN or
    infinite, training stops with ``TrainingDiverged`` naming the step, and the model and
    optimizer are put back as they were after the last good epoch.
    """
    if loss is not None and cuda_graph:
        raise ValueError("cuda_graph=True records the plain ELBO; it cannot take a loss.")
    run = _prepare(model, train, test, epochs, batch_size, lr, seed, optimizer, beta,
                   warmup_epochs, pixels, loss, checkpoint, resume, settings)
    done = len(run.history.train_loss)
    if cuda_graph and epochs > done:
        run.graphed = record_epoch(model, run.optimizer, train, batch_size, pixels)
    run.bar = tqdm(total=max(epochs - done, 0) * run.n_steps, desc="training", unit="batch",
                   disable=not progress or sys.stderr is None, mininterval=PROGRESS_SECONDS)
    run.log = _ProgressLog(epochs, run.n_steps, done)
    try:
        for epoch in range(done + 1, epochs + 1):
            _fit_epoch(run, epoch)
            if on_epoch is not None:
                on_epoch(run.history)
            if stop_when is not None and stop_when(run.history):
                break
    finally:
        run.bar.close()
    return run.history


def _prepare(model, train, test, epochs, batch_size, lr, seed, optimizer, beta, warmup_epochs,
             pixels, loss, checkpoint, resume, settings) -> _Run:
    """Check every argument, then set up the optimizer, the random state and (when resuming)
    the state saved in ``checkpoint``: nothing is trained on a mistake."""
    if not isinstance(model, LatentVariableModel):
        raise TypeError(f"model must be one of the book's models, not {type(model).__name__}.")
    for name, split in (("train", train), ("test", test)):
        if not isinstance(split, ImageSet) and not (name == "test" and split is None):
            raise TypeError(f"{name} must be a data set such as load_mnist's, not "
                            f"{type(split).__name__}.")
        if split is not None:
            check_images(split.images, model.nx, f"{name}.images")
    check_integers(0, epochs=epochs)
    check_integers(batch_size=batch_size)
    check_numbers(lr=lr)
    check_numbers(strict=False, warmup_epochs=warmup_epochs)
    if callable(beta) and warmup_epochs > 0:
        raise ValueError("beta is a schedule already: it does not combine with warmup_epochs.")
    if not callable(beta):
        check_numbers(strict=False, beta=beta)
    if pixels not in PIXELS:
        raise ValueError(f"pixels must be one of {PIXELS}, not {pixels!r}.")
    if optimizer is not None and not {id(p) for group in optimizer.param_groups
                                      for p in group["params"]} & {id(p) for p in
                                                                   model.parameters()}:
        raise ValueError("optimizer holds none of the model's parameters: build it from "
                         "model.parameters().")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint to resume from (checkpoint=...).")
    if checkpoint is not None:
        checkpoint = check_target(checkpoint)
    device = train.device
    model.to(device)
    generator = None
    if seed is not None:
        torch.manual_seed(seed)
        generator = torch.Generator(device=device).manual_seed(seed)
    # What a resumed run must share with the saved one (a schedule or a loss, being code, is
    # recorded only as present).
    options = {"batch_size": batch_size, "lr": lr, "seed": seed,
               "beta": "schedule" if callable(beta) else beta, "warmup_epochs": warmup_epochs,
               "pixels": pixels, "loss": None if loss is None else "custom",
               "examples": len(train)}
    run = _Run(model, optimizer or make_optimizer(model, lr), train, test, epochs, batch_size,
               beta, warmup_epochs, pixels, loss, checkpoint, generator, options,
               History(settings=dict(settings or {})))
    if resume:
        _restore(run)
    return run


def _fit_epoch(run: _Run, epoch: int) -> None:
    """Train epoch ``epoch`` (from 1), check it, record it, evaluate and save."""
    model, optimizer, history, n_steps = run.model, run.optimizer, run.history, run.n_steps
    run.bar.set_description(f"epoch {epoch}/{run.epochs}")
    saved = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    start = time.perf_counter()
    first, beta = (epoch - 1) * n_steps, run.beta
    weight = (beta if not callable(beta) and run.warmup_epochs <= 0 else
              (lambda step: beta(first + step)) if callable(beta) else
              (lambda step: kl_weight(first + step, n_steps, beta, run.warmup_epochs)))
    if run.graphed is None:
        step_losses = train_epoch(model, optimizer, run.train, run.batch_size, run.generator,
                                  weight, lambda: (run.bar.update(), run.log.batch()),
                                  run.pixels, run.loss)
    else:
        step_losses = run.graphed(run.generator, weight)
        run.bar.update(n_steps)
    finite = torch.isfinite(step_losses)
    if not bool(finite.all()):
        bad = int((~finite).nonzero()[0])
        model.load_state_dict(saved[0])
        optimizer.load_state_dict(saved[1])
        raise TrainingDiverged(
            f"The loss became {float(step_losses[bad])} at step {first + bad + 1} (epoch "
            f"{epoch}, batch {bad + 1}); the model and optimizer were restored to their state "
            f"after epoch {epoch - 1}. Check the inputs or lower the learning rate.")
    sizes = torch.full((n_steps,), float(run.batch_size), device=step_losses.device)
    sizes[-1] = len(run.train) - (n_steps - 1) * run.batch_size
    history.train_loss.append(float(step_losses.sum()) / len(run.train))
    history.step_loss.extend((step_losses / sizes).tolist())
    history.seconds.append(time.perf_counter() - start)
    if run.test is not None:
        # Its Gaussian draws come from a forked random state, so that the training numbers do
        # not depend on whether a test split was given.
        device = run.train.device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            history.test_loss.append(mean_negative_elbo(model, run.test))
    if run.checkpoint is not None:
        save_checkpoint(run.checkpoint, model, history.as_dict(), _training_state(run, epoch))
    run.bar.set_postfix(loss=f"{history.train_loss[-1]:.2f}")
    run.log.epoch_done(history)


def _training_state(run: _Run, epoch: int) -> dict:
    """What ``fit`` needs besides the weights to go on exactly where it stopped."""
    device = run.train.device
    return {"epoch": epoch, "options": run.options, "optimizer": run.optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "generator": run.generator.get_state() if run.generator is not None else None}


def _restore(run: _Run) -> None:
    """Put back the model, optimizer, random state and history saved by ``fit`` in the run's
    checkpoint; refuse one from another model or other training options."""
    payload, state = saved_training_state(run.checkpoint)
    check_same_options(run.checkpoint, state["options"], run.options)
    load_checkpoint(run.checkpoint, run.model)
    try:
        run.optimizer.load_state_dict(state["optimizer"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{run.checkpoint} has an optimizer state this optimizer cannot "
                              f"take: {error}") from None
    torch.set_rng_state(state["rng"])
    device = run.train.device
    if state.get("cuda_rng") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    if run.generator is not None and state.get("generator") is not None:
        run.generator.set_state(state["generator"])
    settings = run.history.settings
    run.history = History.from_dict(payload["history"])
    run.history.settings = settings or run.history.settings


class _ProgressLog:
    """Plain progress lines on the process's own standard error, when ``$VAE_LOG_PROGRESS`` is
    set: one per epoch, and one every ``PROGRESS_LOG_SECONDS`` within a long epoch. A notebook
    kernel's standard error is the build's log, so a long cell never leaves it silent."""

    def __init__(self, epochs: int, n_steps: int, done: int = 0) -> None:
        self.stream = sys.__stderr__ if os.environ.get(PROGRESS_LOG_VARIABLE) else None
        self.epochs, self.n_steps, self.step = epochs, n_steps, done * n_steps
        self.last = time.monotonic()

    def _write(self, text: str) -> None:
        if self.stream is not None:
            self.stream.write(f"  [vae_helpers.fit] {text}\n")
            self.stream.flush()
            self.last = time.monotonic()

    def batch(self) -> None:
        self.step += 1
        if self.stream is not None and time.monotonic() - self.last >= PROGRESS_LOG_SECONDS:
            epoch = (self.step - 1) // self.n_steps + 1
            batch = (self.step - 1) % self.n_steps + 1
            self._write(f"epoch {epoch}/{self.epochs}: batch {batch}/{self.n_steps}")

    def epoch_done(self, history: History) -> None:
        epoch = len(history.train_loss)
        self.step = epoch * self.n_steps
        self._write(f"epoch {epoch}/{self.epochs}: average loss {history.train_loss[-1]:.2f} "
                    f"({history.seconds[-1]:.1f} s)")
