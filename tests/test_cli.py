import re

import pytest
import torch

from vae_helpers import train_model
from vae_helpers.__main__ import build_parser, main, program_name


def test_train_prints_each_epoch_line_as_it_ends_and_says_no_checkpoint(mnist_train, capsys):
    assert main(["train", "--epochs", "2", "--subset", "1000", "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("device: cpu")
    assert [line.split("Average")[0] for line in lines[1:3]] == [
        "====> Epoch: 1 ", "====> Epoch: 2 "]
    assert lines[3] == "no checkpoint written (use --save FILE to keep the model)"


def test_epoch_lines_come_from_the_training_loop_not_after_it(mnist_train, capsys, monkeypatch):
    """The line of epoch 1 is printed before epoch 2 starts."""
    import vae_helpers.training as training

    printed_before_epoch = []
    original = training.train_epoch

    def spy(*args, **kwargs):
        printed_before_epoch.append(capsys.readouterr().out.count("====> Epoch:"))
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "train_epoch", spy)
    assert main(["train", "--epochs", "3", "--subset", "500", "--no-progress"]) == 0
    assert printed_before_epoch == [0, 1, 1]  # each read drains what was printed so far


def test_one_call_of_train_model_reproduces_the_command_line(mnist_train, mnist_test, capsys):
    assert main(["train", "--epochs", "2", "--subset", "1000", "--nh", "64", "--seed", "7",
                 "--no-progress"]) == 0
    printed = [float(v) for v in re.findall(r"Average loss: ([0-9.]+)", capsys.readouterr().out)]
    _, history = train_model(mnist_train[:1000], epochs=2, seed=7, nh=64, progress=False)
    assert printed == [round(loss, 4) for loss in history.train_loss]


def test_save_says_where_the_checkpoint_went(mnist_train, tmp_path, capsys):
    target = tmp_path / "model.pt"
    assert main(["train", "--epochs", "1", "--subset", "300", "--no-progress",
                 "--save", str(target)]) == 0
    assert f"saved the model to {target}" in capsys.readouterr().out and target.is_file()
    assert main(["train", "--epochs", "1", "--save", ""]) == 1
    assert capsys.readouterr().err == "error: --save needs a file name.\n"


def test_help_documents_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit):
        build_parser("vae-helpers").parse_args(["train", "--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: vae-helpers train")
    for option in ("--epochs", "--batch-size", "--lr", "--nz", "--nh", "--seed", "--data-dir",
                   "--device", "--subset", "--cuda-graph", "--save", "--no-progress"):
        assert option in text
    assert text.count("(default:") >= 12 and "``" not in text


def test_program_name_follows_how_it_was_started():
    assert program_name("/x/vae_helpers/__main__.py") == "python -m vae_helpers"
    assert program_name("/venv/bin/vae-helpers") == "vae-helpers"


def test_missing_data_is_one_line_on_stderr(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("torchvision.datasets.MNIST.__init__",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    assert main(["train", "--data-dir", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: MNIST is not in") and err.count("\n") == 1


def test_cpu_numbers_do_not_depend_on_the_progress_bar(mnist_train):
    runs = [train_model(mnist_train[:400], epochs=1, nh=16, progress=flag)[1].train_loss
            for flag in (False, True)]
    assert runs[0] == runs[1] and torch.isfinite(torch.tensor(runs[0])).all()
