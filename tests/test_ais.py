"""Annealed importance sampling and BDMC (vae_helpers.ais), checked where log p(x) is exact: the
linear-Gaussian model of chapter 1, and a small 2-D VAE against the grid integral.

The exactness tests fix the step size (``adapt=False``), so the estimator is exact AIS; every
path is short enough for a few seconds. The tensors are tiny, so one thread: on a busy machine a
second one costs more to wake at every operation than it saves."""

import math

import pytest
import torch

from vae_helpers import (
    MNIST,
    VAE,
    AnnealingPath,
    ais_log_likelihood,
    anneal,
    bdmc,
    grid_log_likelihood,
    hmc_step,
    random_linear_gaussian,
    sigmoid_schedule,
    simulate_data,
)
from vae_helpers.ais import vae_path

NOISE = 1.0  # posterior widths 0.33 and 0.55 against the prior's 1: a path with work to do


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def linear_gaussian_problem(images: int, seed: int = 0):
    """A linear-Gaussian model (3-D data, 2-D code), ``images`` data points simulated from it with
    their codes (exact posterior samples), the exact log p(x), and the path from the prior."""
    model = random_linear_gaussian(data_dim=3, latent_dim=2, noise_std=NOISE, seed=seed)
    generator = torch.Generator().manual_seed(seed + 1)
    z = torch.randn(images, 2, generator=generator, dtype=torch.float64)
    x = z @ model.weight.T + model.bias + NOISE * torch.randn(images, 3, generator=generator,
                                                              dtype=torch.float64)

    def log_joint(codes):
        residual = x - codes @ model.weight.T - model.bias
        return (-0.5 * residual.pow(2).sum(-1) / NOISE**2 - 3 * math.log(NOISE)
                - 0.5 * codes.pow(2).sum(-1) - 2.5 * math.log(2 * math.pi))

    mean = torch.zeros(images, 2, dtype=torch.float64)
    return x, z, model.log_marginal(x), AnnealingPath(log_joint, mean, torch.zeros_like(mean))


def test_ais_converges_to_the_exact_log_marginal_as_the_path_gets_longer():
    """One step from the prior is plain importance sampling; 150 steps with 64 chains land within
    a tenth of a nat of the exact log p(x) on average, several times closer."""
    _, _, truth, path = linear_gaussian_problem(images=20)
    generator = torch.Generator().manual_seed(0)
    errors = {}
    for steps in (1, 150):
        result = anneal(path, path.sample_initial(64, generator), sigmoid_schedule(steps),
                        step_size=0.3, adapt=False, generator=generator)
        errors[steps] = (result.estimate - truth).abs().mean().item()
    assert errors[150] < 0.1
    assert errors[1] > 4 * errors[150]


def test_hmc_leaves_a_correlated_gaussian_invariant():
    """Exact samples of N(m, S), moved by 20 HMC steps with a coarse step size (the leapfrog
    energy error is large, so only a correct Metropolis test keeps the moments)."""
    mean = torch.tensor([1.0, -2.0], dtype=torch.float64)
    cov = torch.tensor([[1.0, 0.9], [0.9, 1.0]], dtype=torch.float64)
    target = torch.distributions.MultivariateNormal(mean, cov)
    path = AnnealingPath(target.log_prob, torch.zeros(1, 2, dtype=torch.float64),
                         torch.zeros(1, 2, dtype=torch.float64))
    generator = torch.Generator().manual_seed(0)
    chains = 20_000
    z = mean + torch.randn(chains, 1, 2, generator=generator, dtype=torch.float64) @ \
        torch.linalg.cholesky(cov).T
    joint, grad = path.joint_and_grad(z)
    step = torch.full((1, 1), 0.4, dtype=torch.float64)
    accepted = []
    for _ in range(20):
        z, joint, grad, accept = hmc_step(path, 1.0, z, joint, grad, step, 3, generator)
        accepted.append(accept.double().mean().item())
    samples = z[:, 0]
    assert 0.2 < sum(accepted) / len(accepted) < 0.95  # the test rejects often enough to matter
    assert torch.allclose(samples.mean(0), mean, atol=0.03)
    assert torch.allclose(torch.cov(samples.T), cov, atol=0.04)


def test_bdmc_brackets_the_exact_log_marginal_and_closes_as_the_path_gets_longer():
    """One chain per point, averaged over 400 simulated points: the forward chain's log-weight is
    below log p(x) and the reverse chain's (started at the exact posterior samples) above it, by
    more than two standard errors, on a short path and on a long one; the long one's bracket is
    under a tenth as wide."""
    x, z, truth, path = linear_gaussian_problem(images=400)
    generator = torch.Generator().manual_seed(0)
    widths = {}
    for steps in (3, 100):
        forward = anneal(path, path.sample_initial(1, generator), sigmoid_schedule(steps),
                         step_size=0.3, adapt=False, generator=generator)
        reverse = anneal(path, z[None].clone(), sigmoid_schedule(steps)[::-1], step_size=0.3,
                         adapt=False, generator=generator)
        lower, upper = forward.estimate - truth, -reverse.estimate - truth
        error = max(lower.std().item(), upper.std().item()) / math.sqrt(len(truth))
        assert lower.mean() < -2 * error and upper.mean() > 2 * error, steps
        widths[steps] = (upper.mean() - lower.mean()).item()
    assert widths[100] < 0.5 and widths[100] < 0.1 * widths[3]


