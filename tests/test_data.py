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
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        next(batch_indices(10, 0))


def test_a_split_slices_images_and_labels_together(mnist_test):
    part = mnist_test[10:20]
    assert len(part) == 10 and torch.equal(part.labels, mnist_test.labels[10:20])
