import pytest
import torch

from vae_helpers import (
    MNIST,
    VAE,
    active_units,
    available_devices,
    best_device,
    encode_means,
    fit,
    grid_log_likelihood,
    iw_bound,
    iw_log_likelihood,
    latent_grid,
    mean_negative_elbo,
    plot_interpolation,
    plot_latent_map,
    plot_manifold,
    resolve_device,
)


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
    with pytest.raises(ValueError, match="k must be a positive integer"):
        iw_log_likelihood(trained, MNIST(torch.rand(2, 784), torch.zeros(2)), 0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        mean_negative_elbo(trained, MNIST(torch.full((2, 784), float("inf")), torch.zeros(2)))


@pytest.mark.parametrize("call, words", [
    (lambda m, d: mean_negative_elbo(m, d, batch_size=0), "batch_size must be a positive"),
    (lambda m, d: mean_negative_elbo(m, d, batch_size=2.5), "batch_size must be a positive"),
    (lambda m, d: iw_log_likelihood(m, d, k=0), "k must be a positive integer, not 0"),
    (lambda m, d: iw_log_likelihood(m, d, k=2.5), "k must be a positive integer, not 2.5"),
    (lambda m, d: iw_log_likelihood(m, d, k=5, max_samples=0), "max_samples must be"),
    (lambda m, d: grid_log_likelihood(m, d, steps=50, limit=0.0), "limit must be a positive"),
    (lambda m, d: grid_log_likelihood(m, d, steps=50, limit=-3.0), "limit must be a positive"),
    (lambda m, d: grid_log_likelihood(m, d, steps=50, limit=float("nan")), "limit must be"),
    (lambda m, d: grid_log_likelihood(m, d, steps=7.5, limit=3.0), "steps must be an integer"),
    (lambda m, d: grid_log_likelihood(m, d, steps=10**6, limit=3.0), r"from 2 to 2001"),
    (lambda m, d: active_units(m, d, threshold=float("nan")), "threshold must be a positive"),
    (lambda m, d: mean_negative_elbo(m, MNIST(d.images[:0], d.labels[:0])), "images is empty"),
    (lambda m, d: mean_negative_elbo(m, MNIST(d.images.double(), d.labels)),
     "images must be float32"),
])
def test_evaluation_names_each_bad_argument(trained, mnist_test, call, words):
    with pytest.raises((ValueError, TypeError), match=words):
        call(trained, mnist_test[:50])


@pytest.mark.parametrize("call, words", [
    (lambda m, d: latent_grid(steps=1), "steps must be an integer from 2 to 200, not 1"),
    (lambda m, d: latent_grid(steps=4.0), "steps must be an integer"),
    (lambda m, d: latent_grid(limit=0), "limit must be a positive"),
    (lambda m, d: plot_manifold(m, steps=10**4), "steps must be an integer from 2 to 200"),
    (lambda m, d: encode_means(m, d, n=0), "n must be a positive integer, not 0"),
    (lambda m, d: plot_latent_map(m, d, n=-5), "n must be a positive integer"),
    (lambda m, d: plot_interpolation(m, d.images[0], d.images[1], steps=1), "steps must be"),
    (lambda m, d: plot_interpolation(m, d.images[0] * 3, d.images[1]), "x_start must hold"),
])
def test_plots_name_each_bad_argument(trained, mnist_test, call, words):
    with pytest.raises((ValueError, TypeError), match=words):
        call(trained, mnist_test[:50])


def test_iw_bound_needs_at_least_one_sample():
    with pytest.raises(ValueError, match="empty: L_k needs at least one sample"):
        iw_bound(torch.empty(0, 3))
    with pytest.raises(ValueError, match=r"shape \(k, ...\)"):
        iw_bound(torch.tensor(1.0))


def test_devices_are_resolved_against_this_machine():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None) == best_device()
    assert available_devices()[0] == "cpu"
    count = torch.cuda.device_count()
    with pytest.raises(ValueError, match=f"is not available: this machine has "
                                         f"{'no GPU' if count == 0 else count}"):
        resolve_device(f"cuda:{count}")
    for name in ("tpu", "", "CPU"):
        with pytest.raises(ValueError, match="is not a device name"):
            resolve_device(name)


def test_importing_the_package_loads_no_plotting_or_widgets():
    """``import vae_helpers`` and the model/training names need torch only; matplotlib,
    ipywidgets and torchvision are imported by the first plot, widget or download."""
    import subprocess
    import sys

    probe = ("import sys\nfrom vae_helpers import VAE, fit, load_mnist\n"
             "print(sorted(m for m in ('matplotlib', 'ipywidgets', 'torchvision')"
             " if m in sys.modules))\n"
             "from vae_helpers import plot_history\nprint('matplotlib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.splitlines() == ["[]", "True"], result.stderr
