import errno
import os
import stat
import zipfile

import pytest
import torch

from vae_helpers import VAE, CheckpointError, fit, load_checkpoint, save_checkpoint
from vae_helpers.checkpoints import MAX_PARAMETERS, read_checkpoint


def test_round_trip_keeps_weights_sizes_and_history(tmp_path, small_model):
    path = save_checkpoint(tmp_path / "sub" / "vae.pt", small_model, {"train_loss": [1.5]})
    model, history = load_checkpoint(path)
    assert model.config == small_model.config and history == {"train_loss": [1.5]}
    for name, tensor in small_model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor)
    assert [p.name for p in path.parent.iterdir()] == ["vae.pt"]  # no temporary file left


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "the disk is full"),
                                         (errno.EFBIG, "the file is too large"),
                                         (errno.EROFS, "read-only")])
def test_failed_save_says_why_and_leaves_the_old_checkpoint_intact(tmp_path, small_model,
                                                                   monkeypatch, code, words):
    path = save_checkpoint(tmp_path / "vae.pt", small_model)
    good = path.read_bytes()

    def crash(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(CheckpointError, match=f"{words}.*previous checkpoint there is unchanged"):
        save_checkpoint(path, VAE(nh=8))
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["vae.pt"]


def test_a_save_never_touches_other_files_in_its_folder(tmp_path, small_model):
    """Names that look like an old temporary (even of a dead process), folders and undeletable
    entries of that shape are someone else's: a save leaves them all, and still succeeds."""
    others = [tmp_path / ".other.pt.99999.abcdEF12.tmp", tmp_path / ".vae.pt.1.abcdefgh.tmp",
              tmp_path / "notes.txt"]
    for other in others:
        other.write_bytes(b"not yours")
    folder = tmp_path / ".cache.99999.abcdefgh.tmp"
    folder.mkdir()
    (folder / "inside").write_bytes(b"x")
    save_checkpoint(tmp_path / "vae.pt", small_model)
    save_checkpoint(tmp_path / "vae.pt", small_model)
    assert all(other.read_bytes() == b"not yours" for other in others)
    assert (folder / "inside").read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(o.name for o in others), folder.name, "vae.pt"])


