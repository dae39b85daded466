import base64
import json
import re

import pytest
import torch

from vae_helpers import VAE, LatentExplorer
from vae_helpers.widgets import MAP_AXES, MAP_PIXELS


@pytest.fixture
def explorer(mnist_test):
    torch.manual_seed(0)
    return LatentExplorer(VAE(nh=32), mnist_test, steps=5)


def test_moving_a_slider_redraws_the_digit_as_decode_z(explorer):
    explorer.live()
    before_digit, before_map = explorer.digit_image.value, explorer.map_image.value
    explorer.z1_slider.value = 1.5
    explorer.z2_slider.value = -0.5
    assert explorer.digit_image.value != before_digit
    assert explorer.map_image.value != before_map
    assert explorer.digit_image.value == explorer.digit_png(1.5, -0.5)


def test_digit_png_shows_the_decoders_pixel_means(explorer):
    from io import BytesIO

    from PIL import Image

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


def test_static_html_holds_one_frame_per_grid_point(explorer):
    html = explorer.static_html().data
    config = json.loads(re.search(r'class="latent-frames">(.*?)</script>', html).group(1))
    assert config["steps"] == 5 and len(config["frames"]) == 25
    values = explorer.grid_values().tolist()
    frame = config["frames"][3 * 5 + 1]  # i2 = 3, i1 = 1
    assert base64.b64decode(frame) == explorer.digit_png(values[1], values[3], scale=1)
    assert "http" not in html  # nothing to fetch


def test_explorer_needs_a_two_dimensional_latent():
    with pytest.raises(ValueError, match="2-D latent space .nz=2., not nz=3"):
        LatentExplorer(VAE(nh=8, nz=3))
