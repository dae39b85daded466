"""Training with the original tutorial's recipe (Adam, batch 128, summed negative ELBO) on CPU
or CUDA."""

from __future__ import annotations

import copy
import inspect
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoints import check_target, load_checkpoint, save_checkpoint, training_state
from .data import MNIST, PIXELS, batch_indices, check_images, draw_pixels
from .errors import CheckpointError, TrainingDiverged
from .evaluation import mean_negative_elbo
from .losses import negative_elbo
from .model import MODELS, LatentVariableModel

# The book's random seed. Of seeds 0-3 it gives the run closest to the original tutorial's table
# (the training chapter prints all four).
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
    ``settings``, how ``train_model`` trained the model (what ``load_or_train`` matches)."""

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


def make_optimizer(model: LatentVariableModel, lr: float = 1e-3) -> torch.optim.Adam:
    """Adam with the original tutorial's (default) learning rate; fused where torch has it.

    The fused kernel keeps Adam's step count on the device, so a CUDA graph can record it.
    """
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr)


def _step_weights(beta: float | Callable[[int], float], n_steps: int) -> list[float]:
    """The KL weight of each step of an epoch: ``beta``, or ``beta(step)`` when it is callable."""
    return [float(beta(step)) if callable(beta) else float(beta) for step in range(n_steps)]


def _run_steps(
    model: LatentVariableModel,
    optimizer: torch.optim.Optimizer,
    data: MNIST,
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
    (``CudaGraphEpoch``), so it must not read anything back to the host.
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


def train_epoch(
    model: LatentVariableModel,
    optimizer: torch.optim.Optimizer,
    data: MNIST,
    batch_size: int = 128,
    generator: torch.Generator | None = None,
    beta: float | Callable[[int], float] = 1.0,
    on_batch: Callable[[], object] | None = None,
    pixels: str = "gray",
    loss: Callable[..., torch.Tensor] | None = None,
) -> torch.Tensor:
    """One pass over shuffled ``data``; returns the summed loss of each step (on the device).

    ``beta`` weighs the KL term; a callable gets the step number within the epoch (for KL
    annealing). ``pixels``: how each batch's pixels are drawn (``draw_pixels``); ``loss``: see
    ``_run_steps``. Nothing here waits for the device: losses stay on it until the caller
    reads them.
    """
    model.train()
    n_steps = -(-len(data) // batch_size)
    step_losses = torch.empty(n_steps, device=data.device)
    batches = batch_indices(len(data), batch_size, generator=generator, device=data.device)
    _run_steps(model, optimizer, data, batches, _step_weights(beta, n_steps), step_losses,
               on_batch, pixels, loss)
    return step_losses


class CudaGraphEpoch:
    """A whole training epoch recorded once as a CUDA graph, then replayed: one launch per epoch.

    A step of the tutorial's small model takes the GPU a few microseconds per kernel but costs
    Python and the driver far more to launch; replaying a recorded graph removes that host cost. The
    recorded steps are ``train_epoch``'s, reading the shuffle order and the KL weights from fixed
    buffers that are refilled before each replay, so every epoch is a fresh shuffle, as eagerly.

    Recording needs a CUDA device and an Adam optimizer that keeps its state on the device: fused
    (as ``make_optimizer`` builds it) or ``capturable``. Before recording, real steps initialize
    Adam's state and the CUDA libraries; the parameters, the optimizer state and the random state
    are then put back as they were. The graph keeps the addresses of the parameters, gradients
    and optimizer state: update them in place only (``load_state_dict`` of the model does; that
    of the optimizer does not, so record a new graph after it).
    """

    def __init__(self, model: LatentVariableModel, optimizer: torch.optim.Optimizer,
                 data: MNIST, batch_size: int = 128, pixels: str = "gray") -> None:
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
            warm_up_and_restore(model, optimizer, lambda: _run_steps(
                model, optimizer, data, [batch for batch in shapes if len(batch)], self.weights,
                self.step_losses, pixels=pixels), stream)
        self.graph = torch.cuda.CUDAGraph()
        optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph, stream=stream):
            _run_steps(model, optimizer, data, self.order.split(batch_size), self.weights,
                       self.step_losses, pixels=pixels)

    def __call__(self, generator: torch.Generator | None = None,
                 beta: float | Callable[[int], float] = 1.0) -> torch.Tensor:
        """Train one epoch (same arguments and result as ``train_epoch``)."""
        device = self.order.device
        self.order.copy_(torch.randperm(len(self.order), device=device, generator=generator))
        self.weights.copy_(torch.tensor(_step_weights(beta, self.n_steps)), non_blocking=True)
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


def _check_fit_arguments(epochs, batch_size, lr, beta, warmup_epochs, pixels) -> None:
    """Refuse, before any training, arguments that would fail or train on garbage later."""
    for name, value, low in (("epochs", epochs, 0), ("batch_size", batch_size, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            kind = "a positive integer" if low else "an integer, zero or more"
            raise ValueError(f"{name} must be {kind}, not {value!r}.")
    numbers = [("lr", lr, True), ("warmup_epochs", warmup_epochs, False)]
    if not callable(beta):
        numbers.append(("beta", beta, False))
    for name, value, positive in numbers:
        if (not isinstance(value, (int, float)) or isinstance(value, bool)
                or not math.isfinite(value) or value < 0 or (positive and value == 0)):
            kind = "a positive number" if positive else "a finite number, zero or more"
            raise ValueError(f"{name} must be {kind}, not {value!r}.")
    if pixels not in PIXELS:
        raise ValueError(f"pixels must be one of {PIXELS}, not {pixels!r}.")


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
    """Train ``model`` on ``train`` (moved to the data's device) and return its ``History``.

    The loss is the original tutorial's: Bernoulli reconstruction summed over pixels plus the
    closed-form KL, summed over each batch of ``batch_size``; ``History.train_loss`` is its
    average per example. ``beta`` weighs the KL term (beta-VAE); ``warmup_epochs`` > 0 raises that
    weight linearly from 0 to ``beta`` over so many epochs (KL annealing); a callable ``beta``
    gets the step number from the start of training (e.g. a cyclical schedule). ``loss``, when
    given, replaces the negative ELBO: ``loss(model, x, label, beta)`` returns the batch's summed
    loss (``objectives.py``: importance-weighted bounds, learned priors, free bits); it does not
    combine with ``cuda_graph``. The test figure is always the plain -ELBO.
    ``pixels="binarized"`` or ``"dequantized"`` trains on images drawn afresh from the gray
    levels for every batch (``draw_pixels``); pass a test split drawn once the same way
    (``test.drawn(pixels)``) for a matching test figure.

    ``seed`` fixes the batch order and the Gaussian draws, not the initial weights, which the
    model got when it was built: ``train_model`` seeds, builds and trains in one call, as the
    command line does. ``cuda_graph=True`` records the epoch as a CUDA graph and replays it
    (``CudaGraphEpoch``); where that is impossible it warns and trains eagerly. After each epoch
    ``on_epoch(history)`` is called (the command line prints its line there), then
    ``stop_when(history)``, which ends training early when it returns True.

    ``checkpoint``: a file that receives, atomically, the model, history and training state
    (optimizer, random state) after every completed epoch; it is checked before the first
    epoch, so a bad path fails at once, not after training. ``resume=True`` continues from that
    file: the model's weights, the optimizer and the random state are put back, and training
    goes on from the epoch after the saved one to ``epochs``, with the same results as a run
    that was never stopped. ``settings`` is stored as ``History.settings``.
    When the loss becomes NaN or infinite, training stops with ``TrainingDiverged`` naming the
    step, and the model and optimizer are put back as they were after the last good epoch.
    """
    _check_fit_arguments(epochs, batch_size, lr, beta, warmup_epochs, pixels)
    if loss is not None and cuda_graph:
        raise ValueError("cuda_graph=True records the plain ELBO; it cannot take a loss.")
    check_images(train.images, model.nx, "train.images")
    if test is not None:
        check_images(test.images, model.nx, "test.images")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint to resume from (checkpoint=...).")
    if checkpoint is not None:
        checkpoint = check_target(checkpoint)
    device = train.device
    model.to(device)
    optimizer = optimizer or make_optimizer(model, lr)
    generator = None
    if seed is not None:
        torch.manual_seed(seed)
        generator = torch.Generator(device=device).manual_seed(seed)
    history = History(settings=dict(settings or {}))
    # What a resumed run must share with the saved one (a schedule or a loss, being code, is
    # recorded only as present).
    options = {"batch_size": batch_size, "lr": lr, "seed": seed,
               "beta": "schedule" if callable(beta) else beta, "warmup_epochs": warmup_epochs,
               "pixels": pixels, "loss": None if loss is None else "custom",
               "examples": len(train)}
    if resume:
        history = _resume(checkpoint, model, optimizer, generator, device, options,
                          history.settings)
    n_steps = -(-len(train) // batch_size)
    batch_sizes = torch.full((n_steps,), float(batch_size), device=device)
    batch_sizes[-1] = len(train) - (n_steps - 1) * batch_size
    done = len(history.train_loss)
    bar = tqdm(total=max(epochs - done, 0) * n_steps, desc="training", unit="batch",
               disable=not progress, mininterval=PROGRESS_SECONDS)
    log = _ProgressLog(epochs, n_steps, done)

    def on_batch() -> None:
        bar.update()
        log.batch()

    graphed = (_record_epoch(model, optimizer, train, batch_size, pixels)
               if cuda_graph and epochs > done else None)
    try:
        for epoch in range(done + 1, epochs + 1):
            saved = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
            start = time.perf_counter()
            first = (epoch - 1) * n_steps
            weight = beta if warmup_epochs <= 0 else (
                lambda step, first=first: kl_weight(first + step, n_steps, beta, warmup_epochs))
            if callable(beta):
                weight = lambda step, first=first: beta(first + step)  # noqa: E731
            if graphed is None:
                step_losses = train_epoch(model, optimizer, train, batch_size, generator, weight,
                                          on_batch, pixels, loss)
            else:
                step_losses = graphed(generator, weight)
                bar.update(n_steps)
            _stop_if_diverged(step_losses, epoch, n_steps, model, optimizer, saved)
            history.train_loss.append(float(step_losses.sum()) / len(train))
            history.step_loss.extend((step_losses / batch_sizes).tolist())
            history.seconds.append(time.perf_counter() - start)
            if test is not None:
                # Its Gaussian draws come from a forked random state, so that the training
                # numbers do not depend on whether a test split was given.
                devices = [device] if device.type == "cuda" else []
                with torch.random.fork_rng(devices=devices):
                    history.test_loss.append(mean_negative_elbo(model, test))
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, history.as_dict(),
                                _training_state(epoch, optimizer, generator, device, options))
            bar.set_postfix(epoch=epoch, loss=f"{history.train_loss[-1]:.2f}")
            log.epoch_done(history)
            if on_epoch is not None:
                on_epoch(history)
            if stop_when is not None and stop_when(history):
                break
    finally:
        bar.close()
    return history


def _training_state(epoch: int, optimizer: torch.optim.Optimizer,
                    generator: torch.Generator | None, device: torch.device,
                    options: dict) -> dict:
    """What ``fit`` needs besides the weights to go on exactly where it stopped."""
    return {
        "epoch": epoch,
        "options": options,
        "optimizer": optimizer.state_dict(),
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "generator": generator.get_state() if generator is not None else None,
    }


def _resume(path, model, optimizer, generator, device: torch.device, options: dict,
            settings: dict) -> History:
    """Put back the model, optimizer and random state saved by ``fit`` in ``path``; return the
    history so far. Refuses a checkpoint from another model or other training options."""
    payload, state = training_state(path)
    saved = state.get("options", {})
    different = [f"{name}={saved.get(name)!r} (not {value!r})"
                 for name, value in options.items() if saved.get(name) != value]
    if different:
        raise CheckpointError(f"{path} was trained with other options: {', '.join(different)}; "
                              "resume with the same ones.")
    load_checkpoint(path, model)
    try:
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        if state.get("cuda_rng") is not None and device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        if generator is not None and state.get("generator") is not None:
            generator.set_state(state["generator"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path} has a damaged training state: {error}") from None
    history = History.from_dict(payload["history"])
    if len(history.train_loss) != state["epoch"]:
        raise CheckpointError(f"{path} says {state['epoch']} epochs were trained but its "
                              f"history has {len(history.train_loss)}.")
    history.settings = settings or history.settings
    return history


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


def adam_epochs(model: nn.Module, images: torch.Tensor,
                batch_loss: Callable[[torch.Tensor], torch.Tensor], epochs: int,
                batch_size: int, lr: float, generator: torch.Generator,
                per_image: bool = False, min_batch: int = 1) -> list[float]:
    """The plain loop for models ``fit`` does not train (a VQ-VAE, a beta-TC objective):
    ``epochs`` passes of Adam over shuffled batches of ``images`` (order from ``generator``),
    minimizing ``batch_loss(x)``, the batch's summed loss or, with ``per_image``, its mean.
    Batches smaller than ``min_batch`` are skipped. Returns each epoch's loss per image."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for indices in torch.randperm(len(images), generator=generator,
                                      device=images.device).split(batch_size):
            if len(indices) < min_batch:
                continue
            loss = batch_loss(images[indices])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * (len(indices) if per_image else 1)
        losses.append(total / len(images))
    return losses


