"""The two-layer VAEs of chapter 16: the ELBO against a hand computation on a tiny model (by
quadrature over both codes), the ladder's precision-weighted posterior, the per-layer KL terms
against torch.distributions, and the losses fit trains with."""

import math
from functools import partial

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from vae_helpers import ImageSet, fit, iw_bound
from vae_helpers.hierarchical import (
    LadderVAE,
    TwoLayerVAE,
    hierarchical_log_likelihood,
    hierarchical_loss,
    kl_normal_diag,
    layer_active_units,
    layer_kl_terms,
)

KINDS = [TwoLayerVAE, LadderVAE]


def _tiny(kind, seed=0):
    torch.manual_seed(seed)
    model = kind(nx=4, nh1=5, nz1=1, nh2=3, nz2=1).double()
    with torch.no_grad():  # larger weights than the default, so the posterior is not trivial
        for p in model.parameters():
            p.mul_(2.0)
    return model


def _normal(mu_log_var):
    mu, log_var = mu_log_var
    return Normal(mu, torch.exp(0.5 * log_var))


def _hand_terms(model, x, z1, z2):
    """log p(x, z1, z2) and log q(z1, z2 | x) at every pair of codes (z1, z2), written with
    torch.distributions from the model's networks: what the model's formulas must give."""
    log_prior = Normal(0.0, 1.0).log_prob(z2).sum(-1) + _normal(
        model.decoder_z1(z2)).log_prob(z1).sum(-1)
    log_px = Bernoulli(logits=model.decoder_x(z1)).log_prob(x).sum(-1)
    if isinstance(model, TwoLayerVAE):
        q1 = _normal(model.encoder_z1(x))
        log_q = q1.log_prob(z1).sum(-1) + _normal(model.encoder_z2(z1)).log_prob(z2).sum(-1)
    else:
        h = model.encoder_up1(x)
        vote = _normal(model.encoder_vote1(h))
        prior = _normal(model.decoder_z1(z2))
        # the product of two Gaussians, renormalized: precision-weighted mean and variance
        precision = vote.scale.pow(-2) + prior.scale.pow(-2)
        mean = (vote.loc * vote.scale.pow(-2) + prior.loc * prior.scale.pow(-2)) / precision
        log_q = (Normal(mean, precision.rsqrt()).log_prob(z1).sum(-1)
                 + _normal(model.encoder_vote2(model.encoder_up2(h))).log_prob(z2).sum(-1))
    return log_px + log_prior, log_q


@pytest.mark.parametrize("kind", KINDS)
def test_the_elbo_and_log_px_match_a_quadrature_over_both_codes(kind):
    """A tiny model with one number per layer: the ELBO is a double integral over (z1, z2),
    computed on a fine grid, and so is log p(x). The model's one-draw ELBO (the loss fit
    trains with) must average to the first, and L_k must approach the second from below."""
    model = _tiny(kind)
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    grid = torch.linspace(-9, 9, 1201, dtype=torch.float64)
    step = float(grid[1] - grid[0])
    z1, z2 = torch.meshgrid(grid, grid, indexing="ij")
    with torch.no_grad():
        log_joint, log_q = _hand_terms(model, x, z1.reshape(-1, 1), z2.reshape(-1, 1))
        q = log_q.exp() * step**2
        assert abs(float(q.sum()) - 1) < 1e-6  # q is a normalized density on the grid
        elbo = float((q * (log_joint - log_q)).sum())
        log_px = float(torch.logsumexp(log_joint, 0)) + 2 * math.log(step)
        torch.manual_seed(1)
        n = 40_000
        draws = -torch.stack([hierarchical_loss(model, x.expand(n, -1).clone())])  # summed
        mc_elbo = float(draws) / n
        terms = torch.cat([-hierarchical_loss(model, x, k=1).reshape(1) for _ in range(2000)])
        standard_error = float(terms.std()) / math.sqrt(n)
        l_1000 = sum(float(iw_bound(model.log_weights(x, 1000))) for _ in range(20)) / 20
    assert elbo < log_px
    assert abs(mc_elbo - elbo) < 4 * standard_error + 1e-3, (mc_elbo, elbo, standard_error)
    assert elbo < l_1000 < log_px + 0.01, (elbo, l_1000, log_px)
    assert log_px - l_1000 < 0.2 * (log_px - elbo)


@pytest.mark.parametrize("kind", KINDS)
def test_log_weights_are_the_hand_computed_log_ratio_at_the_same_draws(kind):
    model = _tiny(kind)
    x = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    torch.manual_seed(3)
    draws = model.draw(x, 7)
    torch.manual_seed(3)
    log_w = model.log_weights(x, 7)
    with torch.no_grad():
        log_joint, log_q = _hand_terms(model, x, draws.z1, draws.z2)
    assert log_w.shape == (7, 2)
    torch.testing.assert_close(log_w, log_joint - log_q)


