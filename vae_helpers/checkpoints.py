"""Checkpoints: one dict, written atomically beside its target and loaded with
``weights_only=True``, every part checked before anything is built (chapter 5).

A save writes a uniquely named temporary file in the target's folder, syncs it and renames it
over the target; on any failure the process removes the temporary it made and the previous
checkpoint keeps its bytes. Nothing else in the folder is ever touched. A process killed with
SIGKILL mid-write can leave its ``.NAME.XXXXXXXX.tmp`` beside the target: delete it by hand.
"""

from __future__ import annotations

import errno
import io
import math
import os
import pickle
import secrets
import stat
import zipfile
from pathlib import Path

import torch

from .errors import CheckpointError, check_integers
from .model import LatentVariableModel, count_parameters, model_classes

FORMAT = 1  # the layout below; a file of a newer format is refused, not misread
PARTS = ("format", "kind", "config", "state_dict", "history", "training")
# A checkpoint's model may have at most this many parameters (4 GB of float32 weights); a
# config asking for more is refused before anything is allocated.
MAX_PARAMETERS = 1_000_000_000
_REASONS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted",
            errno.EFBIG: "the file is too large (for the file system or the file-size limit)",
            errno.EACCES: "permission denied", errno.EPERM: "permission denied",
            errno.EROFS: "the file system is read-only", errno.ELOOP: "a loop of symbolic links",
            errno.ENAMETOOLONG: "the file name is too long (the temporary file beside it "
                                "needs 14 more bytes)"}


def _reason(error: OSError) -> str:
    return _REASONS.get(error.errno, error.strerror or str(error))


def _kind_of_file(mode: int) -> str:
    return ("a folder" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
            else "a character device" if stat.S_ISCHR(mode) else "not a regular file")


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, uniquely named file beside ``path``, opened for writing; its mode follows the
    umask, as any file the user creates would."""
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue


def check_target(path: str | os.PathLike) -> Path:
    """The file a checkpoint for ``path`` will be written to, checked before any training.

    ``path`` must name a regular file the user may write, or nothing yet (a symbolic link to a
    regular file is followed); its folder is created if needed and must be writable. Anything
    else raises a ``CheckpointError`` that names the problem, and nothing is replaced (chapter 5).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file name, not {type(path).__name__}.")
    if str(path) == "":
        raise CheckpointError("The checkpoint path is empty: give a file name.")
    path = Path(path)
    try:
        info = os.stat(path)  # follows a link
    except FileNotFoundError:
        if path.is_symlink():
            raise CheckpointError(f"Cannot save to {path}: it is a symbolic link to a file that "
                                  "does not exist; remove the link or name another file."
                                  ) from None
        info = None
    except OSError as error:
        raise CheckpointError(f"Cannot save to {path}: {_reason(error)}.") from None
    if info is not None:
        link = "a symbolic link to " if path.is_symlink() else ""
        if not stat.S_ISREG(info.st_mode):
            hint = (f"name a file inside it, e.g. {path / 'model.pt'}" if not link
                    and stat.S_ISDIR(info.st_mode) else "name a regular file")
            raise CheckpointError(f"Cannot save to {path}: it is {link}"
                                  f"{_kind_of_file(info.st_mode)}, not a file; {hint}.")
        if not info.st_mode & 0o222 or not os.access(path, os.W_OK):
            raise CheckpointError(f"Cannot save to {path}: it is write-protected (mode "
                                  f"{stat.S_IMODE(info.st_mode):o}); make it writable or name "
                                  "another file.")
        path = path.resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, probe = _create_temporary(path)
    except (FileExistsError, NotADirectoryError):
        raise CheckpointError(f"Cannot save to {path}: a part of {path.parent} is a file, not "
                              "a folder.") from None
    except OSError as error:
        raise CheckpointError(f"Cannot write {path.name} in the folder {path.parent}: "
                              f"{_reason(error)}.") from None
    os.close(handle)
    os.unlink(probe)
    return path


def save_checkpoint(path: str | os.PathLike, model: LatentVariableModel,
                    history: dict | None = None, training: dict | None = None) -> Path:
    """Write the model's kind, sizes and weights, an optional history and an optional training
    state (what ``fit`` needs to resume) to ``path`` atomically; return the file written.

    An overwritten checkpoint keeps its mode; a failure raises a ``CheckpointError`` saying why
    and leaves any previous checkpoint at ``path`` as it was (chapter 5).
    """
    if not isinstance(model, LatentVariableModel):
        raise TypeError(f"model must be one of the book's models, not {type(model).__name__}.")
    path = check_target(path)
    payload = {"format": FORMAT, "kind": type(model).__name__, "config": model.config,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "history": history or {}}
    if training is not None:
        payload["training"] = training
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    handle, temporary = _create_temporary(path)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(buffer.getbuffer())
            file.flush()
            os.fsync(file.fileno())
        if path.exists():
            os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise CheckpointError(f"Could not save the checkpoint {path}: {_reason(error)}; "
                                  "any previous checkpoint there is unchanged.") from None
        raise
    return path


