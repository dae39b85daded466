"""Checkpoints written atomically and loaded safely (``weights_only=True``).

A save never loses work: the target is checked before anything is trained (``check_target``),
the file is written beside it under a temporary name and renamed over it, and a failure leaves
the previous checkpoint's bytes as they were. A load checks every part of the payload before
building anything, so a hostile or damaged file gets a ``CheckpointError``, never a crash or an
absurd allocation.
"""

from __future__ import annotations

import errno
import inspect
import io
import os
import re
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from .errors import CheckpointError
from .model import MODELS, LatentVariableModel, count_parameters

# A checkpoint's model may have at most this many parameters (4 GB of float32 weights); a
# config asking for more is refused before anything is allocated.
MAX_PARAMETERS = 1_000_000_000
# Temporary files are named ".<name>.<pid>.<random>.tmp" beside the target; the pid lets the
# next save in that folder remove those of a process that was killed mid-write.
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.[A-Za-z0-9_]{8}\.tmp$")
_TEMPORARY_EXTRA = len(".") + len(".4194304.") + 8 + len(".tmp")
_KINDS_OF_FILE = {stat.S_ISDIR: "a folder", stat.S_ISFIFO: "a named pipe (FIFO)",
                  stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
                  stat.S_ISSOCK: "a socket"}


def _kind_of_file(mode: int) -> str:
    return next((name for test, name in _KINDS_OF_FILE.items() if test(mode)), "not a file")


def _describe_os_error(error: OSError) -> str:
    """What an OSError means for a save, in words (not torch's "unexpected pos")."""
    reasons = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted",
               errno.EFBIG: "the file is too large (for the file system or the file-size limit)",
               errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.EROFS: "the file system is read-only"}
    return reasons.get(error.errno, error.strerror or str(error))


