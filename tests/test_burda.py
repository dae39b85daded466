"""benchmarks/burda.py: Burda et al.'s models and schedule, which benchmarks/literature_table.py
trains for the appendix "How close to the literature"."""

import argparse
import functools
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from vae_helpers import ImageSet, count_parameters, fit, iw_log_likelihood, iwae_loss

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from burda import (  # noqa: E402
    PASSES,
    BurdaVAE,
    burda_learning_rate,
    burda_optimizer,
    burda_two_layer_vae,
    learning_rate_schedule,
    set_output_bias,
    stage_ends,
)


def test_schedule_is_3_to_the_i_passes_at_a_falling_rate():
    assert PASSES == 3280
    assert stage_ends() == [1, 4, 13, 40, 121, 364, 1093, 3280]
    assert stage_ends(40) == [1, 4, 13, 40] and stage_ends(39) == [1, 4, 13]
    expected = {1: 0, 2: 1, 4: 1, 5: 2, 13: 2, 14: 3, 1093: 6, 1094: 7, 3280: 7, 5000: 7}
    for epoch, stage in expected.items():
        assert math.isclose(burda_learning_rate(epoch), 1e-3 * 10 ** (-stage / 7))
    assert math.isclose(burda_learning_rate(PASSES), 1e-4)
    with pytest.raises(ValueError, match="epoch must be a positive integer"):
        burda_learning_rate(0)


def test_architecture_and_initialization():
    torch.manual_seed(0)
    model = BurdaVAE()
    assert model.config == {"nx": 784, "nh": 200, "nz": 50, "depth": 2}
    assert count_parameters(model) == (784 * 200 + 200 + 200 * 200 + 200 + 2 * (200 * 50 + 50)
                                       + 50 * 200 + 200 + 200 * 200 + 200 + 200 * 784 + 784)
    assert sum(isinstance(m, nn.Tanh) for m in model.modules()) == 4
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    for layer in (m for m in model.modules() if isinstance(m, nn.Linear)):
        bound = math.sqrt(6 / (layer.in_features + layer.out_features))
        assert layer.weight.abs().max() <= bound
        assert layer.weight.abs().max() > 0.9 * bound  # uniform up to the bound, not smaller
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    logits, mu, log_var = model(torch.rand(3, 784))
    assert logits.shape == (3, 784) and mu.shape == log_var.shape == (3, 50)


def test_output_bias_is_the_logit_of_the_mean_pixel():
    model = BurdaVAE(nh=16, nz=4)
    images = torch.rand(100, 784) ** 3
    images[:, 0] = 0.0  # a pixel that is never on: clipped to 0.001
    set_output_bias(model.decoder_logits, images)
    expected = images.mean(0).clamp(0.001, 0.999)
    assert torch.allclose(torch.sigmoid(model.decoder_logits.bias), expected, atol=1e-6)
    with pytest.raises(ValueError):
        set_output_bias(model.decoder_logits, torch.rand(5, 10))


def test_adam_settings_and_the_schedule_in_fit(mnist_train):
    torch.manual_seed(0)
    model = BurdaVAE(nh=32, nz=8)
    optimizer = burda_optimizer(model)
    group = optimizer.param_groups[0]
    assert group["betas"] == (0.9, 0.999) and group["eps"] == 1e-4 and group["lr"] == 1e-3
    rates = []
    schedule = learning_rate_schedule(optimizer)

    def on_epoch(history):
        rates.append(optimizer.param_groups[0]["lr"])  # the rate this pass used
        schedule(history)

    data = mnist_train[:400]
    set_output_bias(model.decoder_logits, data.images)
    history = fit(model, data, epochs=5, batch_size=20, optimizer=optimizer, progress=False,
                  pixels="binarized", loss=functools.partial(iwae_loss, k=5), on_epoch=on_epoch)
    assert rates == [burda_learning_rate(e) for e in range(1, 6)]
    assert rates[0] > rates[1] == rates[3] > rates[4]
    assert history.train_loss[-1] < history.train_loss[0]
    test = data[:20].drawn("binarized")
    torch.manual_seed(0)
    assert iw_log_likelihood(model, test, 50) > iw_log_likelihood(model, test, 1)


