"""Priors: the standard normal and the learned mixture, against torch.distributions; the
aggregate posterior's density."""

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from vae_helpers import MixturePrior, StandardNormalPrior, aggregate_log_density, log_normal_diag


def _as_torch_mixture(prior: MixturePrior) -> MixtureSameFamily:
    components = Independent(Normal(prior.means, (0.5 * prior.log_vars).exp()), 1)
    return MixtureSameFamily(Categorical(logits=prior.weight_logits), components)


def test_standard_normal_prior_matches_torch_and_samples_its_shape():
    prior = StandardNormalPrior(3)
    z = torch.randn(7, 3)
    assert torch.allclose(prior.log_prob(z), Normal(0.0, 1.0).log_prob(z).sum(-1))
    assert prior.sample(5).shape == (5, 3)
    assert not list(prior.parameters())


def test_mixture_prior_log_prob_matches_torch_mixture():
    torch.manual_seed(0)
    prior = MixturePrior(2, components=4)
    with torch.no_grad():
        prior.log_vars.normal_()
        prior.weight_logits.normal_()
    z = torch.randn(3, 6, 2)
    expected = _as_torch_mixture(prior).log_prob(z)
    assert torch.allclose(prior.log_prob(z), expected, atol=1e-5)


def test_mixture_prior_samples_have_the_mixture_mean_and_weights_learn():
    torch.manual_seed(1)
    prior = MixturePrior(2, components=3)
    with torch.no_grad():
        prior.weight_logits.copy_(torch.tensor([0.0, 1.0, -1.0]))
    draws = prior.sample(200_000, generator=torch.Generator().manual_seed(0))
    weights = torch.softmax(prior.weight_logits, 0)
    mean = (weights[:, None] * prior.means).sum(0)
    assert torch.allclose(draws.mean(0), mean.detach(), atol=0.02)
    prior.log_prob(torch.randn(10, 2)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in prior.parameters())


def test_priors_reject_bad_sizes_and_codes():
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="nz"):
            StandardNormalPrior(bad)
    with pytest.raises(ValueError, match="components"):
        MixturePrior(2, components=0)
    with pytest.raises(ValueError, match="z must have shape"):
        MixturePrior(2).log_prob(torch.zeros(4, 3))


def test_aggregate_density_of_one_encoding_is_its_gaussian_and_of_many_their_average():
    torch.manual_seed(0)
    mu, log_var, z = torch.randn(1, 2), torch.randn(1, 2), torch.randn(50, 2)
    assert torch.allclose(aggregate_log_density(z, mu, log_var), log_normal_diag(z, mu, log_var))
    mu, log_var = torch.randn(30, 2), torch.randn(30, 2)
    mixture = MixtureSameFamily(Categorical(logits=torch.zeros(30)),
                                Independent(Normal(mu, (0.5 * log_var).exp()), 1))
    assert torch.allclose(aggregate_log_density(z, mu, log_var, chunk=7), mixture.log_prob(z),
                          atol=1e-5)
    with pytest.raises(ValueError, match="mu and log_var"):
        aggregate_log_density(z, mu, log_var[:, :1])
