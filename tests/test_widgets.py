import base64
import json
import re
from io import BytesIO
from pathlib import Path

import pytest
import torch
from PIL import Image

from vae_helpers import VAE, ConditionalVAE, DiffusionExplorer, LatentDiffusion, LatentExplorer
from vae_helpers.widgets import MAP_AXES, MAP_PIXELS, PAGE

ROOT = Path(__file__).resolve().parents[1]
CLASSES = PAGE["classes"]


@pytest.fixture
def explorer(mnist_test):
    torch.manual_seed(0)
    return LatentExplorer(VAE(nh=32), mnist_test)


def _config(html: str) -> dict:
    return json.loads(re.search(rf'class="{CLASSES["config"]}">(.*?)</script>', html).group(1))


def test_moving_a_slider_redraws_the_digit_as_decode_z(explorer):
    explorer.live()
    before_digit, before_map = explorer.digit_image.value, explorer.map_image.value
    explorer.z1_slider.value = 1.5
    explorer.z2_slider.value = -0.5
    assert explorer.digit_image.value != before_digit
    assert explorer.map_image.value != before_map
    assert explorer.digit_image.value == explorer.digit_png(1.5, -0.5)


def test_digit_png_shows_the_decoders_pixel_means(explorer):
    image = Image.open(BytesIO(explorer.digit_png(0.3, -1.2, scale=1)))
    assert image.mode == "L" and image.size == (28, 28)
    pixels = torch.tensor(list(image.tobytes()), dtype=torch.float32).reshape(1, 784) / 255
    expected = explorer.model.probabilities(torch.tensor([[0.3, -1.2]]))
    assert torch.allclose(pixels, expected, atol=1 / 255)


def test_marker_fraction_maps_the_square_to_the_plotting_box(explorer):
    left, bottom, width, height = MAP_AXES
    assert explorer.marker_fraction(-3, 3) == pytest.approx((left, 1 - bottom - height))
    assert explorer.marker_fraction(3, -3) == pytest.approx((left + width, 1 - bottom))
    ring = 10 / MAP_PIXELS  # the ring's radius plus its line, as a fraction of the picture
    for corner in ((-3, -3), (-3, 3), (3, -3), (3, 3)):
        assert all(ring <= f <= 1 - ring for f in explorer.marker_fraction(*corner))


def test_static_html_exports_the_model_and_names_its_files(explorer, tmp_path):
    html = explorer.static_html("vae", folder=tmp_path / "models").data
    config = _config(html)
    assert config["models"] == {"encoder": f"{tmp_path}/models/vae_encoder.onnx",
                                "decoder": f"{tmp_path}/models/vae_decoder.onnx"}
    # The two networks the page runs, and nothing else (no file for tests only).
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
        "vae_decoder.onnx", "vae_encoder.onnx"]
    assert config["limit"] == 3.0 and not config["conditional"]
    assert config["page"] == PAGE  # the page script reads the names from here
    assert "http" not in html.replace("http.server", "").replace("http://localhost", "")
    assert "<select" not in html.split(CLASSES["interpolation"])[0]  # no digit selector


def test_static_html_carries_one_test_digit_per_class(explorer, mnist_test, tmp_path):
    digits = _config(explorer.static_html("vae", folder=tmp_path).data)["testDigits"]
    assert [d["label"] for d in digits] == list(range(10))
    first_seven = mnist_test.images[(mnist_test.labels == 7).nonzero()[0, 0]]
    pixels = torch.tensor(list(base64.b64decode(digits[7]["pixels"])), dtype=torch.float32)
    assert torch.allclose(pixels / 255, first_seven, atol=0.5 / 255)


def test_fallback_picture_shows_decoded_codes(explorer, tmp_path):
    html = explorer.static_html("vae", folder=tmp_path).data
    assert "WebAssembly" in html
    src = re.search(r'<img alt="decoded digits[^"]*" src="data:image/png;base64,([^"]+)"', html)
    image = Image.open(BytesIO(base64.b64decode(src.group(1))))
    assert image.size == (9 * 30 + 2, 9 * 30 + 2)  # 9 x 9 digits of 28 px, 2 px apart
    middle = torch.tensor(list(image.crop((122, 122, 150, 150)).tobytes()), dtype=torch.float32)
    with torch.no_grad():
        expected = explorer.model.probabilities(torch.zeros(1, 2))[0]
    assert torch.allclose(middle / 255, expected, atol=1 / 255)


