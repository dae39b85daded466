import numpy as np
import pytest
import torch
from conftest import in_ci

from vae_helpers import VAE, ConditionalVAE, ConvVAE, export_onnx


@pytest.fixture(scope="module")
def onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        if in_ci():
            pytest.fail("onnxruntime is missing: pip install -r requirements.txt")
        pytest.skip("onnxruntime is missing: pip install -r requirements.txt")
    return onnxruntime


def _session(onnxruntime, path):
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("kind", [VAE, ConditionalVAE, ConvVAE])
def test_exported_networks_compute_what_pytorch_computes(kind, tmp_path, onnxruntime):
    torch.manual_seed(0)
    model = kind(nh=32).eval()
    paths = export_onnx(model, tmp_path, "model")
    assert {p.name for p in paths.values()} == {"model_encoder.onnx", "model_decoder.onnx"}
    x, z, y = torch.rand(5, 784), torch.randn(7, 2), torch.arange(7) % 10
    label = (y[:5],) if model.conditional else ()
    with torch.no_grad():
        mu, log_var = model.encode(x, *label)
        pixels = model.probabilities(z, *((y,) if model.conditional else ()))
    feed = {"x": x.numpy(), **({"y": y[:5].numpy()} if model.conditional else {})}
    got_mu, got_log_var = _session(onnxruntime, paths["encoder"]).run(["mu", "log_var"], feed)
    feed = {"z": z.numpy(), **({"y": y.numpy()} if model.conditional else {})}
    (got_pixels,) = _session(onnxruntime, paths["decoder"]).run(["pixels"], feed)
    for got, expected in ((got_mu, mu), (got_log_var, log_var), (got_pixels, pixels)):
        assert got.shape == tuple(expected.shape)
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-5, rtol=0)


def test_the_label_reaches_the_exported_decoder(tmp_path, onnxruntime):
    torch.manual_seed(0)
    paths = export_onnx(ConditionalVAE(nh=16), tmp_path, "cvae")
    decoder = _session(onnxruntime, paths["decoder"])
    z = np.zeros((2, 2), dtype=np.float32)
    (pixels,) = decoder.run(None, {"z": z, "y": np.array([3, 8])})
    assert not np.allclose(pixels[0], pixels[1])


def test_export_leaves_the_model_as_it_was(tmp_path):
    model = VAE(nh=8).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(model, tmp_path / "new" / "folder", "vae")
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert (tmp_path / "new" / "folder" / "vae_decoder.onnx").is_file()


def test_export_rejects_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="model must be a vae_helpers model, not Linear"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path, "vae")
    for name in ("", "../vae", "my model", None):
        with pytest.raises(ValueError, match="name must be letters"):
            export_onnx(VAE(nh=8), tmp_path, name)


def test_export_hides_its_own_warnings_only(tmp_path):
    import warnings

    class Noisy(VAE):
        def probabilities(self, z, *label):
            warnings.warn("a warning of the model's own", UserWarning, stacklevel=2)
            return super().probabilities(z, *label)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the tracer's and the exporter's warnings stay hidden
        export_onnx(VAE(nh=8), tmp_path, "quiet")
    with pytest.warns(UserWarning, match="a warning of the model's own"):
        export_onnx(Noisy(nh=8), tmp_path, "noisy")


def test_the_exported_denoiser_predicts_what_pytorch_predicts(tmp_path, onnxruntime):
    from vae_helpers import LatentDiffusion, export_denoiser

    torch.manual_seed(0)
    prior = LatentDiffusion(5, steps=30, nh=16)
    path = export_denoiser(prior, tmp_path, "ddpm")
    assert path == tmp_path / "ddpm_denoiser.onnx"
    z, t = torch.randn(9, 5), torch.arange(1, 10) * 3
    with torch.no_grad():
        expected = prior.denoiser(z, t)
    (got,) = _session(onnxruntime, path).run(["eps"], {"z": z.numpy(),
                                                       "t": t.float().numpy()})
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5, rtol=0)
    with pytest.raises(TypeError, match="prior must be a LatentDiffusion"):
        export_denoiser(VAE(nh=8), tmp_path, "ddpm")
    with pytest.raises(ValueError, match="name must be letters"):
        export_denoiser(prior, tmp_path, "../ddpm")


def test_export_writes_only_the_parts_asked(tmp_path):
    paths = export_onnx(VAE(nh=8), tmp_path, "vae", parts=("decoder",))
    assert list(paths) == ["decoder"] and [p.name for p in tmp_path.iterdir()] == [
        "vae_decoder.onnx"]
    with pytest.raises(ValueError, match="parts must name"):
        export_onnx(VAE(nh=8), tmp_path, "vae", parts=("prior",))
