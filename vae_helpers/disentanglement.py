"""Measuring disentanglement against known factors, and the KL term taken apart.

- The **Mutual Information Gap** (Chen et al. 2018): for each factor v_k, the gap between the
  two latent dimensions that carry the most information about it, divided by its entropy,
  averaged over the factors. Codes are binned (20 equal-width bins per dimension by default)
  and the mutual information of the discrete pairs is computed from their joint histogram.
- The **decomposition of the average KL** (Hoffman & Johnson 2016; Chen et al. 2018) into
  index-code mutual information, total correlation and dimension-wise KL, estimated on a
  minibatch by weighting its members (as in Chen et al.'s minibatch sampling estimators), and the
  beta-TCVAE objective that weights only the total correlation.
"""

from __future__ import annotations

import math

import torch

from .adam import adam_epochs
from .errors import check_integers, check_numbers
from .model import LatentVariableModel

TERMS = ("mutual_information", "total_correlation", "dimensionwise_kl")


def _check_integer_columns(values: torch.Tensor, name: str) -> None:
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, not {type(values).__name__}.")
    if values.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8) \
            or values.ndim != 2:
        raise ValueError(f"{name} must be a 2-D integer tensor (examples, columns), not "
                         f"{values.dtype} with shape {tuple(values.shape)}.")
    if values.shape[0] < 2 or values.shape[1] < 1:
        raise ValueError(f"{name} needs at least two examples and one column, "
                         f"not shape {tuple(values.shape)}.")
    if bool((values < 0).any()):
        raise ValueError(f"{name} must hold non-negative levels.")


def discretize(codes: torch.Tensor, bins: int = 20) -> torch.Tensor:
    """Each column of ``codes`` (N, d) cut into ``bins`` equal-width bins between its minimum
    and maximum: integer levels 0 .. bins - 1 (a constant column is all 0) (chapter 13)."""
    if not isinstance(codes, torch.Tensor) or not torch.is_floating_point(codes):
        raise TypeError("codes must be a floating-point torch.Tensor.")
    if codes.ndim != 2 or codes.shape[0] < 2:
        raise ValueError(f"codes must have shape (examples >= 2, dimensions), "
                         f"not {tuple(codes.shape)}.")
    if not bool(torch.isfinite(codes).all()):
        raise ValueError("codes contains NaN or infinite values.")
    check_integers(2, bins=bins)
    low, high = codes.min(0).values, codes.max(0).values
    width = torch.where(high > low, (high - low) / bins, torch.ones_like(high))
    return ((codes - low) / width).floor().clamp(0, bins - 1).long()


def entropy(levels: torch.Tensor) -> torch.Tensor:
    """The entropy in nats of each column of the integer (N, k) ``levels``, from its counts.
    Chapter 2."""
    _check_integer_columns(levels, "levels")
    result = []
    for column in levels.cpu().T:
        p = torch.bincount(column.long()).double() / len(column)
        p = p[p > 0]
        result.append(-(p * p.log()).sum())
    return torch.stack(result)


