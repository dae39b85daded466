import errno
import os
import stat
import subprocess
import sys

import pytest
import torch

from vae_helpers import VAE, CheckpointError, load_checkpoint, save_checkpoint
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


def test_mismatched_sizes_are_refused_with_both_shapes(tmp_path, small_model):
    path = save_checkpoint(tmp_path / "vae.pt", small_model)
    sizes = r"VAE with sizes \{'nx': 784, 'nh': 32, 'nz': 2\}.*'nh': 512"
    with pytest.raises(CheckpointError, match=sizes):
        load_checkpoint(path, VAE())


def test_missing_and_unreadable_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="No checkpoint at"):
        load_checkpoint(tmp_path / "absent.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
        load_checkpoint(garbage)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a vae_helpers checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_loading_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"config": {"nx": 784, "nh": 8, "nz": 2}, "state_dict": {}, "history": object()},
               path)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_every_kind_of_model_round_trips_and_kinds_are_not_confused(tmp_path):
    from vae_helpers import ConditionalVAE, ConvVAE

    for model in (ConditionalVAE(nh=8), ConvVAE(nh=8, channels=4)):
        path = save_checkpoint(tmp_path / f"{type(model).__name__}.pt", model)
        loaded, _ = load_checkpoint(path)
        assert type(loaded) is type(model) and loaded.config == model.config
    with pytest.raises(CheckpointError, match="holds a ConvVAE .* but the model is a VAE"):
        load_checkpoint(tmp_path / "ConvVAE.pt", VAE(nh=8))


def _payload(small_model, **changes) -> dict:
    payload = {"kind": "VAE", "config": dict(small_model.config),
               "state_dict": small_model.state_dict(), "history": {}}
    payload.update(changes)
    return payload


@pytest.mark.parametrize("change, words", [
    ({"config": {"nx": 784, "nh": 32, "nz": 2, "colour": 1}}, "unknown keys for a VAE: colour"),
    ({"config": {"nx": 784, "nh": "32", "nz": 2}}, "impossible size in its config: nh='32'"),
    ({"config": {"nx": 784, "nh": -4, "nz": 2}}, "impossible size in its config: nh=-4"),
    ({"config": {"nx": 784, "nh": True, "nz": 2}}, "impossible size in its config: nh=True"),
    ({"config": [784, 32, 2]}, "config of type list"),
    ({"config": {"nx": 784, "nh": 32, "nz": 2, "likelihood": 3}}, "likelihood that is not a"),
    ({"config": {"nx": 784, "nh": 32, "nz": 2, "likelihood": "poisson"}}, "refuses"),
    ({"config": {"nx": 784, "nh": 32, "nz": 2, "sigma": [1]}}, "sigma of type list"),
    ({"kind": 7}, "unknown kind of model, 7"),
    ({"kind": "Transformer"}, "unknown kind of model, 'Transformer'"),
    ({"state_dict": [1, 2]}, "state_dict that is not a dict of named tensors"),
    ({"state_dict": {"encoder_hidden.weight": 3}}, "state_dict that is not a dict of named"),
    ({"history": [1.0, 2.0]}, "history of type list"),
    ({"training": "yes"}, "training of type str"),
])
def test_every_malformed_payload_is_a_checkpoint_error(tmp_path, small_model, change, words):
    path = tmp_path / "bad.pt"
    torch.save(_payload(small_model, **change), path)
    with pytest.raises(CheckpointError, match=words):
        load_checkpoint(path)


def test_absurd_sizes_are_refused_before_anything_is_allocated(tmp_path, small_model):
    """nh = 10^12 would ask for 8 TB of weights: refused from the config alone, at once."""
    path = tmp_path / "huge.pt"
    torch.save(_payload(small_model, config={"nx": 784, "nh": 10**12, "nz": 2}), path)
    with pytest.raises(CheckpointError, match=f"more than the {MAX_PARAMETERS:,}"):
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


def test_saving_through_a_link_to_a_file_updates_the_file(tmp_path, small_model):
    real = save_checkpoint(tmp_path / "real.pt", VAE(nh=8))
    link = tmp_path / "link.pt"
    link.symlink_to(real)
    save_checkpoint(link, small_model)
    assert link.is_symlink() and load_checkpoint(real)[0].config == small_model.config


def test_the_library_refuses_what_is_not_a_file_and_replaces_nothing(tmp_path, small_model):
    os.mkfifo(tmp_path / "pipe")
    for target, words in ((tmp_path, "it is a folder"), (tmp_path / "pipe", "named pipe"),
                          ("", "path is empty"), (tmp_path / ("x" * 250), "too long")):
        with pytest.raises(CheckpointError, match=words):
            save_checkpoint(target, small_model)
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode)


def test_a_stale_temporary_file_of_a_killed_save_is_removed_by_the_next_save(tmp_path,
                                                                          small_model):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid now belongs to no process, like that of a save killed by SIGKILL
    stale = tmp_path / f".other.pt.{dead.pid}.abcdEF12.tmp"
    stale.write_bytes(b"half a checkpoint")
    alive = tmp_path / f".other.pt.{os.getppid()}.abcdEF12.tmp"  # a save still running
    alive.write_bytes(b"in progress")
    save_checkpoint(tmp_path / "vae.pt", small_model)
    assert not stale.exists() and alive.exists()


def test_a_signal_during_a_save_waits_for_the_save_to_finish(tmp_path, small_model,
                                                            monkeypatch):
    """SIGINT raised while the file is written arrives after the rename: no temporary left,
    the new checkpoint in place."""
    import signal

    real_fsync = os.fsync

    def fsync_then_signal(fd):
        os.kill(os.getpid(), signal.SIGINT)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_then_signal)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "vae.pt", small_model)
    assert [p.name for p in tmp_path.iterdir()] == ["vae.pt"]
    assert load_checkpoint(tmp_path / "vae.pt")[0].config == small_model.config
