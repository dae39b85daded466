import pytest
import torch

from vae_helpers import MNIST, VAE, TrainingDiverged, fit, load_or_train

SEED_LOSSES = [186.35, 165.49, 161.61, 159.34, 157.57]


def test_reproduces_the_seed_table(mnist_train):
    torch.manual_seed(2)
    model = VAE()
    history = fit(model, mnist_train, epochs=5, progress=False)
    for ours, seed in zip(history.train_loss, SEED_LOSSES):
        assert abs(ours - seed) <= 2.5, (history.train_loss, SEED_LOSSES)


def test_history_has_one_entry_per_epoch_and_loss_falls(mnist_train, mnist_test, small_model):
    train = MNIST(mnist_train.images[:2000], mnist_train.labels[:2000])
    test = MNIST(mnist_test.images[:500], mnist_test.labels[:500])
    history = fit(small_model, train, test, epochs=3, progress=False)
    assert len(history.train_loss) == len(history.test_loss) == len(history.seconds) == 3
    assert history.train_loss[-1] < history.train_loss[0]


def test_same_seed_same_history(mnist_train):
    train = MNIST(mnist_train.images[:1000], mnist_train.labels[:1000])
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        runs.append(fit(VAE(nh=16), train, epochs=2, seed=5, progress=False).train_loss)
    assert runs[0] == runs[1]


def test_divergence_stops_and_names_the_step(small_model):
    images = torch.rand(300, 784)
    before = {k: v.clone() for k, v in small_model.state_dict().items()}
    with torch.no_grad():
        small_model.decoder_logits.bias.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=r"became nan at step 1 \(epoch 1, batch 1\)"):
        fit(small_model, MNIST(images, torch.zeros(300, dtype=torch.long)), epochs=2,
            progress=False)
    # Adam's NaN step was undone: the weights are those from before the first epoch.
    assert torch.equal(small_model.encoder_hidden.weight, before["encoder_hidden.weight"])


def test_fit_rejects_bad_data_and_settings(small_model):
    labels = torch.zeros(10, dtype=torch.long)
    with pytest.raises(ValueError, match=r"train.images must hold pixel values in \[0, 1\]"):
        fit(small_model, MNIST(torch.rand(10, 784) * 255, labels), epochs=1, progress=False)
    with pytest.raises(ValueError, match="train.images is empty"):
        fit(small_model, MNIST(torch.empty(0, 784), labels[:0]), epochs=1, progress=False)
    with pytest.raises(ValueError, match="epochs must be zero or more"):
        fit(small_model, MNIST(torch.rand(10, 784), labels), epochs=-1, progress=False)


def test_load_or_train_trains_once_then_loads(tmp_path, mnist_train):
    train = MNIST(mnist_train.images[:500], mnist_train.labels[:500])
    path = tmp_path / "model.pt"
    first, history = load_or_train(path, train, epochs=1, nh=16)
    assert path.is_file() and len(history.train_loss) == 1
    second, again = load_or_train(path, train, epochs=1, nh=16)
    assert again.train_loss == history.train_loss
    assert torch.equal(first.decoder_logits.weight, second.decoder_logits.weight)
