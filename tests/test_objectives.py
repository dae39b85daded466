"""Objectives beyond the one-sample ELBO: L_k with any prior, free bits, the cyclical schedule,
gradient signal-to-noise ratios, and ``fit(loss=...)`` training with them."""

import math
from functools import partial

import pytest
import torch

from vae_helpers import (
    VAE,
    MixturePrior,
    StandardNormalPrior,
    cyclical_kl_weight,
    fit,
    free_bits_loss,
    gradient_snr,
    iw_bound,
    iwae_loss,
    kl_to_standard_normal,
    log_bernoulli,
    log_normal_diag,
    log_standard_normal,
    log_weights,
    negative_elbo,
)


@pytest.fixture
def model_and_batch():
    torch.manual_seed(0)
    return VAE(nx=20, nh=16, nz=3), torch.rand(8, 20).round()


def test_iwae_loss_is_minus_the_iw_bound_of_the_log_weights_written_out(model_and_batch):
    model, x = model_and_batch
    for k in (1, 7):
        torch.manual_seed(1)
        loss = iwae_loss(model, x, k=k)
        torch.manual_seed(1)
        mu, log_var = model.encode(x)
        z = mu + (0.5 * log_var).exp() * torch.randn(k, *mu.shape)
        log_w = (log_bernoulli(x, model.decode(z)) + log_standard_normal(z)
                 - log_normal_diag(z, mu, log_var))
        expected = -(torch.logsumexp(log_w, 0) - math.log(k)).sum()
        assert torch.allclose(loss, expected, rtol=1e-5)


def test_k1_loss_is_an_unbiased_estimate_of_the_negative_elbo(model_and_batch):
    model, x = model_and_batch
    torch.manual_seed(2)
    with torch.no_grad():
        draws = torch.stack([iwae_loss(model, x[:1]) for _ in range(4000)])
        mu, log_var = model.encode(x[:1])
        z = mu + (0.5 * log_var).exp() * torch.randn(20_000, *mu.shape)
        reconstruction = -log_bernoulli(x[:1], model.decode(z)).mean()
        closed_form = reconstruction + kl_to_standard_normal(mu, log_var).sum()
    error = float(draws.std()) / math.sqrt(len(draws))
    assert abs(float(draws.mean()) - float(closed_form)) < 4 * error + 0.05


def test_bound_rises_with_k_on_average_and_prior_none_is_the_standard_normal(model_and_batch):
    model, x = model_and_batch
    with torch.no_grad():
        means = [float(torch.stack([-iwae_loss(model, x, k=k) for _ in range(200)]).mean())
                 for k in (1, 10, 100)]
        assert means[0] < means[1] < means[2]
        torch.manual_seed(3)
        default = iwae_loss(model, x, k=5)
        torch.manual_seed(3)
        explicit = iwae_loss(model, x, k=5, prior=StandardNormalPrior(3))
        mu, log_var = model.encode(x)
        torch.manual_seed(3)
        evaluated = log_weights(model, x, (), mu, log_var, 5, prior=StandardNormalPrior(3))
        torch.manual_seed(3)
        assert torch.equal(evaluated, log_weights(model, x, (), mu, log_var, 5))
    assert torch.equal(default, explicit)
    # the same draws: the loss is minus the bound of these very weights
    assert torch.allclose(-iw_bound(evaluated).sum(), default, rtol=1e-5)


def test_a_learned_prior_gets_gradients_from_the_loss(model_and_batch):
    model, x = model_and_batch
    prior = MixturePrior(3, components=4)
    iwae_loss(model, x, k=3, prior=prior).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in prior.parameters())


def test_beta_weighs_the_prior_over_posterior_term(model_and_batch):
    model, x = model_and_batch
    torch.manual_seed(5)
    zero = iwae_loss(model, x, beta=0.0)
    torch.manual_seed(5)
    logits, _, _ = model(x)
    assert torch.allclose(zero, -log_bernoulli(x, logits).sum())