def check_target(path: str | os.PathLike) -> Path:
    """The file a checkpoint for ``path`` will be written to, checked before any training.

    ``path`` must name a regular file or nothing yet (a symbolic link to a regular file is
    followed); its folder is created if needed and must be writable; the name must leave room
    for the temporary file written beside it. Anything else raises a ``CheckpointError`` that
    names the problem: a folder, FIFO or device there is refused, never replaced.
    """
    if str(path) == "":
        raise CheckpointError("The checkpoint path is empty: give a file name.")
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as error:
        raise CheckpointError(f"Cannot save to {path}: {_describe_os_error(error)}.") from None
    if info is not None and stat.S_ISLNK(info.st_mode):
        try:
            target = path.resolve(strict=True)
            info = os.stat(target)
        except (OSError, RuntimeError):
            raise CheckpointError(f"Cannot save to {path}: it is a symbolic link to a file "
                                  "that does not exist; remove the link or name another file."
                                  ) from None
        if not stat.S_ISREG(info.st_mode):
            raise CheckpointError(f"Cannot save to {path}: it is a symbolic link to "
                                  f"{_kind_of_file(info.st_mode)}, not to a file.")
        path = target
    elif info is not None and not stat.S_ISREG(info.st_mode):
        hint = (f"name a file inside it, e.g. {path / 'model.pt'}" if stat.S_ISDIR(info.st_mode)
                else "name a regular file")
        raise CheckpointError(f"Cannot save to {path}: it is {_kind_of_file(info.st_mode)}, "
                              f"not a file; {hint}.")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise CheckpointError(f"Cannot save to {path}: a part of {folder} is a file, not a "
                              "folder.") from None
    except OSError as error:
        raise CheckpointError(f"Cannot create the folder {folder}: "
                              f"{_describe_os_error(error)}.") from None
    limit = os.pathconf(folder, "PC_NAME_MAX")
    if len(os.fsencode(path.name)) + _TEMPORARY_EXTRA > limit:
        raise CheckpointError(
            f"The file name {path.name[:40]}... is too long: it has "
            f"{len(os.fsencode(path.name))} bytes, and a checkpoint's name may have at most "
            f"{limit - _TEMPORARY_EXTRA} here, to leave room for the temporary file beside it.")
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.{os.getpid()}.",
                                         suffix=".tmp")
    except OSError as error:
        raise CheckpointError(f"Cannot write in the folder {folder}: "
                              f"{_describe_os_error(error)}.") from None
    os.close(handle)
    os.unlink(probe)
    return path


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files left in ``folder`` by saves whose process no longer exists."""
    for entry in folder.iterdir():
        match = _TEMPORARY.match(entry.name)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            entry.unlink(missing_ok=True)
        except (PermissionError, OverflowError):
            pass  # that process exists (and is another user's) or the number is no pid


def _new_file_mode(existing: Path) -> int:
    """The mode the checkpoint gets: an overwritten file keeps its own, a new one follows the
    umask, as any file the user creates would."""
    try:
        return stat.S_IMODE(os.stat(existing).st_mode)
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, so a save is never cut short halfway: the
    signal is handled (as it would have been) once the new checkpoint is in place or the old
    one untouched. Python runs signal handlers in the main thread only, so that is where this
    can (and needs to) act."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {number: signal.signal(number, lambda number, frame: received.append(number))
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in received:
            handler = previous[number]
            if callable(handler):
                handler(number, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(number)


def save_checkpoint(path: str | os.PathLike, model: LatentVariableModel,
                    history: dict | None = None, training: dict | None = None) -> Path:
    """Write the model's sizes, weights, optional history and optional training state (what
    ``fit`` needs to resume) to ``path`` atomically; return the file written.

    The payload is serialized in memory, written beside ``path`` under a temporary name, synced
    and renamed over it, so a crash, a signal or a full disk never leaves a half-written
    checkpoint where a good one was. Failures raise a ``CheckpointError`` saying why.
    """
    path = check_target(path)
    payload = {
        "kind": type(model).__name__,
        "config": model.config,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": history or {},
    }
    if training is not None:
        payload["training"] = training
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with _signals_deferred():
        _remove_stale_temporaries(path.parent)
        mode = _new_file_mode(path)
        try:
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp",
                                                 prefix=f".{path.name}.{os.getpid()}.")
        except OSError as error:
            raise CheckpointError(f"Could not save the checkpoint {path}: "
                                  f"{_describe_os_error(error)}.") from None
        try:
            with os.fdopen(handle, "wb") as file:
                os.fchmod(file.fileno(), mode)
                file.write(buffer.getbuffer())
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException as error:
            Path(temporary).unlink(missing_ok=True)
            if isinstance(error, OSError):
                raise CheckpointError(
                    f"Could not save the checkpoint {path}: {_describe_os_error(error)}; "
                    "any previous checkpoint there is unchanged.") from None
            raise
    return path


def _check_config(kind: str, config: object, where: Path) -> None:
    """Refuse a config the model class would not accept, or one too large to allocate."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{where} has a config of type {type(config).__name__}, not a dict.")
    accepted = inspect.signature(MODELS[kind]).parameters
    unknown = sorted(str(key) for key in config if key not in accepted)
    if unknown:
        raise CheckpointError(f"{where} has a config with unknown keys for a {kind}: "
                              f"{', '.join(unknown)}.")
    for key, value in config.items():
        if key in ("likelihood", "sigma"):
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CheckpointError(f"{where} has an impossible size in its config: "
                                  f"{key}={value!r} (a positive integer is needed).")
    if not isinstance(config.get("likelihood", ""), str):
        raise CheckpointError(f"{where} has a likelihood that is not a name: "
                              f"{config['likelihood']!r}.")
    sigma = config.get("sigma")
    if not (sigma is None or isinstance(sigma, str)
            or (isinstance(sigma, (int, float)) and not isinstance(sigma, bool))):
        raise CheckpointError(f"{where} has a sigma of type {type(sigma).__name__}.")
    try:
        with torch.device("meta"):
            skeleton = MODELS[kind](**config)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{where} has a config a {kind} refuses: {error}") from None
    count = count_parameters(skeleton)
    if count > MAX_PARAMETERS:
        raise CheckpointError(f"{where} describes a {kind} of {count:,} parameters, more than "
                              f"the {MAX_PARAMETERS:,} a checkpoint may hold; refused.")


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The checked payload of the checkpoint at ``path``: ``kind``, ``config``, ``state_dict``,
    ``history`` and, when it was saved while training, ``training``.

    Loaded with ``weights_only=True`` (no code runs); every part is checked for its type, the
    config against the model class and a parameter budget, so anything malformed raises a
    ``CheckpointError`` naming the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path} is not a readable checkpoint ({error}).") from None
    if not isinstance(payload, dict) or not {"config", "state_dict"} <= payload.keys():
        raise CheckpointError(f"{path} is not a vae_helpers checkpoint (no config/state_dict).")
    payload.setdefault("kind", "VAE")
    payload.setdefault("history", {})
    kind = payload["kind"]
    if not isinstance(kind, str) or kind not in MODELS:
        raise CheckpointError(f"{path} holds an unknown kind of model, {kind!r}.")
    _check_config(kind, payload["config"], path)
    weights = payload["state_dict"]
    if not isinstance(weights, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        raise CheckpointError(f"{path} has a state_dict that is not a dict of named tensors.")
    for part in ("history", "training"):
        if part in payload and not isinstance(payload[part], dict):
            raise CheckpointError(f"{path} has a {part} of type "
                                  f"{type(payload[part]).__name__}, not a dict.")
    return payload


def training_state(path: str | os.PathLike) -> tuple[dict, dict]:
    """The checked payload of ``path`` and its training state (what ``fit`` saved after an
    epoch, to resume from); a ``CheckpointError`` when it holds a finished model instead."""
    payload = read_checkpoint(path)
    state = payload.get("training")
    if not isinstance(state, dict) or not isinstance(state.get("epoch"), int):
        raise CheckpointError(f"{path} holds a finished model, not the state of a training run "
                              "that can be resumed.")
    return payload, state


def load_checkpoint(
    path: str | os.PathLike,
    model: LatentVariableModel | None = None,
    device: str | torch.device | None = None,
) -> tuple[LatentVariableModel, dict]:
    """Load ``(model, history)`` from ``path``; build the model when none is given.

    A given ``model`` must have the checkpoint's sizes, or a ``CheckpointError`` says which differ.
    """
    payload = read_checkpoint(path)
    kind, config = payload["kind"], payload["config"]
    if model is None:
        model = MODELS[kind](**config)
    elif type(model).__name__ != kind or model.config != config:
        raise CheckpointError(
            f"{path} holds a {kind} with sizes {config}, but the model is a "
            f"{type(model).__name__} with sizes {model.config}."
        )
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(f"{path} does not fit the model: {error}") from None
    if device is not None:
        model.to(device)
    return model, payload["history"]
