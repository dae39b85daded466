"""The DDPM prior of chapter 16: the forward chain against its closed form, each step's KL
against the weighted DDPM loss, the whole ELBO against log N(z; 0, I) when the codes are
standard normal and the denoiser is the best one, sampling and training."""


import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vae_helpers.latent_diffusion import LatentDiffusion, fit_diffusion


def _prior(nz=3, steps=20, seed=0):
    torch.manual_seed(seed)
    return LatentDiffusion(nz, steps=steps, nh=32).double()


class _BestForStandardNormal(torch.nn.Module):
    """E[eps | z_t] when z_0 ~ N(0, I): then z_t ~ N(0, I) too and eps = sqrt(1 - abar_t) z_t
    plus noise independent of z_t."""

    def __init__(self, prior):
        super().__init__()
        self.alpha_bars = prior.alpha_bars

    def forward(self, z, t):
        return (1 - self.alpha_bars[t - 1]).sqrt().to(z.dtype).unsqueeze(-1) * z


def test_the_forward_chain_matches_its_closed_form():
    prior = _prior(nz=2, steps=30)
    z0 = torch.tensor([0.7, -1.2], dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    z = z0.repeat(20_000, 1)
    for t in range(17):
        beta = prior.betas[t]
        z = (1 - beta).sqrt() * z + beta.sqrt() * torch.randn(z.shape, generator=generator,
                                                              dtype=torch.float64)
    abar = prior.alpha_bars[16]
    assert torch.allclose(z.mean(0), abar.sqrt() * z0, atol=0.03)
    assert torch.allclose(z.var(0), (1 - abar).expand(2), atol=0.03)
    noise = torch.randn(4, 2, dtype=torch.float64)
    t = torch.full((4,), 17)
    torch.testing.assert_close(prior.q_sample(z0.expand(4, -1), t, noise),
                               abar.sqrt() * z0 + (1 - abar).sqrt() * noise)


@pytest.mark.parametrize("t", [1, 2, 7, 20])
def test_each_step_term_is_the_weighted_ddpm_loss(t):
    """The KL of two Gaussians (the forward posterior, by Bayes' rule here, and the reverse
    step) equals w_t ||eps - eps(z_t, t)||^2 + c_t; at t = 1 the term is -log p(z_0 | z_1)."""
    prior = _prior()
    torch.manual_seed(1)
    z0, noise = torch.randn(2, 5, 3, dtype=torch.float64)
    steps = torch.full((5,), t)
    zt = prior.q_sample(z0, steps, noise)
    with torch.no_grad():
        term = prior.step_term(z0, steps, noise)
        eps = prior.denoiser(zt, steps)
        beta, alpha = prior.betas[t - 1], prior.alphas[t - 1]
        abar = prior.alpha_bars[t - 1]
        mean_p = (zt - beta / (1 - abar).sqrt() * eps) / alpha.sqrt()
        reverse = Normal(mean_p, beta.sqrt())  # sigma_t^2 = beta_t
        if t == 1:
            expected = -reverse.log_prob(z0).sum(-1)
        else:  # q(z_{t-1} | z_t, z_0) from the product of q(z_{t-1} | z_0) and q(z_t | z_{t-1})
            previous = prior.alpha_bars[t - 2]
            precision = 1 / (1 - previous) + alpha / beta
            mean_q = (previous.sqrt() * z0 / (1 - previous) + alpha.sqrt() * zt / beta) / precision
            expected = kl_divergence(Normal(mean_q, precision.rsqrt()), reverse).sum(-1)
        closed = (prior.loss_weights()[t - 1] * (noise - eps).pow(2).sum(-1)
                  + prior.loss_constants()[t - 1])
    torch.testing.assert_close(term, expected)
    torch.testing.assert_close(term, closed)


def test_the_elbo_is_log_n01_for_standard_normal_codes_and_the_best_denoiser():
    """All per-step terms together: with z_0 ~ N(0, I) and the best denoiser the reverse chain
    is exact, so the average ELBO is the average log N(z_0; 0, I), to Monte Carlo error. A
    wrong weight, variance or sign in any step would show."""
    prior = _prior(nz=4, steps=50)
    prior.denoiser = _BestForStandardNormal(prior)
    z0 = torch.randn(4000, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    terms = prior.elbo_terms(z0, torch.Generator().manual_seed(1))
    assert terms.shape == (4000, 51)
    gap = float((-terms.sum(-1) - Normal(0.0, 1.0).log_prob(z0).sum(-1)).mean())
    assert abs(gap) < 0.05, gap
    assert float(terms[:, -1].mean()) < 1e-3  # KL(q(z_T | z_0) || N(0, I)) is nearly zero


def test_loss_is_the_simple_loss_at_uniform_steps():
    prior = _prior()
    z0 = torch.randn(6, 3, dtype=torch.float64)
    generator = torch.Generator().manual_seed(3)
    loss = prior.loss(z0, generator)
    generator = torch.Generator().manual_seed(3)
    t = torch.randint(1, 21, (6,), generator=generator)
    noise = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    eps = prior.denoiser(prior.q_sample(z0, t, noise), t)
    torch.testing.assert_close(loss, (noise - eps).pow(2).sum(-1).mean())


def test_sampling_follows_the_reverse_steps_and_their_noise():
    prior = _prior(nz=2, steps=10)
    noise = torch.randn(10, 3, 2, dtype=torch.float64)
    path = prior.sample(3, noise=noise, trajectory=True)
    assert path.shape == (11, 3, 2)
    torch.testing.assert_close(path[0], noise[0])
    with torch.no_grad():
        for i, t in enumerate(range(10, 0, -1)):
            mean, variance = prior.reverse(path[i], torch.full((3,), t))
            expected = mean + variance.sqrt() * noise[i + 1] if t > 1 else mean
            torch.testing.assert_close(path[i + 1], expected)
    torch.testing.assert_close(prior.sample(3, noise=noise), path[-1])
    best = _prior(nz=2, steps=50)
    best.denoiser = _BestForStandardNormal(best)
    draws = best.sample(20_000, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(draws.var(0), torch.ones(2, dtype=torch.float64), atol=0.05)
    with pytest.raises(ValueError, match="noise must have shape"):
        prior.sample(3, noise=noise[:5])


def test_fit_diffusion_learns_a_shifted_gaussian():
    torch.manual_seed(0)
    prior = LatentDiffusion(2, steps=20, nh=32)
    codes = torch.randn(1000, 2) * 0.3 + torch.tensor([1.5, -1.0])
    with torch.no_grad():
        before = float(prior.elbo(codes[:500], torch.Generator().manual_seed(1)).mean())
    losses = fit_diffusion(prior, codes, torch.full_like(codes, -6.0), epochs=25, batch_size=64,
                           lr=3e-3)
    with torch.no_grad():
        after = float(prior.elbo(codes[:500], torch.Generator().manual_seed(1)).mean())
    assert losses[-1] < losses[0] and after > before + 1
    draws = prior.sample(2000, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(draws.mean(0), torch.tensor([1.5, -1.0]), atol=0.15)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="steps must be an integer of at least 2"):
        LatentDiffusion(2, steps=1)
    with pytest.raises(ValueError, match="beta_start <= beta_end < 1"):
        LatentDiffusion(2, steps=10, beta_start=0.5, beta_end=0.1)
    prior = LatentDiffusion(2, steps=10, nh=8)
    with pytest.raises(ValueError, match="t must hold integer steps from 1 to 10"):
        prior.q_sample(torch.zeros(1, 2), torch.tensor([11]), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"mu \(and log_var\) must have shape"):
        fit_diffusion(prior, torch.zeros(5, 3))