def test_a_conditional_explorer_has_a_digit_selector(mnist_test, tmp_path):
    torch.manual_seed(0)
    explorer = LatentExplorer(ConditionalVAE(nh=16), mnist_test)
    html = explorer.static_html("cvae", folder=tmp_path).data
    assert _config(html)["conditional"] and _config(html)["digits"] == list(range(10))
    assert html.count('<option value=') == 10
    image = Image.open(BytesIO(explorer.fallback_png(columns=5)))
    assert image.size == (5 * 30 + 2, 10 * 30 + 2)  # one row per digit


def test_explorer_needs_a_two_dimensional_latent():
    with pytest.raises(ValueError, match="2-D latent space .nz=2., not nz=3"):
        LatentExplorer(VAE(nh=8, nz=3))
    with pytest.raises(ValueError, match="limit must be a positive number, not 0"):
        LatentExplorer(VAE(nh=8), limit=0)


@pytest.mark.parametrize("options, words", [
    ({"limit": float("inf")}, "limit must be a positive number, not inf"),
    ({"limit": float("nan")}, "limit must be a positive number, not nan"),
    ({"n_points": 0}, "n_points must be a positive integer, not 0"),
    ({"n_points": 2.5}, "n_points must be a positive integer, not 2.5"),
])
def test_explorer_names_each_bad_argument(options, words):
    with pytest.raises(ValueError, match=words):
        LatentExplorer(VAE(nh=8), **options)


def test_explorer_checks_the_images_it_maps():
    from vae_helpers import MNIST

    with pytest.raises(ValueError, match=r"data.images must have shape \(batch, 784\)"):
        LatentExplorer(VAE(nh=8), MNIST(torch.rand(5, 10), torch.zeros(5, dtype=torch.long)))