def test_free_bits_with_no_floor_is_the_elbo_and_a_high_floor_frees_the_kl(model_and_batch):
    model, x = model_and_batch
    torch.manual_seed(6)
    free = free_bits_loss(model, x, floor=0.0)
    torch.manual_seed(6)
    assert torch.allclose(free, negative_elbo(x, *model(x)))
    model.zero_grad()
    torch.manual_seed(7)
    free_bits_loss(model, x, floor=100.0).backward()
    with_floor = model.encoder_mu.weight.grad.clone()
    model.zero_grad()
    torch.manual_seed(7)
    logits, mu, log_var = model(x)
    (-log_bernoulli(x, logits).sum()).backward()
    assert torch.allclose(with_floor, model.encoder_mu.weight.grad)
    with pytest.raises(ValueError, match="floor"):
        free_bits_loss(model, x, floor=-1.0)


def test_cyclical_weight_ramps_then_holds_in_each_cycle():
    weights = [cyclical_kl_weight(step, 10, beta=2.0, ramp=0.5) for step in range(20)]
    assert weights[:6] == [0.0, 0.4, 0.8, 1.2, 1.6, 2.0] and weights[6:10] == [2.0] * 4
    assert weights[10:] == weights[:10]
    with pytest.raises(ValueError, match="steps_per_cycle"):
        cyclical_kl_weight(0, 0)
    with pytest.raises(ValueError, match="ramp"):
        cyclical_kl_weight(0, 10, ramp=0.0)


def test_gradient_snr_is_mean_over_std_per_parameter(model_and_batch):
    model, x = model_and_batch
    torch.manual_seed(8)
    ratio = gradient_snr(model, x, k=2, repeats=5)
    torch.manual_seed(8)
    draws = {"encoder": [], "decoder": []}
    for _ in range(5):
        model.zero_grad()
        (iwae_loss(model, x, k=2) / len(x)).backward()
        for part in draws:
            draws[part].append(torch.cat([p.grad.flatten() for name, p in
                                          model.named_parameters() if name.startswith(part)]))
    for part, values in draws.items():
        values = torch.stack(values)
        own = values.mean(0).abs() / values.std(0)
        assert ratio[part] == pytest.approx(float(own[torch.isfinite(own)].mean()), rel=1e-5)
    with pytest.raises(ValueError, match="repeats"):
        gradient_snr(model, x, k=2, repeats=1)


def test_fit_with_a_loss_trains_the_same_as_without_when_the_loss_is_the_elbo(mnist_train):
    data = mnist_train[:512]

    def elbo(model, x, label, beta):
        logits, mu, log_var = model(x, *label)
        return negative_elbo(x, logits, mu, log_var, beta=beta)

    histories = []
    for loss in (None, elbo):
        torch.manual_seed(0)
        histories.append(fit(VAE(nh=16), data, epochs=1, progress=False, loss=loss).step_loss)
    assert histories[0] == pytest.approx(histories[1], rel=1e-6)


def test_fit_takes_a_schedule_of_the_global_step_and_a_prior_through_the_loss(mnist_train):
    data = mnist_train[:256]
    seen = []

    def recording(model, x, label, beta):
        seen.append(beta)
        return iwae_loss(model, x, label, beta, k=2)

    torch.manual_seed(0)
    fit(VAE(nh=16), data, epochs=2, progress=False, loss=recording, beta=lambda s: s / 10)
    assert seen == pytest.approx([0.0, 0.1, 0.2, 0.3])
    prior = MixturePrior(2, 3)
    model = VAE(nh=16)
    before = prior.means.detach().clone()
    adam = torch.optim.Adam([*model.parameters(), *prior.parameters()])
    fit(model, data, epochs=1, progress=False, optimizer=adam,
        loss=partial(iwae_loss, k=3, prior=prior))
    assert not torch.equal(before, prior.means)
    with pytest.raises(ValueError, match="cuda_graph"):
        fit(VAE(nh=16), data, epochs=1, progress=False, loss=recording, cuda_graph=True)
