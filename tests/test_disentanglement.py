import math

import pytest
import torch

from vae_helpers import (
    VAE,
    beta_tc_loss,
    discretize,
    entropy,
    estimate_kl_decomposition,
    fit_beta_tc,
    kl_decomposition,
    kl_to_standard_normal,
    make_shapes,
    mutual_information_gap,
    mutual_information_matrix,
)


@pytest.fixture(scope="module")
def factors():
    generator = torch.Generator().manual_seed(0)
    return torch.stack([torch.randint(size, (5000,), generator=generator)
                        for size in (3, 4, 6, 8)], dim=1)


def test_mutual_information_of_a_variable_with_itself_is_its_entropy(factors):
    information = mutual_information_matrix(factors, factors)
    assert torch.allclose(information.diagonal(), entropy(factors), atol=1e-12)
    assert torch.allclose(entropy(factors), torch.tensor([3.0, 4, 6, 8]).log().double(),
                          atol=0.01)
    assert float(information.fill_diagonal_(0).max()) < 0.02  # independent factors


def test_a_code_that_holds_each_factor_in_its_own_dimension_scores_one(factors):
    code = factors.double() * 0.3 + 1.0  # any scale: the bins follow each dimension's range
    assert mutual_information_gap(code, factors) == pytest.approx(1.0, abs=0.01)
    permuted = code[:, [2, 0, 3, 1]]  # MIG does not care which dimension holds which factor
    assert mutual_information_gap(permuted, factors) == pytest.approx(1.0, abs=0.01)


