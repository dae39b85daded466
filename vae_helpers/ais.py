"""Annealed importance sampling (AIS) with Hamiltonian Monte Carlo transitions: a second
estimator of log p(x) for the book's decoders, and its reverse chain (BDMC), an upper bound on
simulated data. Chapter 7 writes the algorithm out in plain PyTorch and checks this module
against it.

The path runs from a diagonal Gaussian q0 (the prior N(0, I) or the encoder's q(z|x)) to the
posterior, through the geometric averages

    f_beta(z) = q0(z)^(1 - beta) p(x, z)^beta,    0 = beta_0 < beta_1 < ... < beta_T = 1.

Chains start at z ~ q0; before each transition the log-weight gains
(beta_t - beta_{t-1}) (log p(x, z) - log q0(z)), and one HMC step that leaves f_{beta_t}
invariant moves z. Then E[w] = p(x) (Neal, 2001), so log of the average weight over M chains is
a stochastic lower bound on log p(x), like L_k. Run backwards from an exact posterior sample
(available for data simulated from the model), the same chain estimates 1/p(x), and minus its
log is a stochastic upper bound (Grosse et al., 2015; Wu et al., 2017).

Codes have shape (chains, images, nz); the step size is one per image, (images, 1), shared by
the image's chains. With ``adapt=True`` it is multiplied by 1.02 after a step whose acceptance
rate (over the image's chains) was above the target 0.65, divided by 1.02 otherwise (Wu et al.).
A kernel tuned from the chains' own past is, strictly, outside the AIS argument; the effect is
small with several chains per image, and ``adapt=False`` keeps the estimator exact. BDMC's
reverse chain replays the forward chain's step sizes backwards, fixed in advance, so its upper
bound needs no such caveat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .errors import check_integers, check_numbers
from .losses import iw_bound, log_normal_diag, log_standard_normal

RATE, TARGET_ACCEPTANCE = 1.02, 0.65


def sigmoid_schedule(steps: int, delta: float = 4.0) -> list[float]:
    """beta_0 = 0 < ... < beta_steps = 1, spaced as a sigmoid: dense at both ends, where the
    distributions change fastest (Grosse et al., 2015). Chapter 7."""
    check_integers(steps=steps)
    check_numbers(delta=delta)
    s = torch.sigmoid(delta * torch.linspace(-1, 1, steps + 1, dtype=torch.float64))
    return ((s - s[0]) / (s[-1] - s[0])).tolist()


@dataclass
class AnnealingPath:
    """The geometric path from q0 = N(mean, diag(exp(log_var))) to p(x, z): ``log_joint(z)``
    gives log p(x, z) for codes z of shape (chains, images, nz), one value per chain and image.
    Chapter 7."""

    log_joint: Callable[[torch.Tensor], torch.Tensor]
    mean: torch.Tensor
    log_var: torch.Tensor

    def log_initial(self, z: torch.Tensor) -> torch.Tensor:
        return log_normal_diag(z, self.mean, self.log_var)

    def grad_log_initial(self, z: torch.Tensor) -> torch.Tensor:
        return -(z - self.mean) / self.log_var.exp()

    def joint_and_grad(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(x, z) and its gradient in z, by autograd (the model's weights are not touched)."""
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            value = self.log_joint(z)
            (grad,) = torch.autograd.grad(value.sum(), z)
        return value.detach(), grad

    def sample_initial(self, chains: int, generator: torch.Generator | None = None):
        noise = torch.randn(chains, *self.mean.shape, generator=generator,
                            dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + torch.exp(0.5 * self.log_var) * noise


def hmc_step(path: AnnealingPath, beta: float, z: torch.Tensor, joint: torch.Tensor,
             grad: torch.Tensor, step_size: torch.Tensor, leapfrog_steps: int = 2,
             generator: torch.Generator | None = None):
    """One Hamiltonian Monte Carlo transition that leaves f_beta invariant: fresh momentum
    p ~ N(0, I), ``leapfrog_steps`` leapfrog steps of size ``step_size``, and a Metropolis test
    on the change of log f_beta(z) - |p|^2 / 2. ``joint`` and ``grad`` are log p(x, z) and its
    gradient at ``z``. Returns the new (z, joint, grad) and which chains accepted. Chapter 7."""

    def log_f(z, joint):
        return (1 - beta) * path.log_initial(z) + beta * joint

    def grad_f(z, grad):
        return (1 - beta) * path.grad_log_initial(z) + beta * grad

    momentum = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)
    z_new, joint_new, grad_new = z, joint, grad
    p = momentum + 0.5 * step_size * grad_f(z, grad)
    for step in range(leapfrog_steps):
        z_new = z_new + step_size * p
        joint_new, grad_new = path.joint_and_grad(z_new)
        p = p + (step_size if step < leapfrog_steps - 1 else 0.5 * step_size) * grad_f(
            z_new, grad_new)
    log_accept = (log_f(z_new, joint_new) - 0.5 * p.pow(2).sum(-1)
                  - log_f(z, joint) + 0.5 * momentum.pow(2).sum(-1))
    u = torch.rand(log_accept.shape, generator=generator, dtype=z.dtype, device=z.device)
    accept = u.log() < log_accept
    z = torch.where(accept[..., None], z_new, z)
    joint = torch.where(accept, joint_new, joint)
    grad = torch.where(accept[..., None], grad_new, grad)
    return z, joint, grad, accept


