"""Pixel likelihoods against torch.distributions, binarized data, models that carry them."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, ContinuousBernoulli, Normal

from vae_helpers import (
    MNIST,
    VAE,
    ConditionalVAE,
    ConvVAE,
    draw_pixels,
    fit,
    grid_log_likelihood,
    iw_log_likelihood,
    load_checkpoint,
    mean_negative_elbo,
    save_checkpoint,
)
from vae_helpers.likelihoods import (
    BernoulliPixels,
    ContinuousBernoulliPixels,
    GaussianPixels,
    make_likelihood,
)

LOGITS = torch.tensor([[-60.0, -8.0, -1.0, -1e-4, 0.0, 3e-4, 0.7, 5.0, 60.0]], dtype=torch.float64)


def test_bernoulli_pixels_are_torchs_bernoulli_and_the_tutorials_cross_entropy():
    binary = torch.tensor([[0.0, 1, 0, 1, 1, 0, 1, 0, 1]], dtype=torch.float64)
    expected = Bernoulli(logits=LOGITS).log_prob(binary).sum(-1)
    assert torch.allclose(BernoulliPixels().log_prob(binary, LOGITS), expected)
    gray = torch.linspace(0, 1, 9, dtype=torch.float64).unsqueeze(0)
    cross_entropy = F.binary_cross_entropy_with_logits(LOGITS, gray, reduction="none").sum(-1)
    assert torch.allclose(BernoulliPixels().log_prob(gray, LOGITS), -cross_entropy)


def test_continuous_bernoulli_matches_torch_everywhere_including_near_one_half():
    x = torch.linspace(0, 1, 7, dtype=torch.float64).unsqueeze(0)
    moderate = LOGITS[:, 1:-1]  # torch clamps the probability at +-60, we need not
    expected = ContinuousBernoulli(logits=moderate).log_prob(x).sum(-1)
    ours = ContinuousBernoulliPixels().log_prob(x, moderate)
    assert torch.allclose(ours, expected, atol=1e-6)
    extreme = ContinuousBernoulliPixels.log_normalizer(torch.tensor([-60.0, 60.0]))
    assert torch.allclose(extreme, torch.full((2,), math.log(60.0)))  # C = |a| for large |a|
    a = torch.tensor([0.5, -2.0, 9.0], dtype=torch.float64)
    closed_form = torch.log(a / torch.tanh(a / 2))
    assert torch.allclose(ContinuousBernoulliPixels.log_normalizer(a), closed_form)
    assert ContinuousBernoulliPixels.log_normalizer(torch.zeros(1)).item() == pytest.approx(
        math.log(2))


def test_continuous_bernoulli_density_integrates_to_one_and_bernoulli_does_not():
    x = torch.linspace(0, 1, 20_001, dtype=torch.float64).unsqueeze(1)
    for logit in (-4.0, -0.3, 0.0, 2.5):
        a = torch.full_like(x, logit)
        density = ContinuousBernoulliPixels().log_prob(x, a).exp()
        assert torch.trapezoid(density, x[:, 0]).item() == pytest.approx(1.0, abs=1e-6)
        unnormalized = BernoulliPixels().log_prob(x, a).exp()
        assert torch.trapezoid(unnormalized, x[:, 0]).item() < 0.99


def test_continuous_bernoulli_mean_and_samples():
    logits = torch.tensor([[-3.0, 0.0, 2.0]])
    likelihood = ContinuousBernoulliPixels()
    assert torch.allclose(likelihood.mean(logits), ContinuousBernoulli(logits=logits).mean)
    generator = torch.Generator().manual_seed(0)
    draws = likelihood.sample(logits.expand(100_000, -1), generator=generator)
    assert bool(((draws >= 0) & (draws <= 1)).all())
    assert torch.allclose(draws.mean(0), likelihood.mean(logits)[0], atol=0.01)


def test_gaussian_pixels_fixed_and_learned_sigma():
    x, logits = torch.rand(4, 9), torch.randn(4, 9)
    fixed = GaussianPixels(0.2)
    expected = Normal(torch.sigmoid(logits), 0.2).log_prob(x).sum(-1)
    assert torch.allclose(fixed.log_prob(x, logits), expected, atol=1e-5)
    assert not list(fixed.parameters()) and fixed.sigma == pytest.approx(0.2)
    learned = GaussianPixels(None)
    assert [name for name, _ in learned.named_parameters()] == ["log_sigma"]
    with pytest.raises(ValueError, match="sigma must be a positive number, None"):
        GaussianPixels(-1.0)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        make_likelihood("poisson")


@pytest.mark.parametrize("cls", [VAE, ConditionalVAE, ConvVAE])
def test_models_carry_their_likelihood_through_checkpoints(tmp_path, cls):
    model = cls(nh=16, likelihood="gaussian", sigma=None)
    with torch.no_grad():
        model.likelihood.log_sigma.fill_(-1.5)
    assert model.config["likelihood"] == "gaussian" and model.config["sigma"] is None
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "m.pt", model))
    assert loaded.config == model.config
    assert loaded.likelihood.log_sigma.item() == pytest.approx(-1.5)
    assert "likelihood" not in cls(nh=16).config  # the default keeps old checkpoints valid


def test_drawn_splits_are_seeded_binary_or_dequantized_and_keep_the_gray_level(mnist_test):
    part = mnist_test[:2000]
    once, again = part.drawn("binarized", seed=3), part.drawn("binarized", seed=3)
    assert torch.equal(once.images, again.images) and torch.equal(once.labels, part.labels)
    assert set(once.images.unique().tolist()) == {0.0, 1.0}
    assert once.images.mean().item() == pytest.approx(part.images.mean().item(), abs=0.002)
    assert not torch.equal(once.images, part.drawn("binarized", seed=4).images)
    spread = part.drawn("dequantized").images
    levels = torch.round(part.images * 255)
    assert bool(((spread * 256 >= levels) & (spread * 256 < levels + 1)).all())  # within its bin
    assert 0 < spread.min() and spread.max() < 1
    assert torch.equal(draw_pixels(part.images, "gray"), part.images)
    with pytest.raises(ValueError, match="pixels must be one of"):
        draw_pixels(part.images, "halftone")


@pytest.mark.parametrize("pixels", ["binarized", "dequantized"])
def test_fit_draws_each_batch_afresh(mnist_train, monkeypatch, pixels):
    seen = []
    likelihood = BernoulliPixels()
    original = likelihood.log_prob
    monkeypatch.setattr(likelihood, "log_prob",
                        lambda x, logits: seen.append(x.detach().clone()) or original(x, logits))
    torch.manual_seed(0)
    model = VAE(nh=16)
    model.likelihood = likelihood
    fit(model, mnist_train[:256], epochs=2, pixels=pixels, progress=False, batch_size=256)
    assert len(seen) == 2 and not torch.equal(seen[0].sort(0).values, seen[1].sort(0).values)
    if pixels == "binarized":
        assert all(set(x.unique().tolist()) <= {0.0, 1.0} for x in seen)
    else:
        assert all(0 < float(x.min()) and float(x.max()) < 1 for x in seen)
    with pytest.raises(ValueError, match="pixels must be one of"):
        fit(model, mnist_train[:256], epochs=1, pixels="halftone", progress=False)


def test_each_likelihood_trains_and_evaluates(mnist_train):
    train = mnist_train[:1024]
    for name, sigma in (("continuous_bernoulli", 0.1), ("gaussian", 0.1), ("gaussian", None)):
        torch.manual_seed(0)
        model = VAE(nh=32, likelihood=name, sigma=sigma)
        history = fit(model, train, epochs=3, progress=False)
        assert history.train_loss[-1] < history.train_loss[0], (name, sigma)
        assert math.isfinite(mean_negative_elbo(model, train[:200]))
    assert model.likelihood.sigma != pytest.approx(0.1)  # the learned sigma moved


def test_iw_bound_with_a_given_posterior(mnist_test):
    torch.manual_seed(0)
    model, data = VAE(nh=16), mnist_test[:50]
    mu, log_var = model.encode(data.images)
    torch.manual_seed(1)
    default = iw_log_likelihood(model, data, k=20)
    torch.manual_seed(1)
    given = iw_log_likelihood(model, data, k=20, posterior=(mu.detach(), log_var.detach()))
    assert given == pytest.approx(default, rel=1e-6)
    with pytest.raises(ValueError, match="posterior must be"):
        iw_log_likelihood(model, data, k=5, posterior=(mu[:3], log_var[:3]))


def test_pixel_draws_differ_from_pixel_means():
    torch.manual_seed(0)
    model = VAE(nh=16)
    generator = torch.Generator().manual_seed(0)
    draws = model.sample(5, generator=generator, pixels="draw")
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="pixels must be 'mean' or 'draw'"):
        model.sample(5, pixels="best")


def test_mnist_split_indexing_keeps_type():
    split = MNIST(torch.rand(4, 784), torch.arange(4))
    assert isinstance(split.drawn("binarized"), MNIST)


@pytest.mark.parametrize("name, sigma", [("bernoulli", 0.1), ("continuous_bernoulli", 0.1),
                                         ("gaussian", 0.3)])
def test_pairwise_log_likelihood_matches_the_per_example_one(name, sigma):
    likelihood = make_likelihood(name, sigma)
    x, logits = torch.rand(5, 784, dtype=torch.float64), torch.randn(7, 784, dtype=torch.float64)
    pairs = likelihood.log_prob_pairs(x, logits)
    direct = likelihood.log_prob(x[:, None, :].expand(5, 7, 784), logits.expand(5, 7, 784))
    assert pairs.shape == (5, 7) and torch.allclose(pairs, direct)


def test_grid_integral_agrees_with_the_importance_weighted_bound(mnist_test):
    torch.manual_seed(0)
    model = VAE(nh=32)
    fit(model, mnist_test[:2000], epochs=2, progress=False, pixels="binarized")
    data = mnist_test[2000:2050].drawn("binarized")
    exact = grid_log_likelihood(model, data)  # grid sized from the encoder's q(z|x)
    torch.manual_seed(1)
    bounds = [iw_log_likelihood(model, data, k=k) for k in (10, 300, 5000)]
    assert bounds[0] < bounds[1] < bounds[2] <= exact.mean().item() + 0.02  # L_k rises to it
    with torch.no_grad():
        mu, log_var = model.encode(data.images)
    wider = float((mu.abs() + 9 * (0.5 * log_var).exp()).max())
    finer = grid_log_likelihood(model, data, steps=1201, limit=wider)
    assert torch.allclose(exact, finer, atol=0.02)  # converged, to float32 rounding
    with pytest.raises(ValueError, match="nz=2"):
        grid_log_likelihood(VAE(nh=8, nz=3), data)


def test_calibrated_sigma_uses_each_batch_optimum_and_keeps_a_running_average(mnist_train):
    likelihood = GaussianPixels("calibrated")
    assert not list(likelihood.parameters())
    x, logits = torch.rand(64, 784), torch.randn(64, 784)
    optimum = (x - torch.sigmoid(logits)).pow(2).mean().sqrt()
    by_optimum = Normal(torch.sigmoid(logits), optimum).log_prob(x).sum(-1)
    assert torch.allclose(likelihood.log_prob(x, logits), by_optimum, atol=1e-3)  # training
    likelihood.eval()
    stored = Normal(torch.sigmoid(logits), likelihood.sigma).log_prob(x).sum(-1)
    assert torch.allclose(likelihood.log_prob(x, logits), stored, atol=1e-3)  # evaluation
    torch.manual_seed(0)
    model = VAE(nh=32, likelihood="gaussian", sigma="calibrated")
    images = mnist_train[:3000].drawn("dequantized")
    fit(model, images, epochs=3, batch_size=32, progress=False)
    with torch.no_grad():
        logits, _, _ = model(images.images)
        mse = (images.images - torch.sigmoid(logits)).pow(2).mean().item()
    assert model.likelihood.sigma ** 2 == pytest.approx(mse, rel=0.1)
    assert model.config["sigma"] == "calibrated"


@pytest.mark.parametrize("name, sigma", [("bernoulli", 0.1), ("continuous_bernoulli", 0.1),
                                         ("gaussian", 0.1), ("gaussian", "calibrated")])
def test_every_likelihood_gives_pixel_means_and_draws(name, sigma):
    torch.manual_seed(0)
    model = VAE(nh=16, likelihood=name, sigma=sigma)
    means = model.sample(6)
    assert means.shape == (6, 784) and bool(((means >= 0) & (means <= 1)).all())
    assert model.sample(6, pixels="draw").shape == (6, 784)
    assert torch.allclose(model.probabilities(torch.zeros(1, 2)),
                          model.likelihood.mean(model.decode(torch.zeros(1, 2))))