@pytest.mark.parametrize("kind", KINDS)
def test_the_layer_kl_terms_are_torch_distributions_kls(kind):
    model = _tiny(kind)
    x = torch.tensor([[1.0, 1.0, 0.0, 1.0]] * 3, dtype=torch.float64)
    torch.manual_seed(5)
    d = model.draw(x, 1)
    kl = model.layer_kl(d)
    if kind is LadderVAE:
        first = kl_divergence(_normal((d.q1[0][0], d.q1[1][0])),
                              _normal((d.p1[0][0], d.p1[1][0]))).sum(-1)
        second = kl_divergence(_normal(d.q2), Normal(0.0, 1.0)).sum(-1)
    else:  # layer 1: log q(z1 | x) - log p(z1 | z2) at the drawn codes
        first = (_normal(d.q1).log_prob(d.z1[0]).sum(-1)
                 - _normal((d.p1[0][0], d.p1[1][0])).log_prob(d.z1[0]).sum(-1))
        second = kl_divergence(_normal((d.q2[0][0], d.q2[1][0])), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(kl, torch.stack([first, second], -1))
    if kind is LadderVAE:
        assert bool((kl >= 0).all())


def test_kl_normal_diag_is_the_gaussian_kl():
    torch.manual_seed(0)
    mu_q, log_var_q, mu_p, log_var_p = torch.randn(4, 6, 3, dtype=torch.float64)
    expected = kl_divergence(_normal((mu_q, log_var_q)), _normal((mu_p, log_var_p))).sum(-1)
    torch.testing.assert_close(kl_normal_diag(mu_q, log_var_q, mu_p, log_var_p), expected)
    assert torch.allclose(kl_normal_diag(mu_q, log_var_q, mu_q, log_var_q),
                          torch.zeros(6, dtype=torch.float64))


def test_the_ladder_posterior_is_the_product_of_its_vote_and_the_prior():
    """log q(z1 | z2, x) - log vote(z1) - log p(z1 | z2) does not depend on z1."""
    model = _tiny(LadderVAE)
    x = torch.tensor([[0.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    torch.manual_seed(0)
    d = model.draw(x, 1)
    vote = _normal(model.encoder_vote1(model.encoder_up1(x)))
    z1 = torch.linspace(-3, 3, 13, dtype=torch.float64).reshape(-1, 1, 1)
    difference = (_normal((d.q1[0][0], d.q1[1][0])).log_prob(z1)
                  - vote.log_prob(z1) - _normal((d.p1[0][0], d.p1[1][0])).log_prob(z1))
    assert float((difference.max() - difference.min()).detach()) < 1e-10
    with torch.no_grad():  # the product is narrower than either factor
        assert bool((d.q1[1].exp() < torch.minimum(vote.scale**2, d.p1[1].exp())).all())


@pytest.mark.parametrize("kind", KINDS)
def test_the_losses_fit_trains_with(kind):
    model = _tiny(kind)
    x = torch.bernoulli(torch.full((6, 4), 0.5, dtype=torch.float64),
                        generator=torch.Generator().manual_seed(0))
    torch.manual_seed(2)
    logits, kl = model(x)
    torch.manual_seed(2)
    assert torch.allclose(hierarchical_loss(model, x, beta=0.5),
                          (-model.log_likelihood(x, logits) + 0.5 * kl.sum(-1)).sum())
    torch.manual_seed(4)
    log_px, log_ratio = model.log_weight_terms(x, 5)
    torch.manual_seed(4)
    assert torch.allclose(hierarchical_loss(model, x, beta=0.3, k=5),
                          -iw_bound(log_px + 0.3 * log_ratio).sum())
    with pytest.raises(ValueError, match="k must be a positive integer"):
        hierarchical_loss(model, x, k=0)


@pytest.mark.parametrize("kind", KINDS)
def test_fit_trains_it_and_the_measures_have_one_entry_per_layer(kind):
    torch.manual_seed(0)
    prototypes = (torch.rand(4, 784) < 0.3).float()  # four patterns to learn, and some noise
    images = (0.9 * prototypes + 0.05).repeat(16, 1)
    data = ImageSet(images, torch.zeros(64, dtype=torch.int64))
    model = kind(nh1=32, nz1=8, nh2=16, nz2=4)
    history = fit(model, data, epochs=3, batch_size=16, lr=1e-2, progress=False,
                  pixels="binarized", loss=partial(hierarchical_loss, k=2))
    assert len(history.train_loss) == 3 and history.train_loss[-1] < history.train_loss[0] - 50
    test = data[:50].drawn("binarized")
    torch.manual_seed(0)
    l_1, l_20 = (hierarchical_log_likelihood(model, test, k) for k in (1, 20))
    assert l_1 < l_20 < 0
    assert layer_kl_terms(model, test).shape == (2,)
    units = layer_active_units(model, test, draws=3)
    assert len(units) == 2 and 0 <= units[0] <= 8 and 0 <= units[1] <= 4
    samples = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 784) and bool(((samples >= 0) & (samples <= 1)).all())


def test_shapes_are_checked():
    model = TwoLayerVAE(nh1=8, nz1=3, nh2=4, nz2=2)
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.zeros(2, 10))
    with pytest.raises(ValueError, match="z1 must have shape"):
        model.decode(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="nz2 must be a positive integer"):
        LadderVAE(nz2=0)