@dataclass
class Annealed:
    """What a chain returns: ``log_w`` (chains, images), the final codes ``z``, the mean
    acceptance rate over all steps and chains, and ``step_sizes`` (steps, images, 1), the step
    size of each transition. ``estimate`` is log of the average weight per image: the AIS
    estimate of log p(x) for a forward chain. Chapter 7."""

    log_w: torch.Tensor
    z: torch.Tensor
    acceptance: float
    step_sizes: torch.Tensor

    @property
    def estimate(self) -> torch.Tensor:
        return iw_bound(self.log_w)


def anneal(path: AnnealingPath, z: torch.Tensor, betas, step_size: float | torch.Tensor = 0.05,
           leapfrog_steps: int = 2, adapt: bool = True,
           generator: torch.Generator | None = None) -> Annealed:
    """Run chains from ``z`` along ``betas`` (a sequence from one end of the path to the other):
    for each next beta, add (beta - beta_prev) (log p(x, z) - log q0(z)) to the log-weight, then
    take one HMC step that leaves f_beta invariant. Increasing betas from 0 to 1 is AIS; the same
    betas reversed, started at exact posterior samples, is the reverse chain of BDMC.
    ``step_size`` is a number (each image's first step size, then adapted if ``adapt``) or a
    tensor (steps, images, 1) that fixes every transition's step size (no adaptation). Chapter 7.
    """
    betas = [float(beta) for beta in betas]
    if len(betas) < 2 or {betas[0], betas[-1]} != {0.0, 1.0}:
        raise ValueError("betas must run from 0 to 1 or from 1 to 0, with at least two values.")
    check_integers(leapfrog_steps=leapfrog_steps)
    if z.ndim != 3 or z.shape[1:] != path.mean.shape:
        raise ValueError(f"z must have shape (chains, {', '.join(map(str, path.mean.shape))}),"
                         f" not {tuple(z.shape)}.")
    schedule = None
    if isinstance(step_size, torch.Tensor):
        if step_size.shape != (len(betas) - 1, z.shape[1], 1):
            raise ValueError(f"a step_size schedule must have shape ({len(betas) - 1}, "
                             f"{z.shape[1]}, 1), not {tuple(step_size.shape)}.")
        schedule = step_size.to(dtype=z.dtype, device=z.device)
    else:
        check_numbers(step_size=step_size)
    joint, grad = path.joint_and_grad(z)
    log_w = torch.zeros(z.shape[:2], dtype=z.dtype, device=z.device)
    eps = torch.full((z.shape[1], 1), float(step_size) if schedule is None else 0.0,
                     dtype=z.dtype, device=z.device)
    accepted, used = 0.0, []
    for index, (beta_prev, beta) in enumerate(zip(betas[:-1], betas[1:])):
        if schedule is not None:
            eps = schedule[index]
        used.append(eps)
        log_w = log_w + (beta - beta_prev) * (joint - path.log_initial(z))
        z, joint, grad, accept = hmc_step(path, beta, z, joint, grad, eps, leapfrog_steps,
                                          generator)
        rate = accept.to(z.dtype).mean(0)[:, None]
        accepted += float(rate.mean())
        if adapt and schedule is None:
            eps = eps * torch.where(rate > TARGET_ACCEPTANCE, RATE, 1 / RATE)
    return Annealed(log_w, z, accepted / (len(betas) - 1), torch.stack(used))