def train_model(
    train: MNIST,
    test: MNIST | None = None,
    epochs: int = 5,
    seed: int = DEFAULT_SEED,
    kind: str = "VAE",
    **options,
) -> tuple[LatentVariableModel, History]:
    """Build a ``kind`` model with its initial weights drawn from ``seed``, train it with
    ``fit`` (same ``seed``) and return ``(model, history)``: one call, the command line's numbers.

    ``options`` holds the model's sizes and likelihood (``nh``, ``nz``, ``likelihood``...) and any
    other ``fit`` argument (``pixels``, ``beta``, ``lr``, ``progress``, ``on_epoch``...).
    ``history.settings`` records them, for ``load_or_train``.
    """
    if kind not in MODELS:
        raise ValueError(f"kind must be one of {sorted(MODELS)}, not {kind!r}.")
    model_options = inspect.signature(MODELS[kind]).parameters
    sizes = {name: value for name, value in options.items() if name in model_options}
    fit_options = {name: value for name, value in options.items() if name not in model_options}
    torch.manual_seed(seed)
    model = MODELS[kind](**sizes)
    history = fit(model, train, test, epochs=epochs, seed=seed,
                  settings=_settings(kind, epochs, seed, options), **fit_options)
    return model, history


def _settings(kind: str, epochs: int, seed: int, options: dict) -> dict:
    """What identifies a ``train_model`` run: its plain-valued arguments (not those that only
    say how it runs: ``progress``, ``checkpoint``, ``resume``)."""
    plain = (int, float, str, bool, type(None))
    return {"kind": kind, "epochs": epochs, "seed": seed,
            **{name: value for name, value in sorted(options.items())
               if name not in ("progress", "checkpoint", "resume") and isinstance(value, plain)}}


def _record_epoch(model: LatentVariableModel, optimizer: torch.optim.Optimizer, data: MNIST,
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
    **options,
) -> tuple[LatentVariableModel, History]:
    """Load the checkpoint at ``path`` when it holds a model that ``train_model`` trained with
    exactly these arguments (``kind``, ``epochs``, ``seed``, sizes, likelihood, ``pixels``,
    ``beta``...), else train one with ``train_model`` and save it there, so later notebooks load
    it instead of training again. Arguments that are not plain values are not compared. The
    path is checked before training, so a model is never trained only to be lost.
    """
    check_target(path)
    try:
        model, saved = load_checkpoint(path, device=train.device)
        if saved.get("settings") == _settings(kind, epochs, seed, options):
            return model, History.from_dict(saved)
    except CheckpointError:
        pass
    model, history = train_model(train, test, epochs, seed, kind, **options)
    save_checkpoint(path, model, history.as_dict())
    return model, history