def test_ctrl_c_during_a_save_leaves_the_previous_checkpoint_and_no_temporary(
        tmp_path, small_model, monkeypatch):
    path = save_checkpoint(tmp_path / "vae.pt", VAE(nh=8))
    good = path.read_bytes()
    real_fsync = os.fsync

    # Ctrl-C arriving once the new file is written, before it replaces the old one: raised here,
    # on the same path a SIGINT's KeyboardInterrupt takes, because a SIGINT sent with os.kill
    # once raised nothing in a full test run (when Python runs a signal's handler is its own).
    def fsync_then_interrupt(fd):
        real_fsync(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", fsync_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, small_model)
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["vae.pt"]


def test_mismatched_sizes_are_refused_with_both_shapes(tmp_path, small_model):
    path = save_checkpoint(tmp_path / "vae.pt", small_model)
    sizes = r"VAE with sizes \{'nx': 784, 'nh': 32, 'nz': 2\}.*'nh': 512"
    with pytest.raises(CheckpointError, match=sizes):
        load_checkpoint(path, VAE())


def test_missing_empty_and_foreign_files_say_what_they_are(tmp_path):
    with pytest.raises(CheckpointError, match="No checkpoint at"):
        load_checkpoint(tmp_path / "absent.pt")
    (tmp_path / "empty.pt").touch()
    with pytest.raises(CheckpointError, match=r"empty \(0 bytes\)"):
        load_checkpoint(tmp_path / "empty.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="not an archive written by torch.save"):
        load_checkpoint(tmp_path / "garbage.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a vae_helpers checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="it is a folder"):
        load_checkpoint(tmp_path)


def test_loading_refuses_pickled_code_and_never_advises_unsafe_loading(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"config": {"nx": 784, "nh": 8, "nz": 2}, "state_dict": {}, "history": object()},
               path)
    with pytest.raises(CheckpointError, match="objects other than tensors") as caught:
        load_checkpoint(path)
    assert "weights_only" not in str(caught.value)


def test_every_kind_of_model_round_trips_and_kinds_are_not_confused(tmp_path):
    from vae_helpers import AutoregressiveVAE, ConditionalVAE, ConvVAE

    for model in (ConditionalVAE(nh=8), ConvVAE(nh=8, channels=4),
                  AutoregressiveVAE(nh=8, nz=3, delta=0.2)):
        path = save_checkpoint(tmp_path / f"{type(model).__name__}.pt", model)
        loaded, _ = load_checkpoint(path)
        assert type(loaded) is type(model) and loaded.config == model.config
        assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    with pytest.raises(CheckpointError, match="holds a ConvVAE .* but the model is a VAE"):
        load_checkpoint(tmp_path / "ConvVAE.pt", VAE(nh=8))


def _payload(small_model, **changes) -> dict:
    payload = {"format": 1, "kind": "VAE", "config": dict(small_model.config),
               "state_dict": small_model.state_dict(), "history": {}}
    payload.update(changes)
    return payload


def _weights(small_model, name="encoder_hidden.weight", value=None):
    weights = dict(small_model.state_dict())
    weights[name] = value
    return weights


@pytest.mark.parametrize("change, words", [
    ({"config": {"nx": 784, "nh": 32, "nz": 2, "colour": 1}}, "refuses: .*'colour'"),
    ({"config": {"nx": 784, "nh": "32", "nz": 2}}, "nh must be a positive integer, not '32'"),
    ({"config": {"nx": 784, "nh": -4, "nz": 2}}, "nh must be a positive integer, not -4"),
    ({"config": {"nx": 784, "nh": True, "nz": 2}}, "nh must be a positive integer, not True"),
    ({"config": [784, 32, 2]}, "config of type list"),
    ({"config": {"nx": 784, "nh": 32, "nz": 2, "likelihood": 3}}, "likelihood must be one of"),
    ({"config": {"nx": 784, "nh": 32, "nz": 2, "likelihood": "poisson"}}, "refuses"),
    ({"config": {"nx": 784, "nh": 32, "nz": 2, "sigma": [1]}}, "does not describe a VAE"),
    ({"kind": 7}, "unknown kind of model, 7"),
    ({"kind": "Transformer"}, "unknown kind of model, 'Transformer'"),
    ({"state_dict": [1, 2]}, "state_dict that does not name the VAE's weights"),
    ({"state_dict": {"encoder_hidden.weight": 3}}, "does not name the VAE's weights"),
    ({"history": [1.0, 2.0]}, "damaged history"),
    ({"history": {"train_loss": "many"}}, "damaged history"),
    ({"training": "yes"}, "damaged training state"),
    ({"extra": 1}, "parts this version does not know: extra; refused"),
    ({"format": 2}, "format 2, newer than the 1 this vae_helpers reads"),
])
def test_every_malformed_payload_is_a_checkpoint_error(tmp_path, small_model, change, words):
    path = tmp_path / "bad.pt"
    torch.save(_payload(small_model, **change), path)
    with pytest.raises(CheckpointError, match=words):
        load_checkpoint(path)


@pytest.mark.parametrize("value, words", [
    (torch.zeros(32, 784, dtype=torch.float64), "encoder_hidden.weight is torch.float64, not"),
    (torch.full((32, 784), float("nan")), "encoder_hidden.weight holds NaN"),
    (torch.zeros(32, 783), r"has shape \(32, 783\), not \(32, 784\)"),
])
def test_weights_are_checked_for_dtype_finiteness_and_shape(tmp_path, small_model, value, words):
    path = tmp_path / "bad.pt"
    torch.save(_payload(small_model, state_dict=_weights(small_model, value=value)), path)
    with pytest.raises(CheckpointError, match=words):
        load_checkpoint(path)


def test_an_old_checkpoint_without_a_format_still_loads(tmp_path, small_model):
    path = tmp_path / "old.pt"
    payload = _payload(small_model)
    del payload["format"]
    torch.save(payload, path)
    assert load_checkpoint(path)[0].config == small_model.config


def test_absurd_sizes_are_refused_before_anything_is_allocated(tmp_path, small_model):
    """nh = 10^12 would ask for 8 TB of weights: refused from the config alone, at once."""
    path = tmp_path / "huge.pt"
    torch.save(_payload(small_model, config={"nx": 784, "nh": 10**12, "nz": 2}), path)
    with pytest.raises(CheckpointError, match=f"more than the {MAX_PARAMETERS:,}"):
        read_checkpoint(path)


def _rewrite(source, target, big_record: bytes | None = None, claim: int | None = None) -> None:
    """Copy a checkpoint archive, replacing its first storage record by ``big_record``
    (compressed) or claiming ``claim`` bytes for it in the central directory."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for record in old.infolist():
            data = old.read(record)
            if record.filename.endswith("/data/0") and big_record is not None:
                new.writestr(record.filename, big_record, compress_type=zipfile.ZIP_DEFLATED)
            else:
                new.writestr(record, data)
    if claim is not None:
        raw = bytearray(target.read_bytes())
        start = raw.index(b"PK\x01\x02")  # the first central directory entry
        raw[start + 24:start + 28] = claim.to_bytes(4, "little")
        target.write_bytes(raw)


@pytest.mark.parametrize("how", ["compressed", "claimed"])
def test_an_archive_that_declares_more_than_it_holds_is_refused_before_loading(
        tmp_path, small_model, monkeypatch, how):
    good = save_checkpoint(tmp_path / "good.pt", small_model)
    bomb = tmp_path / "bomb.pt"
    if how == "compressed":
        _rewrite(good, bomb, big_record=bytes(50_000_000))  # 50 MB of zeros in about 50 kB
    else:
        _rewrite(good, bomb, claim=2**31)
    assert bomb.stat().st_size < 1_000_000
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    with pytest.raises(CheckpointError, match="declare .* bytes in a file of"):
        read_checkpoint(bomb)


def _training_checkpoint(tmp_path, epochs=1):
    data = torch.rand(300, 784)
    from vae_helpers import MNIST

    torch.manual_seed(0)
    path = tmp_path / "run.pt"
    fit(VAE(nh=16), MNIST(data, torch.zeros(300, dtype=torch.long)), epochs=epochs,
        progress=False, checkpoint=path)
    return path


def _tamper(path, change) -> None:
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


@pytest.mark.parametrize("change, words", [
    (lambda p: p["training"]["optimizer"]["state"][0].update(exp_avg=torch.zeros(3)),
     r"optimizer's exp_avg of parameter 0 has shape \(3,\), not \(16, 784\)"),
    (lambda p: p["training"]["optimizer"]["state"][2].update(
        exp_avg_sq=torch.full((2, 16), float("inf"))), "exp_avg_sq of parameter 2 holds NaN"),
    (lambda p: p["training"]["optimizer"]["state"][1].update(step=torch.tensor(1.0).double()),
     "step of parameter 1 is torch.float64"),
    (lambda p: p["training"]["optimizer"]["param_groups"][0].update(lr=float("nan")),
     "optimizer setting lr=nan"),
    (lambda p: p["training"]["optimizer"]["param_groups"][0].update(params=[0, 1]),
     "optimizer for other parameters"),
    (lambda p: p["training"].update(epoch=1_000_000), "1000000 epochs were trained but its "
                                                       "history has 1"),
    (lambda p: p["training"].update(rng="x"), r"damaged random state \(rng\)"),
    (lambda p: p["training"].update(options="x"), "damaged training state"),
])
def test_a_crafted_training_state_is_refused_part_by_part(tmp_path, change, words):
    path = _training_checkpoint(tmp_path)
    _tamper(path, change)
    with pytest.raises(CheckpointError, match=words):
        read_checkpoint(path)


def test_load_or_train_retrains_over_a_malformed_checkpoint(mnist_train, tmp_path, small_model):
    from vae_helpers import load_or_train

    path = tmp_path / "m.pt"
    torch.save(_payload(small_model, config={"nx": 784, "nh": "x", "nz": 2}), path)
    model, history = load_or_train(path, mnist_train[:200], epochs=1, nh=16, progress=False)
    assert model.config["nh"] == 16 and len(history.train_loss) == 1
    assert load_checkpoint(path)[0].config == model.config


def test_a_new_checkpoint_follows_the_umask_an_old_one_keeps_its_mode(tmp_path, small_model):
    previous = os.umask(0o027)
    try:
        fresh = save_checkpoint(tmp_path / "fresh.pt", small_model)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640
    os.chmod(fresh, 0o604)
    save_checkpoint(fresh, small_model)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o604


def test_a_write_protected_checkpoint_is_refused_and_kept(tmp_path, small_model):
    path = save_checkpoint(tmp_path / "kept.pt", VAE(nh=8))
    good = path.read_bytes()
    os.chmod(path, 0o444)
    with pytest.raises(CheckpointError, match="write-protected"):
        save_checkpoint(path, small_model)
    assert path.read_bytes() == good and stat.S_IMODE(path.stat().st_mode) == 0o444


def test_saving_through_a_link_to_a_file_updates_the_file(tmp_path, small_model):
    real = save_checkpoint(tmp_path / "real.pt", VAE(nh=8))
    link = tmp_path / "link.pt"
    link.symlink_to(real)
    save_checkpoint(link, small_model)
    assert link.is_symlink() and load_checkpoint(real)[0].config == small_model.config


def test_the_library_refuses_what_is_not_a_file_and_replaces_nothing(tmp_path, small_model):
    os.mkfifo(tmp_path / "pipe")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for target, words in ((tmp_path, "it is a folder"), (tmp_path / "pipe", "named pipe"),
                          ("", "path is empty"), (tmp_path / ("x" * 250), "name is too long"),
                          (loop, "loop of symbolic links")):
        with pytest.raises(CheckpointError, match=words):
            save_checkpoint(target, small_model)
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode) and loop.is_symlink()


def test_wrong_arguments_are_named(tmp_path, small_model):
    with pytest.raises(TypeError, match="model must be one of the book's models, not str"):
        save_checkpoint(tmp_path / "x.pt", "x")
    with pytest.raises(TypeError, match="path must be a file name, not int"):
        save_checkpoint(3, small_model)
    path = save_checkpoint(tmp_path / "m.pt", small_model)
    with pytest.raises(ValueError, match="device 'tpu' is not a device name"):
        load_checkpoint(path, device="tpu")


def test_checkpoints_need_nothing_unix_only(tmp_path, small_model, monkeypatch):
    """Windows has no os.fchmod, os.pathconf, os.sysconf or signal-0 probing of processes."""
    from vae_helpers.devices import memory_bytes

    for name in ("fchmod", "pathconf", "sysconf", "kill"):
        monkeypatch.delattr(os, name, raising=False)
    path = save_checkpoint(tmp_path / "m.pt", small_model)
    save_checkpoint(path, small_model)
    assert load_checkpoint(path)[0].config == small_model.config
    assert memory_bytes(torch.device("cpu")) is None
