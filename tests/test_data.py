import shutil
import urllib.error

import pytest
import torch

from vae_helpers import DataError, batch_indices, check_images, data_root, load_mnist


def test_train_split_is_flat_pixels_in_unit_interval(mnist_train):
    assert mnist_train.images.shape == (60_000, 784)
    assert mnist_train.images.dtype == torch.float32
    assert float(mnist_train.images.min()) == 0.0 and float(mnist_train.images.max()) == 1.0
    assert mnist_train.labels.shape == (60_000,)
    assert set(mnist_train.labels.unique().tolist()) == set(range(10))


def test_subset_keeps_the_first_examples(mnist_train):
    small = load_mnist("train", device="cpu", subset=100)
    assert len(small) == 100
    assert torch.equal(small.images, mnist_train.images[:100])


def test_root_comes_from_argument_then_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path))
    assert data_root() == tmp_path
    assert data_root("elsewhere").name == "elsewhere"
    monkeypatch.delenv("VAE_DATA_DIR")
    assert data_root().name == "data"


def test_missing_files_without_download_name_the_folder(tmp_path):
    with pytest.raises(DataError, match=r"MNIST is not in .*MNIST/raw.*VAE_DATA_DIR"):
        load_mnist(root=tmp_path, download=False)


def test_failed_download_is_one_clear_sentence(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr("torchvision.datasets.MNIST.__init__", offline)
    with pytest.raises(DataError, match="could not be downloaded .URLError.") as caught:
        load_mnist(root=tmp_path)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def _copy_raw(tmp_path):
    shutil.copytree(data_root() / "MNIST" / "raw", tmp_path / "MNIST" / "raw")
    return tmp_path / "MNIST" / "raw"


def test_truncated_file_is_reported_as_corrupt(mnist_test, tmp_path):
    raw = _copy_raw(tmp_path)
    path = raw / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_mnist("test", root=tmp_path, device="cpu")


def test_file_with_bad_header_is_rejected(mnist_test, tmp_path):
    raw = _copy_raw(tmp_path)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"not an idx file at all")
    with pytest.raises(DataError, match="bad header"):
        load_mnist("test", root=tmp_path, device="cpu")


def test_unknown_split_and_bad_subset():
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_mnist("validation")
    with pytest.raises(ValueError, match="subset must be a positive"):
        load_mnist(subset=0)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.rand(4, 10), r"shape \(batch, 784\), not \(4, 10\)"),
        (torch.rand(784), r"shape \(batch, 784\), not \(784,\)"),
        (torch.randint(0, 255, (4, 784)), "floating-point pixels"),
        (torch.rand(4, 784) * 255, r"pixel values in \[0, 1\], found"),
        (torch.full((4, 784), float("nan")), "NaN or infinite"),
        (torch.empty(0, 784), "empty"),
        (torch.rand(4, 784, dtype=torch.float64), "must be float32.*not torch.float64"),
    ],
)
def test_check_images_names_the_problem(x, message):
    with pytest.raises((ValueError, TypeError), match=message):
        check_images(x)


def test_check_images_rejects_non_tensors():
    with pytest.raises(TypeError, match="must be a torch.Tensor, not list"):
        check_images([[0.0] * 784])


def test_batch_indices_cover_every_example_once():
    generator = torch.Generator().manual_seed(0)
    drawn = torch.cat(list(batch_indices(10, 3, generator=generator)))
    assert [len(b) for b in batch_indices(10, 3)] == [3, 3, 3, 1]
    assert sorted(drawn.tolist()) == list(range(10))
    assert drawn.tolist() != list(range(10))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        next(batch_indices(10, 0))


def test_a_split_slices_images_and_labels_together(mnist_test):
    part = mnist_test[10:20]
    assert len(part) == 10 and torch.equal(part.labels, mnist_test.labels[10:20])


def test_each_missing_file_is_named(mnist_test, tmp_path):
    raw = _copy_raw(tmp_path)
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte is missing") as caught:
        load_mnist("test", root=tmp_path, download=False)
    assert "t10k-images" not in str(caught.value)
    assert load_mnist("train", root=tmp_path, device="cpu", subset=5, download=False) is not None


def test_compressed_files_are_read_directly(mnist_test, tmp_path):
    import gzip

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        data = (data_root() / "MNIST" / "raw" / name).read_bytes()
        (raw / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel=1))
    loaded = load_mnist("test", root=tmp_path, device="cpu", download=False)
    assert torch.equal(loaded.images, mnist_test.images)
    assert torch.equal(loaded.labels, mnist_test.labels)


def test_a_truncated_compressed_file_is_reported(mnist_test, tmp_path):
    import gzip

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    shutil.copy(data_root() / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", raw)
    data = (data_root() / "MNIST" / "raw" / "t10k-images-idx3-ubyte").read_bytes()[:-784]
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(data, compresslevel=1))
    with pytest.raises(DataError, match="images-idx3-ubyte.gz is corrupt or truncated"):
        load_mnist("test", root=tmp_path, device="cpu", download=False)


def test_a_failed_download_creates_nothing_in_the_named_folder(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr("torchvision.datasets.MNIST.__init__", offline)
    with pytest.raises(DataError, match="train-images-idx3-ubyte, train-labels-idx1-ubyte are"):
        load_mnist(root=tmp_path / "mine")
    assert not (tmp_path / "mine").exists()
    with pytest.raises(DataError):
        load_mnist(root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_oversized_file_is_refused_from_its_header_without_being_read(tmp_path):
    """A 4 GB (sparse) file behind a valid header: refused from its size, never read whole."""
    import tracemalloc

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    shutil.copy(data_root() / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", raw)
    images = raw / "t10k-images-idx3-ubyte"
    with open(images, "wb") as file:
        file.write(bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (10000, 28, 28)))
        file.truncate(4 * 2**30)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="header says .10000, 28, 28.*4294967280 data bytes"):
            load_mnist("test", root=tmp_path, device="cpu", download=False)
        assert tracemalloc.get_traced_memory()[1] < 50 * 2**20
    finally:
        tracemalloc.stop()


def test_unreadable_files_and_folders_name_the_path(mnist_test, tmp_path, monkeypatch):
    import os

    raw = _copy_raw(tmp_path)
    real_stat = os.stat

    def denied(path, *args, **kwargs):
        if str(path).startswith(str(raw)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", denied)
    with pytest.raises(DataError, match=r"Permission denied reading .*t10k-images-idx3-ubyte"):
        load_mnist("test", root=tmp_path, device="cpu", download=False)
    monkeypatch.undo()
    real_open = open

    def no_read(path, *args, **kwargs):
        if str(path).startswith(str(raw)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_read)
    with pytest.raises(DataError, match=r"Permission denied reading .*t10k-images-idx3-ubyte"):
        load_mnist("test", root=tmp_path, device="cpu", download=False)


def test_a_split_needs_one_label_per_image():
    from vae_helpers import MNIST

    with pytest.raises(ValueError, match=r"one label per image, not images \(5, 784\) and labels"):
        MNIST(torch.rand(5, 784), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="MNIST labels must be a torch.Tensor, not list"):
        MNIST(torch.rand(5, 784), [0] * 5)


def test_devices_are_checked_when_loading(tmp_path):
    with pytest.raises(ValueError, match="device 'tpu' is not a device name"):
        load_mnist("test", device="tpu")
