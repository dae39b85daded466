import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vae_helpers import load_checkpoint, train_model
from vae_helpers.__main__ import build_parser, main, program_name

ROOT = Path(__file__).resolve().parents[1]


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
                   "--device", "--subset", "--cuda-graph", "--save", "--resume", "--overwrite",
                   "--no-progress"):
        assert option in text
    assert text.count("(default:") == 14 and "``" not in text
    assert "(default: None)" not in text and ") (default" not in text


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


# --- Everything is checked before the first epoch; each failure is one line, no traceback ---

def _fails_with(capsys, argv: list[str], status: int, *fragments: str) -> str:
    """Run the command line in-process; it must exit with ``status`` and one stderr line."""
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own mistakes
        code = exit_.code
    err = capsys.readouterr().err
    assert code == status, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.mark.parametrize("value", ["0", "-3", "1.5", "many"])
def test_batch_size_must_be_a_positive_integer(capsys, value):
    _fails_with(capsys, ["train", "--batch-size", value], 2,
                "argument --batch-size: must be a positive integer", repr(value))


@pytest.mark.parametrize("option, value", [("--lr", "0"), ("--lr", "nan"), ("--nh", "0"),
                                           ("--epochs", "-1"), ("--epochs", "0"),
                                           ("--subset", "0"), ("--subset", "70000"),
                                           ("--seed", str(2**64)), ("--seed", "-1"),
                                           ("--nh", str(10**20))])
def test_other_numbers_are_checked_by_the_parser(capsys, option, value):
    _fails_with(capsys, ["train", option, value], 2, f"argument {option}: must be", repr(value))


def test_devices_that_do_not_exist_here_name_what_is_available(capsys, tmp_path):
    """Checked before the data is read: the empty data folder is never reached."""
    missing_gpu = f"cuda:{torch.cuda.device_count()}"
    for device, fragment in ((missing_gpu, "is not available: this machine has"),
                             ("tpu", "is not a device name"),
                             ("meta", "cannot train these models here")):
        err = _fails_with(capsys, ["train", "--device", device, "--data-dir", str(tmp_path)], 1,
                          f"device '{device}'", fragment, "cpu")
        assert "MNIST" not in err
    assert list(tmp_path.iterdir()) == []


def test_sizes_that_cannot_be_allocated_are_refused_before_allocating(capsys, tmp_path):
    _fails_with(capsys, ["train", "--nh", "100000000", "--data-dir", str(tmp_path)], 1,
                "--nh 100000000", "GiB to train", "has")


@pytest.mark.parametrize("kind", ["folder", "fifo", "device", "link to folder", "link to fifo",
                                  "dangling link"])
def test_save_targets_that_are_not_files_are_refused_and_kept(capsys, tmp_path, kind):
    import os
    import stat

    folder, fifo = tmp_path / "folder", tmp_path / "fifo"
    folder.mkdir()
    os.mkfifo(fifo)
    target = {"folder": folder, "fifo": fifo, "device": "/dev/null"}.get(kind)
    if target is None:
        target = tmp_path / "link"
        pointee = {"link to folder": folder, "link to fifo": fifo,
                   "dangling link": tmp_path / "absent"}[kind]
        target.symlink_to(pointee)
    before = os.lstat(target)
    fragment = {"folder": "it is a folder", "fifo": "named pipe", "device": "character device",
                "link to folder": "symbolic link to a folder",
                "link to fifo": "symbolic link to a named pipe",
                "dangling link": "does not exist"}[kind]
    _fails_with(capsys, ["train", "--save", str(target), "--data-dir", str(tmp_path / "none")],
                1, fragment)
    after = os.lstat(target)
    assert (before.st_mode, before.st_ino) == (after.st_mode, after.st_ino)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and folder.is_dir()
    assert not (tmp_path / "none").exists()  # nothing was loaded, nothing trained


def test_a_name_with_no_room_for_the_temporary_file_is_refused(capsys, tmp_path):
    _fails_with(capsys, ["train", "--save", str(tmp_path / ("m" * 250))], 1,
                "name is too long", "temporary file")