def test_without_onnx_the_page_part_is_the_picture_and_a_pointer_to_live(explorer, tmp_path,
                                                                          monkeypatch):
    """Colab has no onnx package: the cell still runs, shows decoded codes and says why."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnx" else real(name, *a))
    monkeypatch.chdir(tmp_path)
    html = explorer.static_html("no_onnx").data
    assert "explorer.live()" in html and "<img" in html and "onnx" in html
    assert not (tmp_path / "browser_models").exists()


def test_the_legend_gives_each_digit_the_color_of_its_points_on_the_map(explorer):
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    # scatter_codes colors digit d with tab10's d-th color (vmin=-0.5, vmax=9.5).
    assert explorer.legend == [(d, to_hex(colormaps["tab10"](d))) for d in range(10)]
    html = explorer.legend_html()
    assert html.startswith(f'<div class="{CLASSES["legend"]}"')
    assert [int(d) for d in re.findall(r"</span>(\d)</span>", html)] == list(range(10))
    assert re.findall(r"background: (#[0-9a-f]{6})", html) == [c for _, c in explorer.legend]
    # The map picture shows those colors (its points' edges blend into the white around).
    picture = torch.tensor(list(Image.open(BytesIO(explorer._map_png)).convert("RGB").tobytes()))
    picture = picture.reshape(-1, 3)
    for _, color in explorer.legend:
        rgb = torch.tensor([int(color[i:i + 2], 16) for i in (1, 3, 5)])
        assert (picture - rgb).abs().amax(1).min() <= 30, color


def test_the_live_explorer_shows_the_legend_and_a_map_without_data_has_none(explorer):
    import ipywidgets as widgets

    box = explorer.live()
    legends = [w for w in box.children if isinstance(w, widgets.HTML)]
    assert len(legends) == 1 and legends[0].value == explorer.legend_html()
    bare = LatentExplorer(VAE(nh=8))
    assert bare.legend == [] and bare.legend_html() == ""
    assert not [w for w in bare.live().children if isinstance(w, widgets.HTML)]


# The page part's contract: vae_helpers.widgets.PAGE names every class; the HTML, the page
# script and the style sheet use those names and no others.
SCRIPT = ROOT / "book" / "_static" / "latent_explorer.js"
STYLES = ROOT / "book" / "_static" / "book.css"


def test_the_page_html_uses_the_contract_classes_only(explorer, mnist_test, tmp_path):
    torch.manual_seed(0)
    conditional = LatentExplorer(ConditionalVAE(nh=16), mnist_test)
    used = set()
    for model, name in ((explorer, "vae"), (conditional, "cvae"), (_diffusion(), "ddpm")):
        html = model.static_html(name, folder=tmp_path).data
        used |= {c for value in re.findall(r'class="([^"]*)"', html) for c in value.split()}
    assert used <= set(CLASSES.values()), used - set(CLASSES.values())
    # Every class but the one the script sets on <html> is on the page.
    assert set(CLASSES.values()) - used == {CLASSES["touch-on-screen"]}


def test_the_page_script_finds_the_parts_by_their_contract_names():
    script = SCRIPT.read_text()
    assert re.search(r'const ROOT = "([^"]+)"', script)[1] == CLASSES["root"]
    roles = set(re.findall(r'find\("([\w-]+)"\)', script))
    roles |= {f"z{i}-value" for i in (1, 2)} if "find(`z${i + 1}-value`)" in script else set()
    roles |= set(re.findall(r'config\.page\.classes\["([\w-]+)"\]', script))
    assert roles and roles <= set(CLASSES), roles - set(CLASSES)
    assert "explorer-" not in script  # no class written into the script
    assert set(re.findall(r"properties\.(\w+)", script)) == set(PAGE["properties"])


def test_the_style_sheet_styles_contract_classes_only():
    selectors = re.findall(r"\.((?:vae-|explorer-)[\w-]+)", STYLES.read_text())
    assert selectors and set(selectors) <= set(CLASSES.values()), (
        set(selectors) - set(CLASSES.values()))


def _diffusion(n=3, steps=6, nz=4):
    torch.manual_seed(0)
    return DiffusionExplorer(LatentDiffusion(nz, steps=steps, nh=16), VAE(nh=16, nz=nz), n=n)


def test_the_diffusion_explorer_decodes_every_step_of_its_chains():
    explorer = _diffusion()
    prior, vae = explorer.prior, explorer.vae
    assert explorer.frames.shape == (7, 3, 784)
    # The same chains again, from the same seed: prior.sample's, decoded.
    path = prior.sample(3, torch.Generator().manual_seed(0), trajectory=True)
    with torch.no_grad():
        expected = vae.probabilities(path.reshape(-1, 4)).reshape(7, 3, 784)
    assert torch.allclose(explorer.frames, expected)
    before = explorer.frames.clone()
    explorer.sample()
    assert not torch.allclose(explorer.frames, before)  # new chains
    picture = Image.open(BytesIO(explorer.frames_png([0, 6])))
    assert picture.size == (2 * (2 * 30 + 2), 2 * (3 * 30 + 2))  # 2 steps across, 3 chains down


def test_the_diffusion_page_carries_the_schedule_and_its_two_networks(tmp_path):
    explorer = _diffusion()
    html = explorer.static_html("ddpm", folder=tmp_path).data
    config = _config(html)
    assert config["kind"] == "diffusion" and (config["n"], config["nz"], config["steps"]) == (
        3, 4, 6)
    assert config["models"] == {"denoiser": f"{tmp_path}/ddpm_denoiser.onnx",
                                "decoder": f"{tmp_path}/ddpm_decoder.onnx"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddpm_decoder.onnx",
                                                           "ddpm_denoiser.onnx"]
    for key, buffer in (("betas", "betas"), ("alphas", "alphas"), ("alphaBars", "alpha_bars"),
                        ("variances", "variances")):
        assert config["schedule"][key] == getattr(explorer.prior, buffer).tolist()
    assert html.count("<canvas") == 3 and 'max="6"' in html
    assert "data:image/png;base64," in html  # the picture shown until the model runs


def test_the_diffusion_explorer_refuses_a_vae_that_does_not_fit_its_prior():
    prior = LatentDiffusion(4, steps=5, nh=8)
    with pytest.raises(ValueError, match="nz = 4"):
        DiffusionExplorer(prior, VAE(nh=8, nz=2))
    with pytest.raises(ValueError, match="unconditional"):
        DiffusionExplorer(prior, ConditionalVAE(nh=8, nz=4))
    with pytest.raises(TypeError, match="prior must be a LatentDiffusion"):
        DiffusionExplorer(VAE(nh=8, nz=4), VAE(nh=8, nz=4))


def test_the_live_diffusion_explorer_follows_its_slider_and_button():
    explorer = _diffusion()
    box = explorer.live()
    image, (slider, caption, button) = box.children[0], box.children[1].children
    assert caption.value.startswith("t = 0") and image.value == explorer.frames_png([6], 3)
    slider.value = 0
    assert caption.value == "t = 6" and image.value == explorer.frames_png([0], 3)
    before = explorer.frames.clone()
    button.click()
    assert not torch.equal(before, explorer.frames)


def test_the_page_part_offers_its_picture_to_outputs_that_cannot_run_it(tmp_path):
    """HTML for the web book; for the PDF book (which shows no HTML) the picture instead."""
    explorer = _diffusion()
    part = explorer.static_html("ddpm", folder=tmp_path)
    bundle = part._repr_mimebundle_()
    assert bundle["text/html"] == part.data
    png = base64.b64decode(bundle["image/png"])
    assert png == part.png and Image.open(BytesIO(png)).size[0] > 0
    assert "web book" in bundle["text/plain"]