def _check_archive(path: Path, size: int) -> None:
    """Refuse, before ``torch.load`` allocates anything, an archive whose records are compressed
    or declare more bytes than the file holds (``torch.save`` stores its records as they are)."""
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise CheckpointError(f"{path} is not a checkpoint: it is not an archive written by "
                              "torch.save.") from None
    declared = sum(record.file_size for record in records)
    compressed = [r.filename for r in records if r.compress_type != zipfile.ZIP_STORED]
    if compressed or declared > size:
        raise CheckpointError(f"{path} is not a checkpoint written by torch.save: its records "
                              f"declare {declared:,} bytes in a file of {size:,}"
                              + (" and are compressed" if compressed else "") + "; refused.")


def _tensor_problem(value: object, shape: torch.Size | None = None) -> str | None:
    """Why ``value`` cannot be a float32 tensor of ``shape`` (any shape when None), or None."""
    if not isinstance(value, torch.Tensor):
        return f"is a {type(value).__name__}, not a tensor"
    if value.dtype != torch.float32:
        return f"is {value.dtype}, not float32"
    if shape is not None and value.shape != shape:
        return f"has shape {tuple(value.shape)}, not {tuple(shape)}"
    if not bool(torch.isfinite(value).all()):
        return "holds NaN or infinite values"
    return None


def _check_optimizer(state: object, shapes: list[torch.Size], where: str) -> None:
    """The optimizer state must describe these parameters: one group list naming each once, in
    order, with finite settings, and per-parameter tensors of the parameter's shape (or scalars
    such as Adam's step), float32 and finite, so that no fused kernel ever sees a bad one."""
    if not isinstance(state, dict) or set(state) != {"state", "param_groups"}:
        raise CheckpointError(f"{where} has a damaged optimizer state.")
    groups = state["param_groups"]
    if not isinstance(groups, list) or not all(isinstance(g, dict) and isinstance(
            g.get("params"), list) for g in groups):
        raise CheckpointError(f"{where} has damaged optimizer parameter groups.")
    if [i for group in groups for i in group["params"]] != list(range(len(shapes))):
        raise CheckpointError(f"{where} has an optimizer for other parameters than the model's.")
    for group in groups:
        for key, value in group.items():
            numbers = value if isinstance(value, (tuple, list)) and key != "params" else [value]
            if key != "params" and not all(
                    v is None or isinstance(v, (bool, str)) or (isinstance(v, (int, float))
                    and math.isfinite(v) and v >= 0) for v in numbers):
                raise CheckpointError(f"{where} has an optimizer setting {key}={value!r}: "
                                      "a finite number, zero or more, is needed.")
        if not (isinstance(group.get("lr", 1.0), (int, float)) and group.get("lr", 1.0) > 0):
            raise CheckpointError(f"{where} has an optimizer learning rate of "
                                  f"{group.get('lr')!r}.")
    entries = state["state"]
    if not isinstance(entries, dict) or not set(entries) <= set(range(len(shapes))):
        raise CheckpointError(f"{where} has optimizer state for parameters the model lacks.")
    for index, entry in entries.items():
        if not isinstance(entry, dict):
            raise CheckpointError(f"{where} has a damaged optimizer state for parameter {index}.")
        for key, value in entry.items():
            scalar = isinstance(value, torch.Tensor) and value.ndim == 0
            problem = _tensor_problem(value, None if scalar else shapes[index])
            if problem:
                raise CheckpointError(f"{where}: the optimizer's {key} of parameter {index} "
                                      f"{problem}.")


def _check_training(training: object, shapes: list[torch.Size], history: dict,
                    where: str) -> None:
    """The training state ``fit`` saves: the epoch (matching the history), the options, the
    optimizer and the random states."""
    if not isinstance(training, dict) or not {"epoch", "options", "optimizer", "rng"} <= set(
            training) or not isinstance(training["options"], dict):
        raise CheckpointError(f"{where} has a damaged training state.")
    epochs = len(history.get("train_loss", []))
    if training["epoch"] != epochs or isinstance(training["epoch"], bool):
        raise CheckpointError(f"{where} says {training['epoch']!r} epochs were trained but its "
                              f"history has {epochs}.")
    for key in ("rng", "cuda_rng", "generator"):
        value = training.get(key)
        if not (value is None and key != "rng") and not (
                isinstance(value, torch.Tensor) and value.dtype == torch.uint8):
            raise CheckpointError(f"{where} has a damaged random state ({key}).")
    _check_optimizer(training["optimizer"], shapes, where)


def _check_history(history: object, where: str) -> None:
    if not isinstance(history, dict) or not all(
            isinstance(v, dict) if k == "settings" else isinstance(v, list) and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
            for k, v in history.items()):
        raise CheckpointError(f"{where} has a damaged history: a dict of lists of numbers (and "
                              "its settings) is needed.")


