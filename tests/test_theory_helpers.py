import math

import pytest
import torch

from vae_helpers import (
    kl_discrete,
    kl_full_gaussians,
    kl_gaussians,
    monte_carlo_kl,
    random_linear_gaussian,
    reparameterization_gradients,
    score_function_gradients,
)


def test_discrete_kl_is_non_negative_and_zero_only_for_equal_distributions():
    generator = torch.Generator().manual_seed(0)
    p = torch.rand(2000, 6, generator=generator, dtype=torch.float64).softmax(-1)
    q = torch.rand(2000, 6, generator=generator, dtype=torch.float64).softmax(-1)
    assert bool((kl_discrete(p, q) > 0).all())
    assert torch.allclose(kl_discrete(p, p), torch.zeros(2000, dtype=torch.float64))


def test_discrete_kl_edge_cases():
    p, q = torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.25, 0.25, 0.5])
    assert math.isclose(float(kl_discrete(p, q)), math.log(2), rel_tol=1e-6)
    assert float(kl_discrete(q, p)) == math.inf
    with pytest.raises(ValueError, match="q must be non-negative and sum to 1"):
        kl_discrete(p, torch.tensor([0.5, 0.6, -0.1]))


def test_gaussian_kls_agree_and_match_monte_carlo():
    mq, vq, mp, vp = torch.tensor([[0.3, -1.0], [0.5, 2.0], [1.0, 0.0], [1.5, 0.7]],
                                  dtype=torch.float64)
    diag = kl_gaussians(mq, vq, mp, vp)
    assert torch.allclose(diag, kl_full_gaussians(mq, torch.diag(vq), mp, torch.diag(vp)))
    q = torch.distributions.Normal(mq, vq.sqrt())
    p = torch.distributions.Normal(mp, vp.sqrt())
    samples = q.sample((100_000,))
    estimate, error = monte_carlo_kl(lambda z: q.log_prob(z).sum(-1),
                                     lambda z: p.log_prob(z).sum(-1), samples)
    assert abs(estimate - float(diag)) < 4 * error


def test_linear_gaussian_elbo_gap_is_the_posterior_kl():
    model = random_linear_gaussian(data_dim=3, latent_dim=2, seed=1)
    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    log_px = model.log_marginal(x)
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        mean = torch.randn(2, generator=generator, dtype=torch.float64)
        root = torch.randn(2, 2, generator=generator, dtype=torch.float64)
        cov = root @ root.T + 0.1 * torch.eye(2, dtype=torch.float64)
        elbo = model.elbo(x, mean, cov)
        assert elbo < log_px
        assert torch.isclose(log_px - elbo, model.posterior_gap(x, mean, cov), atol=1e-10)
    post_mean, post_cov = model.posterior(x)
    assert torch.isclose(model.elbo(x, post_mean, post_cov), log_px, atol=1e-10)


def test_both_gradient_estimators_are_unbiased_and_reparameterization_varies_less():
    generator = torch.Generator().manual_seed(0)

    def f(z):
        return z**2

    reparam = reparameterization_gradients(f, 1.0, 0.5, 200_000, generator)
    score = score_function_gradients(f, 1.0, 0.5, 200_000, generator)
    for estimates in (reparam, score):  # d/dmu E[z^2] = 2 mu
        assert abs(float(estimates.mean()) - 2.0) < 4 * float(estimates.std()) / math.sqrt(200_000)
    assert float(reparam.var()) < float(score.var())


def test_a_baseline_keeps_the_score_function_unbiased_and_its_variance_bounded():
    generator = torch.Generator().manual_seed(1)
    mu, n = 1.0, 400_000
    for sigma in (0.05, 0.5):
        plain = score_function_gradients(lambda z: z**2, mu, sigma, n, generator)
        based = score_function_gradients(lambda z: z**2, mu, sigma, n, generator,
                                         baseline=mu**2)
        assert abs(float(based.mean()) - 2 * mu) < 4 * float(based.std()) / math.sqrt(n)
        # Var = 8 mu^2 + 15 sigma^2 with the baseline f(mu), (mu^4 + 18 mu^2 s^2 + 15 s^4)/s^2
        # - 4 mu^2 without: the first stays bounded as sigma -> 0, the second explodes.
        assert float(based.var()) == pytest.approx(8 * mu**2 + 15 * sigma**2, rel=0.05)
        exact = (mu**4 + 18 * mu**2 * sigma**2 + 15 * sigma**4) / sigma**2 - 4 * mu**2
        assert float(plain.var()) == pytest.approx(exact, rel=0.05)
