import pytest
import torch

from vae_helpers import VAE, CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip_keeps_weights_sizes_and_history(tmp_path, small_model):
    path = save_checkpoint(tmp_path / "sub" / "vae.pt", small_model, {"train_loss": [1.5]})
    model, history = load_checkpoint(path)
    assert model.config == small_model.config and history == {"train_loss": [1.5]}
    for name, tensor in small_model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor)
    assert [p.name for p in path.parent.iterdir()] == ["vae.pt"]  # no temporary file left


def test_failed_save_leaves_the_old_checkpoint_intact(tmp_path, small_model, monkeypatch):
    path = save_checkpoint(tmp_path / "vae.pt", small_model)
    good = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
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
