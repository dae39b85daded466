import pytest
import torch

from vae_helpers import MNIST, VAE, fit, iw_log_likelihood, mean_negative_elbo


@pytest.fixture(scope="module")
def trained(mnist_train):
    torch.manual_seed(0)
    model = VAE(nh=64)
    fit(model, MNIST(mnist_train.images[:3000], mnist_train.labels[:3000]), epochs=2,
        progress=False)
    return model


def test_iw_bound_rises_with_k_and_k1_matches_the_elbo(trained, mnist_test):
    images = mnist_test[:1000]
    torch.manual_seed(0)
    bounds = {k: iw_log_likelihood(trained, images, k) for k in (1, 10, 100)}
    assert bounds[1] < bounds[10] < bounds[100]
    elbo = -mean_negative_elbo(trained, images)
    assert abs(bounds[1] - elbo) < 2.0  # two one-sample estimates of the same ELBO


def test_evaluation_rejects_bad_input(trained):
    with pytest.raises(ValueError, match="k must be at least 1"):
        iw_log_likelihood(trained, MNIST(torch.rand(2, 784), torch.zeros(2)), 0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        mean_negative_elbo(trained, MNIST(torch.full((2, 784), float("inf")), torch.zeros(2)))