def test_duplicated_mixed_or_noise_codes_score_lower(factors):
    code = factors.double()
    duplicated = torch.cat([code, code[:, :1]], dim=1)  # factor 0 in two dimensions: gap 0
    assert mutual_information_gap(duplicated, factors) == pytest.approx(0.75, abs=0.01)
    rotation = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64,
                                           generator=torch.Generator().manual_seed(0))).Q
    assert mutual_information_gap(code @ rotation, factors) < 0.5
    noise = torch.randn(5000, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert mutual_information_gap(noise, factors) < 0.05


def test_discretize_uses_equal_width_bins_and_keeps_constant_columns_at_zero():
    codes = torch.tensor([[0.0, 5.0], [0.5, 5.0], [1.0, 5.0]])
    assert discretize(codes, bins=4).tolist() == [[0, 0], [2, 0], [3, 0]]


def test_bad_codes_and_factors_are_named(factors):
    with pytest.raises(TypeError, match="codes must be a floating-point"):
        mutual_information_gap(factors, factors)
    with pytest.raises(ValueError, match="same number of examples"):
        mutual_information_gap(factors[:10].double(), factors[:9])
    with pytest.raises(ValueError, match="bins must be an integer of at least 2"):
        mutual_information_gap(factors.double(), factors, bins=1)
    with pytest.raises(ValueError, match="at least two dimensions"):
        mutual_information_gap(factors[:, :1].double(), factors)
    with pytest.raises(ValueError, match="constant factor"):
        mutual_information_gap(factors.double(), torch.zeros_like(factors))
    with pytest.raises(ValueError, match="NaN or infinite"):
        mutual_information_gap(torch.full((3, 2), math.nan), factors[:3])
    with pytest.raises(ValueError, match="2-D integer tensor"):
        mutual_information_matrix(factors[:, 0], factors)


def _posterior(m=64, nz=3, seed=0, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    mu = scale * torch.randn(m, nz, generator=generator, dtype=torch.float64)
    log_var = scale * 0.3 * torch.randn(m, nz, generator=generator, dtype=torch.float64) - 1
    z = mu + (0.5 * log_var).exp() * torch.randn(m, nz, generator=generator, dtype=torch.float64)
    return z, mu, log_var


def test_the_minibatch_estimate_of_the_aggregate_posterior_is_unbiased():
    """Over random batches that hold x_0, the estimate of q(z_0) = (1/N) sum_n q(z_0 | x_n)
    averages to the exact value; weighting the batch as if it were the data set would not."""
    from vae_helpers import aggregate_log_densities

    z, mu, log_var = _posterior(m=60, nz=2)
    components = torch.distributions.Normal(mu, (0.5 * log_var).exp())
    exact = components.log_prob(z[0]).sum(1).exp().mean()
    generator = torch.Generator().manual_seed(1)
    estimates, naive = [], []
    for _ in range(3000):
        batch = torch.cat([torch.tensor([0]), 1 + torch.randperm(59, generator=generator)[:9]])
        log_q_z, _ = aggregate_log_densities(z[batch], mu[batch], log_var[batch], 60)
        estimates.append(log_q_z[0].exp())
        naive.append(aggregate_log_densities(z[batch], mu[batch], log_var[batch], 10)[0][0].exp())
    estimates, naive = torch.stack(estimates), torch.stack(naive)
    error = 3 * estimates.std() / len(estimates) ** 0.5
    assert abs(estimates.mean() - exact) < error
    assert abs(naive.mean() - exact) > 5 * error


def test_the_three_terms_share_the_aggregate_posterior_estimate():
    from vae_helpers import aggregate_log_densities

    z, mu, log_var = _posterior()
    terms = kl_decomposition(z, mu, log_var, dataset_size=1000)
    log_q_z, log_marginals = aggregate_log_densities(z, mu, log_var, 1000)
    assert torch.allclose(terms["total_correlation"], (log_q_z - log_marginals).mean())
    normal = torch.distributions.Normal
    log_q = normal(mu, (0.5 * log_var).exp()).log_prob(z).sum(1)
    assert torch.allclose(terms["mutual_information"], (log_q - log_q_z).mean())


def test_with_the_whole_data_set_as_the_batch_the_estimate_is_exact():
    z, mu, log_var = _posterior(m=50)
    terms = kl_decomposition(z, mu, log_var, dataset_size=50)
    components = torch.distributions.Normal(mu, (0.5 * log_var).exp())  # q(z | x_n), (N, nz)
    per_pair = components.log_prob(z[:, None, :])  # log q(z_i,j | x_n): (i, n, j)
    log_q_z = torch.logsumexp(per_pair.sum(2), 1) - math.log(50)
    log_marginals = (torch.logsumexp(per_pair, 1) - math.log(50)).sum(1)
    exact_tc = (log_q_z - log_marginals).mean()
    assert torch.allclose(terms["total_correlation"], exact_tc, atol=1e-10)


def test_a_code_that_ignores_the_image_has_no_information_and_correlated_codes_have_tc():
    z, mu, log_var = _posterior(m=500, scale=0.0)  # q(z | x) the same for every x
    terms = kl_decomposition(z, mu, log_var, dataset_size=500)
    assert abs(float(terms["mutual_information"])) < 1e-10
    assert abs(float(terms["total_correlation"])) < 1e-10
    z, mu, log_var = _posterior(m=500, nz=2)
    independent = kl_decomposition(z, mu, log_var, 500)["total_correlation"]
    mu_tied, z_tied = mu[:, [0, 0]], z - mu + mu[:, [0, 0]]  # both dimensions copy one factor
    tied = kl_decomposition(z_tied, mu_tied, log_var, 500)["total_correlation"]
    rho = 1 / (1 + math.exp(-1))  # correlation of the two copies: Var mu = 1, noise about e^-1
    assert abs(float(independent)) < 0.05
    assert float(tied) == pytest.approx(-0.5 * math.log(1 - rho ** 2), abs=0.1)  # Gaussian TC


def test_bad_posteriors_are_named():
    z, mu, log_var = _posterior(m=8)
    with pytest.raises(ValueError, match="dataset_size must be an integer of at least"):
        kl_decomposition(z, mu, log_var, dataset_size=4)
    with pytest.raises(ValueError, match="share one \\(batch, nz\\) shape"):
        kl_decomposition(z, mu[:, :2], log_var, 100)
    with pytest.raises(ValueError, match="at least two"):
        kl_decomposition(z[:1], mu[:1], log_var[:1], 100)
    with pytest.raises(TypeError, match="mu must be a torch.Tensor"):
        kl_decomposition(z, mu.tolist(), log_var, 100)


def test_beta_tc_training_lowers_the_loss_and_beta_one_is_the_elbo():
    data = make_shapes(1000, seed=0)
    torch.manual_seed(0)
    model = VAE(nx=1024, nh=64, nz=4)
    losses = fit_beta_tc(model, data, epochs=3, beta=4.0, batch_size=100)
    assert losses[-1] < losses[0]
    terms = estimate_kl_decomposition(model, data, batch_size=500)
    assert set(terms) == {"mutual_information", "total_correlation", "dimensionwise_kl"}
    with torch.no_grad():  # the three parts add up to the average KL (one draw per image)
        closed_form = float(kl_to_standard_normal(*model.encode(data.images)).mean())
    assert sum(terms.values()) == pytest.approx(closed_form, rel=0.05)
    x = data.images[:100]
    torch.manual_seed(1)
    one = beta_tc_loss(model, x, 1000, beta=1.0)
    torch.manual_seed(1)
    mu, log_var = model.encode(x)
    z = model.reparameterize(mu, log_var)
    normal = torch.distributions.Normal
    kl = (normal(mu, (0.5 * log_var).exp()).log_prob(z) - normal(0.0, 1.0).log_prob(z)).sum()
    assert torch.allclose(one, -model.log_likelihood(x, model.decode(z)).sum() + kl, rtol=1e-5)
    with pytest.raises(ValueError, match="beta must be a finite number, zero or more"):
        beta_tc_loss(model, x, 1000, beta=-1.0)
    with pytest.raises(ValueError, match="batch_size must be an integer of at least 2"):
        estimate_kl_decomposition(model, data, batch_size=1)
    with pytest.raises(ValueError, match="fewer than one batch"):
        estimate_kl_decomposition(model, data[:10], batch_size=20)
