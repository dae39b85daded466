"""Flows' log-determinants against autograd's Jacobians, and the full-covariance Gaussian
against torch.distributions."""

import pytest
import torch
from torch.autograd.functional import jacobian

from vae_helpers import (
    VAE,
    FlowVAE,
    IAFStep,
    PlanarStep,
    log_normal_full,
    log_weights,
    planar_flow,
    scale_tril,
)
from vae_helpers.losses import log_standard_normal

DOUBLE = torch.float64


def log_abs_det(function, z: torch.Tensor) -> torch.Tensor:
    """log |det J| of ``function`` (R^n -> R^n) at the point ``z``, from autograd's Jacobian."""
    return torch.linalg.slogdet(jacobian(function, z))[1]


def test_scale_tril_is_lower_triangular_with_the_given_diagonal():
    generator = torch.Generator().manual_seed(0)
    log_diagonal = torch.randn(5, 4, generator=generator)
    off = torch.randn(5, 6, generator=generator)
    factor = scale_tril(log_diagonal, off)
    assert torch.equal(factor, factor.tril())
    assert torch.allclose(factor.diagonal(dim1=-2, dim2=-1), log_diagonal.exp())
    rows, columns = torch.tril_indices(4, 4, offset=-1)
    assert torch.equal(factor[:, rows, columns], off)
    with pytest.raises(ValueError, match="off_diagonal needs 6"):
        scale_tril(log_diagonal, off[:, :5])


def test_log_normal_full_is_torchs_multivariate_normal():
    generator = torch.Generator().manual_seed(1)
    mu = torch.randn(7, 3, generator=generator, dtype=DOUBLE)
    factor = scale_tril(torch.randn(7, 3, generator=generator, dtype=DOUBLE),
                        torch.randn(7, 3, generator=generator, dtype=DOUBLE))
    z = torch.randn(4, 7, 3, generator=generator, dtype=DOUBLE)
    expected = torch.distributions.MultivariateNormal(mu, scale_tril=factor).log_prob(z)
    assert torch.allclose(log_normal_full(z, mu, factor), expected)


def test_planar_log_det_is_autograds_and_the_step_stays_invertible():
    generator = torch.Generator().manual_seed(2)
    for trial in range(5):
        u, w, z = (torch.randn(3, generator=generator, dtype=DOUBLE) for _ in range(3))
        if trial == 0:
            u = -5 * w  # w.u far below -1: u_hat must repair it
        b = torch.randn((), generator=generator, dtype=DOUBLE)
        moved, log_det = planar_flow(z, u, w, b)
        def step(v, u=u, w=w, b=b):
            return planar_flow(v, u, w, b)[0]

        assert torch.allclose(log_det, log_abs_det(step, z))
        wu = (w * u).sum()
        u_hat = u + (torch.nn.functional.softplus(wu) - 1 - wu) * w / w.pow(2).sum()
        assert (w * u_hat).sum() > -1
        assert torch.allclose(moved, z + u_hat * torch.tanh((w * z).sum() + b))


def test_planar_and_iaf_steps_start_as_the_identity():
    torch.manual_seed(0)
    z, h = torch.randn(3, 5, 4), torch.randn(5, 8)
    for step in (PlanarStep(nh=8, nz=4), IAFStep(nz=4, hidden=16, context=8)):
        moved, log_det = step(z, h)
        assert torch.allclose(moved, z, atol=1e-6) and torch.allclose(log_det, torch.zeros(3, 5),
                                                                        atol=1e-6)


@pytest.mark.parametrize("reverse", [False, True])
def test_iaf_jacobian_is_triangular_and_its_log_det_is_autograds(reverse):
    torch.manual_seed(3)
    step = IAFStep(nz=4, hidden=12, context=5, reverse=reverse).double()
    with torch.no_grad():  # away from the identity start
        step.output_layer.weight.normal_(0, 0.5)
        step.output_layer.bias.normal_(0, 0.5)
    z, h = torch.randn(4, dtype=DOUBLE), torch.randn(5, dtype=DOUBLE)
    jac = jacobian(lambda v: step(v, h)[0], z)
    if reverse:  # the same in the reversed order: output j depends on inputs after j only
        jac = jac.flip(-1).flip(-2)
    assert torch.equal(jac, jac.tril()), "output j must not depend on inputs after j"
    assert not torch.allclose(jac, torch.diag(jac.diagonal()))  # and does depend on earlier
    assert torch.allclose(step(z, h)[1], log_abs_det(lambda v: step(v, h)[0], z))


def test_iaf_without_context_and_its_argument_checks():
    step = IAFStep(nz=2, hidden=4)
    assert step(torch.zeros(6, 2))[0].shape == (6, 2)
    with pytest.raises(ValueError, match="nz >= 2"):
        IAFStep(nz=1)


def _flow_vae(seed: int) -> FlowVAE:
    torch.manual_seed(seed)
    model = FlowVAE(nx=6, nh=5, nz=3, full_covariance=True,
                    steps=[PlanarStep(5, 3), IAFStep(3, 8, context=5),
                           IAFStep(3, 8, context=5, reverse=True)]).double()
    with torch.no_grad():  # every piece away from its identity start
        for name, parameter in model.named_parameters():
            if "off_diagonal" in name or "output_layer" in name or "parameters_from_h" in name:
                parameter.normal_(0, 0.3)
    return model


def test_flow_vae_log_q_is_the_change_of_variables_of_the_whole_map():
    model = _flow_vae(4)
    x = torch.rand(1, 6, dtype=DOUBLE)
    eps = torch.randn(1, 1, 3, dtype=DOUBLE)
    z, log_q = model.posterior(x, eps=eps)

    def to_code(e):
        return model.posterior(x, eps=e.reshape(1, 1, 3))[0].reshape(3)

    expected = log_standard_normal(eps) - log_abs_det(to_code, eps.reshape(3))
    assert torch.allclose(log_q, expected)


def test_full_covariance_posterior_is_a_multivariate_normal():
    model = FlowVAE(nx=6, nh=5, nz=3, full_covariance=True).double()
    with torch.no_grad():
        model.encoder_off_diagonal.weight.normal_()
        model.encoder_off_diagonal.bias.normal_()
    x = torch.rand(4, 6, dtype=DOUBLE)
    z, log_q = model.posterior(x, k=10)
    h = torch.relu(model.encoder_hidden(x))
    mu, log_var = model.encoder_mu(h), model.encoder_log_var(h)
    factor = scale_tril(0.5 * log_var, model.encoder_off_diagonal(h))
    q = torch.distributions.MultivariateNormal(mu, scale_tril=factor)
    assert torch.allclose(log_q, q.log_prob(z))
    assert not torch.allclose(factor, factor.diagonal(dim1=-2, dim2=-1).diag_embed())


def test_flow_vae_without_steps_is_the_vae_it_was_loaded_from():
    torch.manual_seed(5)
    vae = VAE(nh=16, nz=3)
    model = FlowVAE(nh=16, nz=3, full_covariance=True, steps=[PlanarStep(16, 3)])
    missing = model.load_state_dict(vae.state_dict(), strict=False).missing_keys
    assert all(name.startswith("encoder_") for name in missing)
    x = torch.rand(4, 784).round()
    torch.manual_seed(6)
    ours = model.log_weights(x, k=7)
    torch.manual_seed(6)
    with torch.no_grad():
        theirs = log_weights(vae, x, (), *vae.encode(x), k=7)
    assert torch.allclose(ours, theirs, atol=1e-4)