def mutual_information_matrix(codes: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """I(c_j; v_k) in nats for every column j of the integer ``codes`` (N, d) and every column k
    of the integer ``factors`` (N, K): a (d, K) float64 matrix, from the joint histograms.
    Chapter 13."""
    _check_integer_columns(codes, "codes")
    _check_integer_columns(factors, "factors")
    if codes.shape[0] != factors.shape[0]:
        raise ValueError(f"codes and factors need the same number of examples, not "
                         f"{codes.shape[0]} and {factors.shape[0]}.")
    n = codes.shape[0]
    codes, factors = codes.cpu(), factors.cpu()  # small histograms: counted on the CPU
    result = torch.zeros(codes.shape[1], factors.shape[1], dtype=torch.float64)
    for j, c in enumerate(codes.T.long()):
        p_c = torch.bincount(c).double() / n
        for k, v in enumerate(factors.T.long()):
            size = int(v.max()) + 1
            joint = torch.bincount(c * size + v, minlength=len(p_c) * size).double() / n
            joint = joint.reshape(len(p_c), size)
            p_v = joint.sum(0)
            outer = p_c[:, None] * p_v[None, :]
            used = joint > 0
            result[j, k] = (joint[used] * (joint[used] / outer[used]).log()).sum()
    return result.clamp(min=0)


def mutual_information_gap(codes: torch.Tensor, factors: torch.Tensor, bins: int = 20) -> float:
    """MIG: the mean over factors v_k of (I(c_top; v_k) - I(c_second; v_k)) / H(v_k), with the
    continuous ``codes`` (N, d >= 2), e.g. posterior means, binned by ``discretize``. It is 1 for
    a code that holds each factor in one dimension of its own and 0 when none does (chapter 13)."""
    binned = discretize(codes, bins)
    if binned.shape[1] < 2:
        raise ValueError("codes needs at least two dimensions for a gap between the top two.")
    information = mutual_information_matrix(binned, factors)
    factor_entropy = entropy(factors)
    if bool((factor_entropy <= 0).any()):
        raise ValueError("every factor must vary: a constant factor has zero entropy.")
    top_two = information.topk(2, dim=0).values
    return float(((top_two[0] - top_two[1]) / factor_entropy).mean())


def _check_posterior(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor,
                     dataset_size: int) -> None:
    for name, value in (("z", z), ("mu", mu), ("log_var", log_var)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, not {type(value).__name__}.")
    if z.ndim != 2 or mu.shape != z.shape or log_var.shape != z.shape:
        raise ValueError(f"z, mu and log_var must share one (batch, nz) shape, not "
                         f"{tuple(z.shape)}, {tuple(mu.shape)}, {tuple(log_var.shape)}.")
    if z.shape[0] < 2:
        raise ValueError("the estimate needs a batch of at least two examples.")
    check_integers(z.shape[0], dataset_size=dataset_size)  # at least the batch


def aggregate_log_densities(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor,
                            dataset_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Minibatch estimates of log q(z_i) and of sum_j log q(z_ij), the aggregate posterior and
    its marginals at each draw z_i (M, nz) of q(z | x_i) = N(mu_i, exp(log_var_i)).

    q(z_i) = (1/N) sum_n q(z_i | x_n) over the ``dataset_size`` = N training images is estimated
    from the batch by weighting: x_i's own term gets weight 1/N, each of the M - 1 others
    (N - 1) / (N (M - 1)), which makes the estimate of q(z_i) unbiased over random batches, and
    exact when the batch is the whole data set (M = N). Chapter 13.
    """
    _check_posterior(z, mu, log_var, dataset_size)
    m, n = z.shape[0], dataset_size
    # log q(z_i,j | x_m) for every pair (i, m) and dimension j: (M, M, nz)
    pairs = -0.5 * (math.log(2 * math.pi) + log_var[None] +
                    (z[:, None] - mu[None]).pow(2) / log_var.exp()[None])
    log_weights = torch.full((m, m), math.log((n - 1) / (n * (m - 1))), dtype=z.dtype,
                             device=z.device)
    log_weights.fill_diagonal_(-math.log(n))
    return (torch.logsumexp(pairs.sum(2) + log_weights, dim=1),
            torch.logsumexp(pairs + log_weights[:, :, None], dim=1).sum(1))


def kl_decomposition(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor,
                     dataset_size: int) -> dict[str, torch.Tensor]:
    """The three terms of the average KL(q(z|x) || N(0, I)), estimated on one minibatch with
    ``aggregate_log_densities``: differentiable scalars ``mutual_information``
    E[log q(z|x) - log q(z)], ``total_correlation`` E[log q(z) - sum_j log q(z_j)] and
    ``dimensionwise_kl`` E[sum_j log q(z_j) - log p(z_j)], whose sum is the Monte Carlo
    estimate E[log q(z|x) - log p(z)] of the average KL. Chapter 13.
    """
    log_q_z, log_q_marginals = aggregate_log_densities(z, mu, log_var, dataset_size)
    log_q_z_given_x = -0.5 * (math.log(2 * math.pi) + log_var +
                              (z - mu).pow(2) / log_var.exp()).sum(1)
    log_p_z = -0.5 * (math.log(2 * math.pi) + z.pow(2)).sum(1)
    return {"mutual_information": (log_q_z_given_x - log_q_z).mean(),
            "total_correlation": (log_q_z - log_q_marginals).mean(),
            "dimensionwise_kl": (log_q_marginals - log_p_z).mean()}


@torch.no_grad()
def estimate_kl_decomposition(model: LatentVariableModel, data, batch_size: int = 1000,
                              seed: int = 0) -> dict[str, float]:
    """``kl_decomposition`` averaged over the batches of ``data`` (an MNIST split or ``Shapes``),
    with N = len(data): one z per image, drawn with ``seed``, in nats per image (chapter 13)."""
    check_integers(2, batch_size=batch_size)
    generator = torch.Generator(device=data.device).manual_seed(seed)
    totals = dict.fromkeys(TERMS, 0.0)
    for start in range(0, len(data) - batch_size + 1, batch_size):
        mu, log_var = model.encode(data.images[start:start + batch_size])
        noise = torch.randn(mu.shape, generator=generator, device=mu.device)
        terms = kl_decomposition(mu + (0.5 * log_var).exp() * noise, mu, log_var, len(data))
        for name in TERMS:
            totals[name] += float(terms[name])
    batches = len(data) // batch_size
    if batches == 0:
        raise ValueError(f"data holds {len(data)} examples, fewer than one batch ({batch_size}).")
    return {name: total / batches for name, total in totals.items()}


def beta_tc_loss(model: LatentVariableModel, x: torch.Tensor, dataset_size: int,
                 beta: float) -> torch.Tensor:
    """The beta-TCVAE objective summed over the batch ``x``: reconstruction plus the KL's three
    terms with only the total correlation weighted by ``beta`` (beta = 1 is the -ELBO, up to the
    minibatch estimate of the KL) (chapter 13)."""
    check_numbers(strict=False, beta=beta)
    mu, log_var = model.encode(x)
    z = model.reparameterize(mu, log_var)
    reconstruction = -model.log_likelihood(x, model.decode(z)).sum()
    terms = kl_decomposition(z, mu, log_var, dataset_size)
    kl = terms["mutual_information"] + beta * terms["total_correlation"] + \
        terms["dimensionwise_kl"]
    return reconstruction + len(x) * kl


def fit_beta_tc(model: LatentVariableModel, data, epochs: int = 5, beta: float = 6.0,
                batch_size: int = 256, lr: float = 1e-3, seed: int = 0) -> list[float]:
    """Train ``model`` on ``data`` with ``beta_tc_loss`` (Adam, shuffled batches from ``seed``)
    and return the average loss per image of each epoch (chapter 13)."""
    check_integers(epochs=epochs)
    check_integers(2, batch_size=batch_size)  # the estimate compares pairs
    model.to(data.device).train()
    torch.manual_seed(seed)
    order = torch.Generator(device=data.device).manual_seed(seed)
    losses = adam_epochs(model, data.images, lambda x: beta_tc_loss(model, x, len(data), beta),
                         epochs, batch_size, lr, order, min_batch=2)
    model.eval()
    return losses
