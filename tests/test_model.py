import pytest
import torch

from vae_helpers import VAE, count_parameters


def test_seed_architecture_and_parameter_count():
    model = VAE()
    assert model.config == {"nx": 784, "nh": 512, "nz": 2}
    seed_count = (784 * 512 + 512) + 2 * (512 * 2 + 2) + (2 * 512 + 512) + (512 * 784 + 784)
    assert count_parameters(model) == seed_count == 807_700


def test_forward_shapes_and_probabilities(small_model):
    x = torch.rand(5, 784)
    logits, mu, log_var = small_model(x)
    assert logits.shape == (5, 784) and mu.shape == log_var.shape == (5, 2)
    p = small_model.probabilities(mu)
    assert torch.allclose(p, torch.sigmoid(small_model.decode(mu)))
    assert small_model.sample(3).shape == (3, 784)
    assert small_model.reconstruct(x).shape == (5, 784)


def test_reparameterize_lets_gradients_reach_mu_and_log_var():
    mu = torch.zeros(1000, 2, requires_grad=True)
    log_var = torch.zeros(1000, 2, requires_grad=True)
    z = VAE.reparameterize(mu, log_var)
    z.sum().backward()
    assert torch.all(mu.grad == 1.0)
    assert log_var.grad.abs().sum() > 0
    assert abs(float(z.detach().std()) - 1.0) < 0.1


@pytest.mark.parametrize("sizes", [{"nz": 0}, {"nh": -1}, {"nz": 2.5}])
def test_sizes_must_be_positive_integers(sizes):
    with pytest.raises(ValueError, match="must be a positive integer"):
        VAE(**sizes)


def test_wrong_input_shapes_are_named(small_model):
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 784\), not \(3, 28, 28\)"):
        small_model.encode(torch.rand(3, 28, 28))
    with pytest.raises(ValueError, match=r"z must have shape \(\.\.\., 2\), not \(3, 5\)"):
        small_model.decode(torch.rand(3, 5))
    with pytest.raises(ValueError, match="pixel values"):
        small_model.reconstruct(torch.rand(3, 784) + 1)