def _check_payload(payload: object, where: str) -> dict:
    """Every part of a loaded payload, in order, against what the model class builds."""
    if not isinstance(payload, dict) or not {"config", "state_dict"} <= set(payload):
        raise CheckpointError(f"{where} is not a vae_helpers checkpoint (no config/state_dict).")
    unknown = sorted(str(key) for key in payload if key not in PARTS)
    if unknown:
        raise CheckpointError(f"{where} has parts this version does not know: "
                              f"{', '.join(unknown)}; refused rather than dropped.")
    version = payload.get("format", FORMAT)
    if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT:
        raise CheckpointError(f"{where} was written in checkpoint format {version!r}, newer than "
                              f"the {FORMAT} this vae_helpers reads: update vae_helpers.")
    kind, config = payload.setdefault("kind", "VAE"), payload["config"]
    classes = model_classes()
    if not isinstance(kind, str) or kind not in classes:
        raise CheckpointError(f"{where} holds an unknown kind of model, {kind!r}.")
    if not isinstance(config, dict):
        raise CheckpointError(f"{where} has a config of type {type(config).__name__}, not a dict.")
    try:
        check_integers(**{k: v for k, v in config.items() if k in ("nx", "nh", "nz", "channels",
                                                                     "n_classes")})
        with torch.device("meta"):
            skeleton = classes[kind](**config)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{where} has a config a {kind} refuses: {error}") from None
    if skeleton.config != config:
        raise CheckpointError(f"{where} has a config that does not describe a {kind}: {config}.")
    count = count_parameters(skeleton)
    if count > MAX_PARAMETERS:
        raise CheckpointError(f"{where} describes a {kind} of {count:,} parameters, more than "
                              f"the {MAX_PARAMETERS:,} a checkpoint may hold; refused.")
    weights, expected = payload["state_dict"], skeleton.state_dict()
    if not isinstance(weights, dict) or set(weights) != set(expected):
        raise CheckpointError(f"{where} has a state_dict that does not name the {kind}'s "
                              "weights.")
    for name, tensor in weights.items():
        problem = _tensor_problem(tensor, expected[name].shape)
        if problem:
            raise CheckpointError(f"{where}: the weight {name} {problem}.")
    history = payload.setdefault("history", {})
    _check_history(history, where)
    if "training" in payload:
        shapes = [p.shape for p in skeleton.parameters()]
        _check_training(payload["training"], shapes, history, where)
    return payload


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The checked payload of the checkpoint at ``path``: ``kind``, ``config``, ``state_dict``,
    ``history`` and, when it was saved while training, ``training``.

    The archive's sizes are checked before loading, the load runs no code
    (``weights_only=True``), and every part is checked against the model class, so anything
    malformed raises a ``CheckpointError`` naming the problem (chapter 5).
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise CheckpointError(f"No checkpoint at {path}.") from None
    except OSError as error:
        raise CheckpointError(f"Cannot read {path}: {_reason(error)}.") from None
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"No checkpoint at {path}: it is {_kind_of_file(info.st_mode)}.")
    if info.st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): not a checkpoint.")
    _check_archive(path, info.st_size)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{path} holds objects other than tensors and plain values; "
                              "refused without running them.") from None
    except Exception as error:  # torch's messages advise weights_only=False: never repeat it
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(error).__name__})."
                              ) from None
    return _check_payload(payload, str(path))


def training_state(path: str | os.PathLike) -> tuple[dict, dict]:
    """The checked payload of ``path`` and its training state (what ``fit`` saved after an
    epoch, to resume from); a ``CheckpointError`` when it holds a finished model instead.
    Chapter 5."""
    payload = read_checkpoint(path)
    if "training" not in payload:
        raise CheckpointError(f"{path} holds a finished model, not the state of a training run "
                              "that can be resumed.")
    return payload, payload["training"]


def check_same_options(path: str | os.PathLike, saved: dict, given: dict,
                       flags: dict[str, str] | None = None) -> None:
    """Refuse to resume ``path`` with options other than those it was trained with, naming each
    that differs (as the command line's flags when ``flags`` maps names to them)."""
    shown = [f"{flags[name]} {saved.get(name)} (not {value})" if flags else
             f"{name}={saved.get(name)!r} (not {value!r})"
             for name, value in given.items() if saved.get(name) != value]
    if shown:
        raise CheckpointError(f"{path} was trained with other options; resume with "
                              f"{', '.join(shown)}.")


def load_checkpoint(
    path: str | os.PathLike,
    model: LatentVariableModel | None = None,
    device: str | torch.device | None = None,
) -> tuple[LatentVariableModel, dict]:
    """Load ``(model, history)`` from ``path``; build the model when none is given, then move it
    to ``device`` (default: where it is). A given ``model`` must have the checkpoint's kind and
    sizes, or a ``CheckpointError`` says which differ (chapter 5)."""
    from .devices import resolve_device

    device = None if device is None else resolve_device(device)
    payload = read_checkpoint(path)
    kind, config = payload["kind"], payload["config"]
    if model is None:
        model = model_classes()[kind](**config)
    elif type(model).__name__ != kind or model.config != config:
        raise CheckpointError(f"{path} holds a {kind} with sizes {config}, but the model is a "
                              f"{type(model).__name__} with sizes {model.config}.")
    model.load_state_dict(payload["state_dict"])
    if device is not None:
        model.to(device)
    return model, payload["history"]
