import pytest
import torch

from vae_helpers import VAE, DeepVAE, count_parameters, fit


def test_depth_one_is_the_tutorial_mlp():
    torch.manual_seed(0)
    deep = DeepVAE(nh=32, depth=1)
    plain = VAE(nh=32)
    plain.load_state_dict({name.replace(".0.", "."): value
                           for name, value in deep.state_dict().items()})
    x = torch.rand(5, 784)
    torch.manual_seed(1)
    deep_outputs = deep(x)
    torch.manual_seed(1)
    plain_outputs = plain(x)
    assert all(torch.equal(a, b) for a, b in zip(deep_outputs, plain_outputs))


def test_layers_shapes_and_parameter_count():
    h, depth = 48, 3
    model = DeepVAE(nh=h, depth=depth)
    assert model.config == {"nx": 784, "nh": h, "nz": 2, "depth": depth}
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linear) == 2 * depth + 3  # hidden layers, two heads, the output layer
    assert count_parameters(model) == 4 * h * h + 1580 * h + 788
    logits, mu, log_var = model(torch.rand(3, 784))
    assert logits.shape == (3, 784) and mu.shape == log_var.shape == (3, 2)
    assert model.decode(torch.zeros(4, 5, 2)).shape == (4, 5, 784)


@pytest.mark.parametrize("sizes", [{"depth": 0}, {"nh": -1}, {"depth": 1.5}])
def test_sizes_must_be_positive_integers(sizes):
    with pytest.raises(ValueError, match="must be a positive integer"):
        DeepVAE(**sizes)


def test_fit_trains_it(mnist_train, mnist_test):
    torch.manual_seed(0)
    history = fit(DeepVAE(nh=32), mnist_train[:2000], mnist_test[:500], epochs=2, progress=False)
    assert history.train_loss[1] < history.train_loss[0]
    assert len(history.test_loss) == 2