def test_one_step_from_q_is_importance_sampling():
    """With betas (0, 1) the weight is p(x, z) / q0(z) at the initial draw, before any move."""
    _, _, _, path = linear_gaussian_problem(images=5)
    generator = torch.Generator().manual_seed(3)
    z = path.sample_initial(7, generator)
    result = anneal(path, z, [0.0, 1.0], generator=generator)
    assert torch.allclose(result.log_w, path.log_joint(z) - path.log_initial(z))


def test_a_step_size_schedule_fixes_every_transition():
    """A chain's recorded step sizes, given back as a schedule, replay it exactly (what BDMC's
    reverse chain relies on); a constant schedule is the fixed step size."""
    _, _, _, path = linear_gaussian_problem(images=5)
    betas = sigmoid_schedule(20)

    def run(step_size, adapt=True):
        generator = torch.Generator().manual_seed(2)
        return anneal(path, path.sample_initial(3, generator), betas, step_size, adapt=adapt,
                      generator=generator)

    adapted = run(0.3)
    assert not torch.equal(adapted.step_sizes[0], adapted.step_sizes[-1])  # it did adapt
    replayed = run(adapted.step_sizes)
    assert torch.equal(replayed.log_w, adapted.log_w)
    assert torch.equal(replayed.step_sizes, adapted.step_sizes)
    constant = run(torch.full((20, 5, 1), 0.3, dtype=torch.float64))
    assert torch.equal(constant.log_w, run(0.3, adapt=False).log_w)


@pytest.fixture(scope="module")
def small_vae(mnist_test):
    torch.manual_seed(0)
    model = VAE(nh=32, nz=2).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, mnist_test[:8].drawn("binarized", seed=0)


def test_ais_on_a_2d_vae_meets_the_grid_integral(small_vae):
    """Against a fine grid (the untrained encoder's widths would size the default grid too
    coarsely): from either start, 100 steps with 16 chains come within a tenth of a nat on
    average, several times closer than importance sampling from the same start."""
    model, images = small_vae
    exact = grid_log_likelihood(model, images, steps=201, limit=5.0)
    for start in ("encoder", "prior"):
        errors = {}
        for steps in (1, 100):
            result = ais_log_likelihood(model, images.images, steps=steps, chains=16, start=start,
                                        step_size=0.5, adapt=False,
                                        generator=torch.Generator().manual_seed(0))
            errors[steps] = (result.estimate - exact).abs().mean().item()
        assert errors[100] < 0.1 and errors[1] > 3 * errors[100], (start, errors)


def test_bdmc_on_simulated_images_of_a_2d_vae_brackets_the_grid_integral(small_vae):
    model, _ = small_vae
    generator = torch.Generator().manual_seed(1)
    x, z = simulate_data(model, 64, generator)
    assert set(x.unique().tolist()) <= {0.0, 1.0} and z.shape == (64, 2)
    exact = grid_log_likelihood(model, MNIST(x, torch.zeros(64, dtype=torch.long)), steps=201,
                                limit=5.0)
    lower, upper = bdmc(model, x, z, steps=5, chains=1, step_size=0.5, adapt=False,
                        generator=generator)
    assert (lower - exact).mean() < 0 < (upper - exact).mean()


def test_arguments_are_checked(small_vae):
    model, images = small_vae
    path = vae_path(model, images.images)
    z = path.sample_initial(2)
    with pytest.raises(ValueError, match="betas"):
        anneal(path, z, [0.0, 0.5])
    with pytest.raises(ValueError, match="z must have shape"):
        anneal(path, z[0], [0.0, 1.0])
    with pytest.raises(ValueError, match="schedule"):
        anneal(path, z, [0.0, 0.5, 1.0], step_size=torch.ones(3, len(images), 1))
    with pytest.raises(ValueError, match="start"):
        vae_path(model, images.images, start="posterior")
    with pytest.raises(ValueError, match="steps"):
        ais_log_likelihood(model, images.images, steps=0)
    with pytest.raises(ValueError, match="z_exact"):
        bdmc(model, images.images, torch.zeros(3, 2), steps=2)
    betas = sigmoid_schedule(10)
    assert betas[0] == 0 and betas[-1] == 1 and all(a < b for a, b in zip(betas, betas[1:]))