def test_a_folder_that_cannot_be_written_is_refused_before_training(capsys, tmp_path,
                                                                   monkeypatch):
    import vae_helpers.checkpoints as checkpoints

    def refuse(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(checkpoints, "_create_temporary", refuse)
    _fails_with(capsys, ["train", "--save", str(tmp_path / "m.pt"), "--data-dir",
                         str(tmp_path / "none")], 1, "Cannot write m.pt in the folder",
                "permission denied")


def test_resume_needs_a_checkpoint_to_resume(capsys, tmp_path):
    _fails_with(capsys, ["train", "--resume"], 1, "--resume needs --save FILE")
    _fails_with(capsys, ["train", "--resume", "--save", str(tmp_path / "m.pt")], 1,
                "nothing to resume")


def test_unreadable_data_files_are_one_line_naming_the_file(capsys, tmp_path, monkeypatch):
    import os

    real_stat = os.stat

    def no_access(path, *args, **kwargs):
        if str(path).endswith("train-images-idx3-ubyte"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", no_access)
    _fails_with(capsys, ["train", "--no-progress"], 1, "Permission denied reading",
                "train-images-idx3-ubyte")


def test_a_full_disk_during_the_save_says_so_and_keeps_the_old_checkpoint(
        mnist_train, capsys, tmp_path, monkeypatch):
    import errno
    import os

    target = tmp_path / "m.pt"
    assert main(["train", "--epochs", "1", "--subset", "300", "--nh", "16", "--no-progress",
                 "--save", str(target)]) == 0
    good = target.read_bytes()
    capsys.readouterr()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    err = _fails_with(capsys, ["train", "--epochs", "1", "--subset", "300", "--nh", "16",
                               "--no-progress", "--save", str(target), "--overwrite"], 1,
                      "the disk is full", "unchanged")
    assert "unexpected pos" not in err
    assert target.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_resume_with_other_options_names_them(mnist_train, capsys, tmp_path):
    target = tmp_path / "m.pt"
    assert main(["train", "--epochs", "1", "--subset", "300", "--nh", "16", "--no-progress",
                 "--save", str(target)]) == 0
    capsys.readouterr()
    _fails_with(capsys, ["train", "--epochs", "2", "--subset", "300", "--nh", "32",
                         "--no-progress", "--save", str(target), "--resume"], 1,
                "--nh 16 (not 32)")
    assert main(["train", "--epochs", "1", "--subset", "300", "--nh", "16", "--no-progress",
                 "--save", str(target), "--resume"]) == 0
    assert "already holds 1 epochs; nothing to train" in capsys.readouterr().out


def test_an_unexpected_error_is_one_line_unless_debugging(capsys, monkeypatch):
    import vae_helpers.devices as devices

    def broken(device=None):
        raise KeyError("surprise")

    monkeypatch.setattr(devices, "resolve_device", broken)
    _fails_with(capsys, ["train"], 1, "unexpected KeyError", "VAE_DEBUG=1")
    monkeypatch.setenv("VAE_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["train"])


# --- Real processes: closed standard output, file-size limit, signals, resume ---

TRAIN = [sys.executable, "-m", "vae_helpers", "train", "--no-progress", "--nh", "64"]


def _environment() -> dict:
    import os

    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _temporaries(folder) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_a_reader_that_stops_early_does_not_cost_the_checkpoint(mnist_train, tmp_path):
    """``... | head -1``: the pipe closes after the first line; training and saving go on."""
    target = tmp_path / "m.pt"
    process = subprocess.Popen([*TRAIN, "--epochs", "3", "--subset", "2000", "--save",
                                str(target)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=_environment(), cwd=tmp_path)
    first = process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=300) == 0, err
    assert first.startswith(b"device:") and err == ""
    model, history = load_checkpoint(target)
    assert len(history["train_loss"]) == 3


@pytest.mark.slow
def test_a_closed_standard_output_from_the_start_is_survived(mnist_train, tmp_path):
    target = tmp_path / "m.pt"
    result = subprocess.run([*TRAIN, "--epochs", "1", "--subset", "500", "--save", str(target)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_environment(),
                            cwd=tmp_path, preexec_fn=lambda: __import__("os").close(1),
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(load_checkpoint(target)[1]["train_loss"]) == 1


@pytest.mark.slow
def test_a_file_size_limit_during_the_save_is_named(mnist_train, tmp_path):
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))

    result = subprocess.run([*TRAIN, "--epochs", "1", "--subset", "300", "--save",
                             str(tmp_path / "m.pt")], capture_output=True, text=True,
                            env=_environment(), cwd=tmp_path, preexec_fn=limit, timeout=300)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "the file is too large" in result.stderr
    assert list(tmp_path.iterdir()) == []


def _interrupt_after_first_epoch(tmp_path, signal_number):
    """Start a run that saves each epoch, send the signal once epoch 1 has been printed."""
    target = tmp_path / "m.pt"
    process = subprocess.Popen([*TRAIN, "--epochs", "40", "--subset", "20000", "--save",
                                str(target)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=_environment(), cwd=tmp_path)
    lines = []
    while not lines or not lines[-1].startswith("====> Epoch: 1 "):
        lines.append(process.stdout.readline())
        assert lines[-1], process.stderr.read()
    process.send_signal(signal_number)
    out, err = process.communicate(timeout=300)
    return process.returncode, lines + out.splitlines(), err, target


@pytest.mark.slow
@pytest.mark.parametrize("name, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_signals_stop_cleanly_and_keep_the_completed_epochs(mnist_train, tmp_path, name,
                                                              status):
    import signal

    code, lines, err, target = _interrupt_after_first_epoch(tmp_path, getattr(signal, name))
    assert code == status
    printed = sum(line.startswith("====> Epoch:") for line in lines)
    saved = len(load_checkpoint(target)[1]["train_loss"])  # a save may beat its line
    assert printed <= saved <= printed + 1 < 40
    held = "epoch 1 is" if saved == 1 else f"epochs 1-{saved} are"
    assert err.count("\n") == 1 and err.startswith(f"interrupted by {name}: {held}"), err
    assert f"{held} saved in {target}" in err and "--resume" in err
    assert _temporaries(tmp_path) == []


@pytest.mark.slow
def test_resume_after_an_interruption_gives_the_uninterrupted_numbers(mnist_train, tmp_path):
    import signal

    (tmp_path / "cut").mkdir()
    (tmp_path / "whole").mkdir()
    _, lines, _, target = _interrupt_after_first_epoch(tmp_path / "cut", signal.SIGINT)
    epochs = sum(line.startswith("====> Epoch:") for line in lines) + 2
    options = ["--epochs", str(epochs), "--subset", "20000"]
    resumed = subprocess.run([*TRAIN, *options, "--save", str(target), "--resume"],
                             capture_output=True, text=True, env=_environment(), timeout=300)
    whole = subprocess.run([*TRAIN, *options, "--save", str(tmp_path / "whole" / "m.pt")],
                           capture_output=True, text=True, env=_environment(), timeout=300)
    assert resumed.returncode == whole.returncode == 0, resumed.stderr + whole.stderr

    def losses(text: str) -> list[str]:
        return re.findall(r"Epoch: (\d+) Average loss: ([0-9.]+)  \(test -ELBO ([0-9.]+)", text)

    assert losses(resumed.stdout) == losses(whole.stdout)[-2:]
    a, b = load_checkpoint(target)[0], load_checkpoint(tmp_path / "whole" / "m.pt")[0]
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


@pytest.mark.slow
def test_help_answers_without_importing_torch_or_plotting():
    probe = ("import sys, runpy; sys.argv = ['vae-helpers', 'train', '--help']\n"
             "try:\n    runpy.run_module('vae_helpers', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print(sorted(m for m in ('torch', 'matplotlib', 'ipywidgets', 'torchvision')"
             " if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env=_environment(), timeout=120)
    assert "--resume" in result.stdout and result.stdout.splitlines()[-1] == "[]"


def test_the_default_seed_is_the_libraries(capsys):
    from vae_helpers import DEFAULT_SEED
    from vae_helpers.__main__ import DEFAULT_SEED as CLI_SEED

    assert CLI_SEED == DEFAULT_SEED


# --- Never lose a run: existing checkpoints, crafted states, closed streams, signals ---

def test_an_existing_checkpoint_is_neither_replaced_nor_mixed_without_saying_so(
        mnist_train, capsys, tmp_path):
    target = tmp_path / "m.pt"
    quick = ["train", "--epochs", "1", "--subset", "300", "--nh", "16", "--no-progress",
             "--save", str(target)]
    assert main(quick) == 0
    good = target.read_bytes()
    capsys.readouterr()
    _fails_with(capsys, [*quick[:-2], "--nh", "32", "--save", str(target)], 1,
                "exists already", "--resume", "--overwrite")
    assert target.read_bytes() == good
    _fails_with(capsys, [*quick, "--resume", "--overwrite"], 1, "choose one")
    _fails_with(capsys, ["train", "--overwrite"], 1, "--overwrite needs --save FILE")
    assert main([*quick[:-2], "--nh", "32", "--save", str(target), "--overwrite"]) == 0
    assert load_checkpoint(target)[0].config["nh"] == 32


def test_cuda_graph_without_a_gpu_is_one_line_before_anything_is_read(capsys, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    _fails_with(capsys, ["train", "--cuda-graph", "--data-dir", str(tmp_path / "none")], 1,
                "--cuda-graph needs a CUDA device", "cpu")


def test_a_newline_in_a_path_keeps_the_whole_reason_on_one_line(capsys, tmp_path):
    folder = tmp_path / "a\nb"
    folder.mkdir()
    err = _fails_with(capsys, ["train", "--save", str(folder)], 1, "it is a folder")
    assert "a\\nb" in err


def test_an_interruption_reports_the_epochs_the_file_really_holds(mnist_train, capsys, tmp_path,
                                                                 monkeypatch):
    """A signal right after a save's rename: the file holds the epoch that the command line
    had not yet counted; the message reads the file."""
    import vae_helpers.training as training
    from vae_helpers.__main__ import Interrupted

    real_save = training.save_checkpoint

    def save_then_signal(path, model, history, state):
        real_save(path, model, history, state)
        if state["epoch"] == 2:
            raise Interrupted("SIGINT")

    monkeypatch.setattr(training, "save_checkpoint", save_then_signal)
    target = tmp_path / "m.pt"
    code = main(["train", "--epochs", "3", "--subset", "300", "--nh", "16", "--no-progress",
                 "--save", str(target)])
    err = capsys.readouterr().err
    assert code == 130 and "epochs 1-2 are saved in" in err, err
    assert len(load_checkpoint(target)[1]["train_loss"]) == 2


def test_one_saved_epoch_is_called_one_epoch(mnist_train, capsys, tmp_path, monkeypatch):
    import vae_helpers.training as training
    from vae_helpers.__main__ import Interrupted

    def stop(*args):
        raise Interrupted("SIGTERM")

    target = tmp_path / "m.pt"
    monkeypatch.setattr(training, "mean_negative_elbo", lambda *a: 0.0)
    assert main(["train", "--epochs", "1", "--subset", "300", "--nh", "16", "--no-progress",
                 "--save", str(target)]) == 0
    monkeypatch.setattr(training, "train_epoch", stop)
    code = main(["train", "--epochs", "2", "--subset", "300", "--nh", "16", "--no-progress",
                 "--save", str(target), "--resume"])
    err = capsys.readouterr().err
    assert code == 143 and f"epoch 1 is saved in {target}" in err, err


@pytest.mark.slow
def test_a_crafted_optimizer_state_is_refused_not_a_crash(mnist_train, tmp_path):
    """A wrong-shaped Adam moment once reached the fused kernel: a segmentation fault."""
    target = tmp_path / "m.pt"
    options = ["--subset", "300", "--save", str(target)]
    subprocess.run([*TRAIN, "--epochs", "1", *options], check=True, env=_environment(),
                   capture_output=True, timeout=300)
    payload = torch.load(target, weights_only=True)
    payload["training"]["optimizer"]["state"][0]["exp_avg"] = torch.zeros(7)
    torch.save(payload, target)
    result = subprocess.run([*TRAIN, "--epochs", "2", *options, "--resume"], text=True,
                            capture_output=True, env=_environment(), timeout=300)
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1 and "optimizer's exp_avg of parameter 0" in \
        result.stderr


@pytest.mark.slow
def test_a_closed_standard_error_from_the_start_is_survived(mnist_train, tmp_path):
    """``train ... 2>&-`` with the default progress bar once died before the first save."""
    import os

    target = tmp_path / "m.pt"
    result = subprocess.run([sys.executable, "-m", "vae_helpers", "train", "--nh", "16",
                             "--epochs", "2", "--subset", "500", "--save", str(target)],
                            stdout=subprocess.PIPE, env=_environment(), cwd=tmp_path,
                            preexec_fn=lambda: os.close(2), timeout=300)
    assert result.returncode == 0, result.stdout
    assert len(load_checkpoint(target)[1]["train_loss"]) == 2