def test_two_layer_model_is_chapter_16s_with_tanh():
    hierarchical = pytest.importorskip("vae_helpers.hierarchical")
    TwoLayerVAE = hierarchical.TwoLayerVAE

    torch.manual_seed(0)
    model = burda_two_layer_vae()
    assert isinstance(model, TwoLayerVAE)
    assert sum(isinstance(m, nn.Tanh) for m in model.modules()) == 8
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    relu = TwoLayerVAE()
    relu.load_state_dict(model.state_dict())  # same parameters, same names
    x = (torch.rand(4, 784) < 0.3).float()
    z1 = torch.randn(4, model.nz1)
    hidden, output = model.decoder_x
    by_hand = output(torch.tanh(hidden[2](torch.tanh(hidden[0](z1)))))
    assert torch.allclose(model.decode(z1), by_hand, atol=1e-6)
    assert not torch.allclose(model.decode(z1), relu.decode(z1))
    set_output_bias(model.decoder_x[-1], x)
    value = hierarchical.hierarchical_log_likelihood(model, ImageSet(x, torch.zeros(4)), 10)
    assert math.isfinite(value)


def _run(k: int, seed: int, score: float, epochs: int = 1) -> dict:
    """A recorded run of benchmarks/literature_table.py, without the training."""
    return {"layers": 1, "objective": "VAE" if k == 1 else "IWAE", "k": k, "seed": seed,
            "epochs": epochs, "training_seconds": 10.0 + seed, "L_5000": score,
            "elbo": score - 8, "elbo_all_test": score - 10,
            "curve": [{"epochs": epochs, "L_5000": score}]}


def test_literature_table_rows_and_records(tmp_path):
    import literature_table

    runs = [_run(1, 0, -110.0), _run(1, 1, -112.0), _run(1, 2, -111.0), _run(5, 0, -108.0)]
    rows = literature_table.table(runs, 5000)
    assert [(r["objective"], r["k"], r["seeds"]) for r in rows] == [("VAE", 1, [0, 1, 2]),
                                                                    ("IWAE", 5, [0])]
    assert rows[0]["L_5000"] == [-111.0, 1.0] and rows[1]["L_5000"] == [-108.0, None]
    assert rows[0]["L_5000_all_test_estimate"] == [-113.0, 1.0]  # moved by the ELBO's shift
    assert rows[0]["published"] == -86.76 and rows[1]["published"] == -85.54

    path = tmp_path / "results.json"
    path.write_text('{"other_cpu": {"kept": true}}')
    args = argparse.Namespace(record=str(path), k_eval=5000)
    settings = {"test_images": 100}
    device = torch.device("cpu")
    literature_table.merged(runs[:2], settings, args, device, "first")
    figures = literature_table.merged([_run(1, 1, -100.0)], settings, args, device, "second")
    assert [(r["seed"], r["L_5000"]) for r in figures["runs"]] == [(0, -110.0), (1, -100.0)]
    assert figures["commands"] == ["first", "second"]
    figures = literature_table.merged([_run(1, 1, -100.0)], settings, args, device, "second")
    assert figures["commands"] == ["first", "second"]  # recorded again, listed once
    figures = literature_table.merged([_run(5, 0, -90.0)], {"test_images": 10}, args, device,
                                      "third")
    assert len(figures["runs"]) == 1 and figures["commands"] == ["third"]  # other settings
    saved = json.loads(path.read_text())
    assert saved["other_cpu"] == {"kept": True}
    assert saved["literature_table_cpu"]["runs"] == figures["runs"]


def test_vae_rows_with_k_draws_average_the_log_weights():
    """Burda et al.'s "VAE, k samples": the mean of the k log-weights, not L_k (their log of the
    mean): equal for k = 1, and by Jensen's inequality a larger loss for k > 1, draw for draw."""
    import literature_table

    torch.manual_seed(0)
    model = BurdaVAE(nh=16, nz=4)
    x = (torch.rand(6, 784) < 0.3).float()
    for k, relation in ((1, "equal"), (5, "larger")):
        torch.manual_seed(1)
        averaged = literature_table.averaged_elbo_loss(model, x, k=k)
        torch.manual_seed(1)
        iwae = iwae_loss(model, x, k=k)
        if relation == "equal":
            assert torch.allclose(averaged, iwae)
        else:
            assert averaged > iwae
