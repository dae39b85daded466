from vae_helpers.__main__ import main


def test_train_prints_the_seeds_epoch_lines(mnist_train, capsys):
    assert main(["train", "--epochs", "2", "--subset", "1000", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.count("====> Epoch:") == 2 and "Average loss:" in out and "device: cpu" in out


def test_missing_data_is_one_line_on_stderr(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("torchvision.datasets.MNIST.__init__",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    assert main(["train", "--data-dir", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: MNIST is not in") and err.count("\n") == 1
