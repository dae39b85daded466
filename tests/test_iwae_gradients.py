"""STL and DReG: same value as the plain IWAE loss, the decoder's gradient unchanged, STL's
encoder gradient short of the plain one by exactly the score term, DReG's equal to its
written-out form and unbiased."""

import math
from functools import partial

import pytest
import torch
from torch import nn

from vae_helpers import VAE, dreg_loss, estimator_snr, gradient_snr, iwae_loss, stl_loss
from vae_helpers.losses import LOG_2PI, log_normal_diag
from vae_helpers.model import LatentVariableModel

NOISE = 0.7  # the tiny model's pixel noise


class TinyGaussianModel(LatentVariableModel):
    """p(z) = N(0, I_2), p(x|z) = N(W z + b, NOISE^2 I_3); q(z|x_n) = N(mu_n, e^{log_var_n}) with
    one free (mu_n, log_var_n) per image of a fixed batch: d log w / d z is known in closed form,
    and the encoder's parameters are q's parameters themselves."""

    def __init__(self, batch: int) -> None:
        super().__init__()
        self.nx, self.nz = 3, 2
        generator = torch.Generator().manual_seed(0)
        self.encoder_mu = nn.Parameter(torch.randn(batch, 2, generator=generator,
                                                   dtype=torch.float64))
        self.encoder_log_var = nn.Parameter(-1 + 0.3 * torch.randn(
            batch, 2, generator=generator, dtype=torch.float64))
        self.decoder = nn.Linear(2, 3).double()

    def encode(self, x):
        return self.encoder_mu, self.encoder_log_var

    def decode(self, z):
        return self.decoder(z)

    def log_likelihood(self, x, mean):
        return -0.5 * (((x - mean) / NOISE).pow(2) + LOG_2PI + 2 * math.log(NOISE)).sum(-1)


def _tiny(batch: int = 4):
    torch.manual_seed(1)
    model = TinyGaussianModel(batch)
    x = torch.randn(batch, 3, dtype=torch.float64)
    return model, x


def _gradients(model, loss, x, seed):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    value = loss(model, x)
    value.backward()
    return value.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("k", [1, 5])
def test_same_value_as_iwae_and_the_decoder_gradient_unchanged(k):
    model, x = _tiny()
    plain_value, plain = _gradients(model, partial(iwae_loss, k=k), x, seed=2)
    for loss in (stl_loss, dreg_loss):
        value, grads = _gradients(model, partial(loss, k=k), x, seed=2)
        assert torch.allclose(value, plain_value)
        for name in ("decoder.weight", "decoder.bias"):
            assert torch.allclose(grads[name], plain[name])


def test_stl_drops_exactly_the_score_term():
    model, x = _tiny()
    k = 6
    _, plain = _gradients(model, partial(iwae_loss, k=k), x, seed=3)
    _, stl = _gradients(model, partial(stl_loss, k=k), x, seed=3)
    # The score term, written out: the gradient of -sum_i w~_i log q_phi(z_i | x), z_i held fixed.
    torch.manual_seed(3)
    mu, log_var = model.encode(x)
    z = (mu + torch.exp(0.5 * log_var) * torch.randn(k, *mu.shape)).detach()
    log_w = (model.log_likelihood(x, model.decode(z)) - 0.5 * (LOG_2PI + z.pow(2)).sum(-1)
             - log_normal_diag(z, mu, log_var)).detach()
    score = -(torch.softmax(log_w, 0) * log_normal_diag(z, mu, log_var)).sum()
    model.zero_grad(set_to_none=True)
    score.backward()
    for name in ("encoder_mu", "encoder_log_var"):
        difference = plain[name] - stl[name]
        assert difference.abs().max() > 1e-3  # the term is not negligible here
        assert torch.allclose(difference, -model.get_parameter(name).grad)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_dreg_encoder_gradient_is_its_written_out_form(k):
    model, x = _tiny()
    _, dreg = _gradients(model, partial(dreg_loss, k=k), x, seed=4)
    torch.manual_seed(4)
    with torch.no_grad():
        mu, log_var = model.encoder_mu, model.encoder_log_var
        sigma = torch.exp(0.5 * log_var)
        eps = torch.randn(k, *mu.shape).double()  # drawn as the losses draw it
        z = mu + sigma * eps
        weight, bias = model.decoder.weight, model.decoder.bias
        residual = x - z @ weight.T - bias
        log_w = (model.log_likelihood(x, z @ weight.T + bias) - 0.5 * (LOG_2PI + z.pow(2)).sum(-1)
                 - log_normal_diag(z, mu, log_var))
        # d log w / d z with q's parameters fixed, in closed form for this model.
        d_log_w = residual @ weight / NOISE**2 - z + (z - mu) / sigma.pow(2)
        squared = torch.softmax(log_w, 0).pow(2).unsqueeze(-1)
        # d z / d mu = 1 and d z / d log_var = sigma eps / 2; the loss is -L_k.
        expected_mu = -(squared * d_log_w).sum(0)
        expected_log_var = -(squared * d_log_w * 0.5 * sigma * eps).sum(0)
    assert torch.allclose(dreg["encoder_mu"], expected_mu)
    assert torch.allclose(dreg["encoder_log_var"], expected_log_var)


def test_dreg_is_unbiased_and_stl_is_not_for_k_above_one():
    """Averaged over many draws, DReG's encoder gradient matches the plain estimator's (both
    unbiased for grad L_k); STL's differs by more than its noise (Tucker et al., 2019). The
    draws are the rows of one batch: many copies of one image, each with the same q."""
    k, repeats = 4, 4000
    model, x = _tiny(batch=repeats)
    with torch.no_grad():  # a q wider than the posterior: weights far from equal
        model.encoder_mu.copy_(model.encoder_mu[:1].expand(repeats, -1))
        model.encoder_log_var.copy_(model.encoder_log_var[:1].expand(repeats, -1) + 1.5)
    x = x[:1].expand(repeats, -1)
    means, errors = {}, {}
    for name, loss in (("plain", iwae_loss), ("stl", stl_loss), ("dreg", dreg_loss)):
        _, grads = _gradients(model, partial(loss, k=k), x, seed=5)
        draws = torch.cat([grads["encoder_mu"], grads["encoder_log_var"]], -1)
        means[name], errors[name] = draws.mean(0), draws.std(0) / math.sqrt(repeats)

    def standard_errors_apart(a, b):
        return (means[a] - means[b]).abs() / (errors[a] ** 2 + errors[b] ** 2).sqrt()

    assert (standard_errors_apart("dreg", "plain") < 4).all()
    assert (standard_errors_apart("stl", "plain") > 6).any()
    assert (errors["dreg"] < errors["plain"]).all()  # and less noisy


def test_dreg_refuses_beta_other_than_one():
    model, x = _tiny()
    with pytest.raises(ValueError, match="beta = 1"):
        dreg_loss(model, x, beta=0.5)


def test_estimator_snr_of_the_plain_loss_is_gradient_snr():
    torch.manual_seed(0)
    model = VAE(nx=20, nh=16, nz=4)
    x = torch.rand(8, 20).round()
    torch.manual_seed(7)
    ours = estimator_snr(partial(iwae_loss, k=5), model, x, repeats=6)
    torch.manual_seed(7)
    theirs = gradient_snr(model, x, 5, repeats=6)
    assert ours == theirs
    torch.manual_seed(7)
    assert estimator_snr(partial(dreg_loss, k=5), model, x, repeats=6) != theirs
    with pytest.raises(ValueError, match="repeats"):
        estimator_snr(iwae_loss, model, x, repeats=1)
