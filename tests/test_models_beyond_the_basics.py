"""The conditional and convolutional VAEs, the beta weight, KL annealing, rate and collapse."""

import pytest
import torch

from vae_helpers import (
    VAE,
    ConditionalVAE,
    ConvVAE,
    LatentExplorer,
    active_units,
    count_parameters,
    fit,
    kl_per_dimension,
    kl_to_standard_normal,
    kl_weight,
    mean_negative_elbo,
    negative_elbo,
    rate_and_distortion,
)


@pytest.fixture(scope="module")
def small_train(mnist_train):
    return mnist_train[:2000]


def test_conditional_vae_shapes_and_one_label_for_a_batch():
    torch.manual_seed(0)
    model = ConditionalVAE(nh=16)
    x, y = torch.rand(5, 784), torch.tensor([0, 1, 2, 3, 9])
    logits, mu, log_var = model(x, y)
    assert logits.shape == (5, 784) and mu.shape == (5, 2)
    z = torch.zeros(4, 2)
    assert torch.equal(model.decode(z, torch.tensor(7)), model.decode(z, torch.full((4,), 7)))
    assert model.sample(3, torch.tensor(5)).shape == (3, 784)


def test_conditional_vae_rejects_bad_labels():
    model = ConditionalVAE(nh=8)
    with pytest.raises(ValueError, match=r"integer labels in 0\.\.9"):
        model.encode(torch.rand(2, 784), torch.tensor([0, 10]))
    with pytest.raises(ValueError, match=r"integer labels in 0\.\.9"):
        model.encode(torch.rand(2, 784), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"y must have shape \(2,\), not \(3,\)"):
        model.encode(torch.rand(2, 784), torch.tensor([0, 1, 2]))


def test_the_label_changes_the_decoded_image():
    torch.manual_seed(0)
    model = ConditionalVAE(nh=16)
    z = torch.zeros(1, 2)
    one, two = model.decode(z, torch.tensor([1])), model.decode(z, torch.tensor([2]))
    assert not torch.allclose(one, two)


def test_conv_vae_keeps_flat_images_and_counts_parameters():
    torch.manual_seed(0)
    model = ConvVAE(nh=64, channels=8)
    logits, mu, _ = model(torch.rand(3, 784))
    assert logits.shape == (3, 784) and mu.shape == (3, 2)
    assert model.decode(torch.zeros(4, 5, 2)).shape == (4, 5, 784)
    expected = (1 * 8 * 16 + 8) + (8 * 16 * 16 + 16) + (784 * 64 + 64) + 2 * (64 * 2 + 2) \
        + (2 * 64 + 64) + (64 * 784 + 784) + (16 * 8 * 16 + 8) + (8 * 1 * 16 + 1)
    assert count_parameters(model) == expected


@pytest.mark.parametrize("model", [ConditionalVAE(nh=32), ConvVAE(nh=32, channels=4)],
                         ids=["conditional", "convolutional"])
def test_fit_trains_every_kind(model, small_train, mnist_test):
    history = fit(model, small_train, mnist_test[:500], epochs=2, progress=False)
    assert history.train_loss[1] < history.train_loss[0]
    assert len(history.test_loss) == 2


def test_beta_weighs_only_the_kl_term():
    x, logits = torch.rand(4, 784, dtype=torch.float64), torch.randn(4, 784, dtype=torch.float64)
    mu, log_var = torch.randn(2, 4, 2, dtype=torch.float64)
    loss = {beta: negative_elbo(x, logits, mu, log_var, beta=beta) for beta in (0.0, 1.0, 2.0)}
    assert torch.allclose(loss[2.0] - loss[1.0], loss[1.0] - loss[0.0])
    assert torch.allclose(loss[1.0] - loss[0.0], kl_to_standard_normal(mu, log_var).sum())


def test_rate_plus_distortion_is_the_negative_elbo(small_train):
    torch.manual_seed(0)
    model = VAE(nh=32)
    torch.manual_seed(1)
    rate, distortion = rate_and_distortion(model, small_train)
    torch.manual_seed(1)
    assert rate + distortion == pytest.approx(mean_negative_elbo(model, small_train), rel=1e-6)
    assert rate >= 0 and distortion > 0


def test_large_beta_collapses_the_posterior(small_train):
    """With a heavy KL weight every latent dimension is switched off (posterior collapse)."""
    outcomes = {}
    for beta in (1.0, 50.0):
        torch.manual_seed(0)
        model = VAE(nh=64, nz=8)
        fit(model, small_train, epochs=3, beta=beta, progress=False)
        outcomes[beta] = (active_units(model, small_train), kl_per_dimension(model, small_train))
    assert outcomes[1.0][0] >= 2
    assert outcomes[50.0][0] == 0 and float(outcomes[50.0][1].max()) < 0.1
    assert outcomes[1.0][1].shape == (8,)


def test_kl_warmup_ramps_the_weight_from_zero():
    assert kl_weight(5, 10, beta=2.0) == 2.0
    ramp = [kl_weight(step, 10, beta=2.0, warmup_epochs=2) for step in (0, 5, 10, 20, 35)]
    assert ramp == [0.0, 0.5, 1.0, 2.0, 2.0]


def test_fit_with_warmup_passes_the_ramp_to_each_step(small_train, monkeypatch):
    import vae_helpers.steps as steps

    seen = []
    original = steps.negative_elbo

    def recording(*args, beta=1.0, **kwargs):
        seen.append(beta)
        return original(*args, beta=beta, **kwargs)

    monkeypatch.setattr(steps, "negative_elbo", recording)
    fit(VAE(nh=8), small_train[:1000], epochs=2, batch_size=250, warmup_epochs=1, beta=4.0,
        progress=False)
    assert seen == [0.0, 1.0, 2.0, 3.0, 4.0, 4.0, 4.0, 4.0]


def test_conditional_explorer_has_a_live_digit_selector(mnist_test):
    torch.manual_seed(0)
    explorer = LatentExplorer(ConditionalVAE(nh=16), mnist_test)
    explorer.live()
    explorer.z1_slider.value = 1.0
    before = explorer.digit_image.value
    explorer.digit_selector.value = 7
    assert explorer.digit_image.value != before
    assert explorer.digit_image.value == explorer.digit_png(1.0, 0.0, 7)
