"""The autoregressive VAE: each pixel sees only the pixels before it; the delta-VAE cap."""

import pytest
import torch

from vae_helpers import AutoregressiveVAE, committed_rate_log_var, kl_to_standard_normal


def test_each_logit_depends_only_on_earlier_pixels():
    torch.manual_seed(0)
    model = AutoregressiveVAE(nx=6, nh=4, nz=2)
    with torch.no_grad():
        model.autoregressive.weight.normal_()
    z = torch.randn(2)
    jacobian = torch.autograd.functional.jacobian(lambda x: model.decode(z, x[None])[0],
                                                  torch.rand(6))
    assert torch.equal(jacobian != 0, torch.ones(6, 6).tril(-1).bool())


def test_forward_shapes_and_samples_are_pixels():
    torch.manual_seed(0)
    model = AutoregressiveVAE(nx=10, nh=8, nz=3)
    logits, mu, log_var = model(torch.rand(5, 10))
    assert logits.shape == (5, 10) and mu.shape == log_var.shape == (5, 3)
    draws = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (4, 10) and set(draws.unique().tolist()) <= {0.0, 1.0}
    means = model.sample(4, pixels="mean")
    assert bool(((means > 0) & (means < 1)).all())
    with pytest.raises(ValueError, match="pixels"):
        model.sample(2, pixels="bad")


def test_committed_rate_cap_gives_kl_of_at_least_delta():
    for delta in (0.05, 0.2, 1.0):
        cap = committed_rate_log_var(delta)
        at_cap = kl_to_standard_normal(torch.zeros(1, 1), torch.full((1, 1), cap))
        assert abs(float(at_cap) - delta) < 1e-6
    torch.manual_seed(0)
    model = AutoregressiveVAE(nx=12, nh=8, nz=4, delta=0.2)
    with torch.no_grad():
        model.encoder_log_var.bias.fill_(5.0)  # would ask for variances far above 1
    mu, log_var = model.encode(torch.rand(100, 12))
    kl = kl_to_standard_normal(mu.unsqueeze(-1), log_var.unsqueeze(-1))
    assert bool((log_var <= model.max_log_var).all()) and bool((kl >= 0.2 - 1e-5).all())
    assert model.config == {"nx": 12, "nh": 8, "nz": 4, "delta": 0.2}


def test_param_groups_give_the_autoregressive_weights_their_own_rate():
    model = AutoregressiveVAE(nx=6, nh=4, nz=2)
    rest, autoregressive = model.param_groups(1e-3, 5e-2)
    assert autoregressive["params"] == [model.autoregressive.weight]
    assert autoregressive["lr"] == 5e-2 and rest["lr"] == 1e-3
    assert len(rest["params"]) + 1 == len(list(model.parameters()))


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="delta"):
        AutoregressiveVAE(delta=-1.0)
    with pytest.raises(ValueError, match="delta"):
        committed_rate_log_var(0.0)
    with pytest.raises(ValueError, match="nz"):
        AutoregressiveVAE(nz=0)