def vae_path(model, x: torch.Tensor, start: str = "encoder") -> AnnealingPath:
    """The path for images ``x`` (images, nx) of an unconditional model with prior N(0, I):
    log p(x, z) = log p(x | z) + log p(z) under the model's own pixel likelihood, starting at
    the encoder's q(z | x) (``start="encoder"``) or at the prior (``"prior"``). Chapter 7."""
    if start not in ("encoder", "prior"):
        raise ValueError(f"start must be 'encoder' or 'prior', not {start!r}.")
    if model.conditional:
        raise ValueError("AIS here needs an unconditional model.")

    def log_joint(z):
        return model.log_likelihood(x.expand(len(z), -1, -1), model.decode(z)) \
            + log_standard_normal(z)

    if start == "prior":
        mean = torch.zeros(len(x), model.nz, dtype=x.dtype, device=x.device)
        return AnnealingPath(log_joint, mean, torch.zeros_like(mean))
    with torch.no_grad():
        mean, log_var = model.encode(x)
    return AnnealingPath(log_joint, mean, log_var)


def ais_log_likelihood(model, x: torch.Tensor, steps: int, chains: int = 4,
                       start: str = "encoder", generator: torch.Generator | None = None,
                       **options) -> Annealed:
    """AIS from q0 to the posterior of each image of ``x`` with ``steps`` intermediate
    distributions (a sigmoid schedule) and ``chains`` chains per image. ``.estimate`` is the AIS
    estimate of log p(x) per image, a stochastic lower bound; ``options`` go to ``anneal``
    (``step_size``, ``leapfrog_steps``, ``adapt``). Chapter 7."""
    check_integers(steps=steps, chains=chains)
    path = vae_path(model, x, start)
    z = path.sample_initial(chains, generator)
    return anneal(path, z, sigmoid_schedule(steps), generator=generator, **options)


@torch.no_grad()
def simulate_data(model, n: int, generator: torch.Generator | None = None):
    """``n`` images drawn from the model, x ~ p(x | z) with z ~ p(z), and their codes z: each z is
    an exact sample of the posterior p(z | x) of its image (chapter 7)."""
    check_integers(n=n)
    device = next(model.parameters()).device
    z = torch.randn(n, model.nz, generator=generator, device=device)
    return model.likelihood.sample(model.decode(z), generator=generator), z


def bdmc(model, x: torch.Tensor, z_exact: torch.Tensor, steps: int, chains: int = 4,
         start: str = "encoder", generator: torch.Generator | None = None,
         leapfrog_steps: int = 2, **options):
    """Bidirectional Monte Carlo on simulated images ``x`` whose codes ``z_exact`` are exact
    posterior samples (``simulate_data``): the forward AIS chain's lower estimate and the reverse
    chain's upper estimate of log p(x), per image, as ``(lower, upper)``. The reverse chain starts
    ``chains`` copies at ``z_exact`` and runs the same schedule from beta = 1 down to 0, each
    transition with the step size the forward chain used at the same beta (fixed in advance: no
    adaptation); its weights estimate 1/p(x), so minus the log of their average is a stochastic
    upper bound. Both tighten as ``steps`` grows, and the truth lies between them in expectation.
    ``options`` (``step_size``, ``adapt``) go to the forward chain. Chapter 7."""
    if z_exact.shape != (len(x), model.nz):
        raise ValueError(f"z_exact must have shape ({len(x)}, {model.nz}).")
    forward = ais_log_likelihood(model, x, steps, chains, start, generator,
                                 leapfrog_steps=leapfrog_steps, **options)
    # Reverse transition j targets beta_(T-1-j), which the forward chain's transition T-2-j did;
    # the last one (at beta = 0) has no forward twin and changes no weight.
    sizes = forward.step_sizes
    backward_sizes = torch.cat([sizes[:-1].flip(0), sizes[:1]])
    path = vae_path(model, x, start)
    reverse = anneal(path, z_exact.expand(chains, -1, -1).clone(),
                     sigmoid_schedule(steps)[::-1], backward_sizes, leapfrog_steps,
                     generator=generator)
    return forward.estimate, -reverse.estimate

