import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from vae_helpers import (
    iw_bound,
    kl_to_standard_normal,
    log_bernoulli,
    log_normal_diag,
    log_standard_normal,
    negative_elbo,
)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = torch.zeros(1, 3)
    assert float(kl_to_standard_normal(zeros, zeros)) == 0.0
    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(1000, 3, generator=generator)
    log_var = 2 * torch.randn(1000, 3, generator=generator)
    assert bool((kl_to_standard_normal(mu, log_var) > 0).all())


def test_kl_matches_torch_distributions():
    mu, log_var = torch.randn(50, 4), torch.randn(50, 4)
    expected = kl_divergence(Normal(mu, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(kl_to_standard_normal(mu, log_var), expected, atol=1e-5)


def test_kl_agrees_with_monte_carlo_within_its_error_bar():
    generator = torch.Generator().manual_seed(1)
    mu, log_var = torch.tensor([[0.7, -1.2]]), torch.tensor([[-0.5, 0.8]])
    n = 200_000
    z = mu + (0.5 * log_var).exp() * torch.randn(n, 2, generator=generator)
    samples = log_normal_diag(z, mu, log_var) - log_standard_normal(z)
    estimate, error = float(samples.mean()), float(samples.std()) / math.sqrt(n)
    assert abs(estimate - float(kl_to_standard_normal(mu, log_var))) < 4 * error


def test_log_bernoulli_is_the_seeds_binary_cross_entropy():
    x, logits = torch.rand(8, 784), 3 * torch.randn(8, 784)
    seed_bce = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum")
    assert torch.allclose(-log_bernoulli(x, logits).sum(), seed_bce, rtol=1e-5)


def test_log_bernoulli_gradient_is_sigmoid_minus_x():
    x = torch.rand(4, 784, dtype=torch.float64)
    logits = (5 * torch.randn(4, 784, dtype=torch.float64)).requires_grad_()
    reference = logits.detach().clone().requires_grad_()
    log_bernoulli(x, logits).sum().backward()
    (-F.binary_cross_entropy_with_logits(reference, x, reduction="sum")).backward()
    assert torch.allclose(logits.grad, reference.grad)
    assert torch.allclose(logits.grad, x - torch.sigmoid(logits.detach()))
    assert torch.autograd.gradcheck(log_bernoulli, (x.requires_grad_(), logits))


def test_log_bernoulli_stays_finite_where_sigmoid_saturates():
    x = torch.tensor([[1.0, 0.0]])
    logits = torch.tensor([[-200.0, 200.0]])
    assert torch.isfinite(log_bernoulli(x, logits)).all()
    assert torch.allclose(log_bernoulli(x, logits), torch.tensor([-400.0]))


def test_log_normal_diag_matches_torch_distributions():
    z, mu, log_var = torch.randn(10, 3), torch.randn(10, 3), torch.randn(10, 3)
    expected = Normal(mu, (0.5 * log_var).exp()).log_prob(z).sum(-1)
    assert torch.allclose(log_normal_diag(z, mu, log_var), expected, atol=1e-5)
    assert torch.allclose(log_standard_normal(z), Normal(0.0, 1.0).log_prob(z).sum(-1), atol=1e-6)


def test_negative_elbo_reductions_agree():
    x, logits = torch.rand(6, 784), torch.randn(6, 784)
    mu, log_var = torch.randn(6, 2), torch.randn(6, 2)
    per_example = negative_elbo(x, logits, mu, log_var, reduction="none")
    assert per_example.shape == (6,)
    assert torch.allclose(negative_elbo(x, logits, mu, log_var), per_example.sum())
    assert torch.allclose(negative_elbo(x, logits, mu, log_var, "mean"), per_example.mean())
    with pytest.raises(ValueError, match="reduction must be 'sum', 'mean' or 'none', not 'avg'"):
        negative_elbo(x, logits, mu, log_var, reduction="avg")


def test_iw_bound_is_log_mean_exp():
    log_w = torch.log(torch.tensor([[1.0, 2.0], [3.0, 6.0]]))
    assert torch.allclose(iw_bound(log_w), torch.log(torch.tensor([2.0, 4.0])))
    assert torch.allclose(iw_bound(log_w[:1]), log_w[0])
