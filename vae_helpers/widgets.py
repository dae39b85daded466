"""Latent sliders: decode (z1, z2) live in a kernel, or from pre-decoded frames with no kernel.

One ``LatentExplorer`` serves both. ``live()`` returns ipywidgets (two sliders, the decoded digit
and the latent map with the current z marked) that work in Jupyter and Colab. ``static_html()``
decodes a grid of z once and returns self-contained HTML/JS that switches between those frames
in the browser, so the sliders also work on a static web page. For a conditional model both add
a digit selector, and the frames cover every digit.
"""

from __future__ import annotations

import base64
import io
import json
import uuid

import matplotlib.pyplot as plt
import torch
from PIL import Image, ImageDraw

from .data import IMAGE_SIDE, MNIST
from .model import LatentVariableModel
from .plots import figure_png, scatter_codes

MAP_PIXELS = 300
DIGIT_SCALE = 6
# Where the plotting box sits in the map picture, as fractions (left, bottom, width, height):
# the margins hold the axes' ticks and labels, and keep the marker whole at the corners.
MAP_AXES = (0.16, 0.14, 0.8, 0.8)


class LatentExplorer:
    """Sliders over the 2-D latent plane [-limit, limit]^2 of a trained ``model``."""

    def __init__(self, model: LatentVariableModel, data: MNIST | None = None, limit: float = 3.0,
                 steps: int = 21, n_points: int = 3000) -> None:
        if model.nz != 2:
            raise ValueError(f"Latent sliders need a 2-D latent space (nz=2), not nz={model.nz}.")
        if steps < 2:
            raise ValueError(f"steps must be at least 2, not {steps}.")
        self.model, self.limit, self.steps = model, float(limit), steps
        self.digits = list(range(model.n_classes)) if model.conditional else [None]
        self.device = next(model.parameters()).device
        self._map_png = self._render_map(data, n_points)
        self._map = Image.open(io.BytesIO(self._map_png)).convert("RGB")

    def grid_values(self) -> torch.Tensor:
        """The ``steps`` values each slider takes in the static page."""
        return torch.linspace(-self.limit, self.limit, self.steps)

    def _render_map(self, data: MNIST | None, n_points: int) -> bytes:
        fig = plt.figure(figsize=(3, 3), dpi=MAP_PIXELS / 3)
        ax = fig.add_axes(MAP_AXES)
        ax.axhline(0, color="0.85", lw=0.8)
        ax.axvline(0, color="0.85", lw=0.8)
        if data is not None:
            scatter_codes(ax, self.model, data, n_points, size=2)
        ax.set_xlim(-self.limit, self.limit)
        ax.set_ylim(-self.limit, self.limit)
        ax.set_xlabel("$z_1$", fontsize=8, labelpad=1)
        ax.set_ylabel("$z_2$", fontsize=8, labelpad=1)
        ax.tick_params(labelsize=7, length=2, pad=1)
        return figure_png(fig, dpi=MAP_PIXELS / 3)

    def marker_fraction(self, z1: float, z2: float) -> tuple[float, float]:
        """Where z sits on the map picture, as fractions of its width (from the left) and
        height (from the top); the plotting box is ``MAP_AXES`` of the picture."""
        left, bottom, width, height = MAP_AXES
        span = 2 * self.limit
        return (left + width * (z1 + self.limit) / span,
                1 - bottom - height * (z2 + self.limit) / span)

    @torch.no_grad()
    def digit_png(self, z1: float, z2: float, digit: int | None = None,
                  scale: int = DIGIT_SCALE) -> bytes:
        """PNG of the decoder's pixel means at z = (z1, z2) (and ``digit``, if conditional),
        enlarged ``scale`` times without blurring."""
        z = torch.tensor([[z1, z2]], dtype=torch.float32, device=self.device)
        labels = torch.full((1,), digit or 0, device=self.device)  # ignored if unconditional
        pixels = self.model.probabilities(z, *self.model.given(labels))
        pixels = pixels.reshape(IMAGE_SIDE, IMAGE_SIDE)
        image = Image.fromarray((pixels * 255).round().byte().cpu().numpy(), mode="L")
        size = IMAGE_SIDE * scale
        return _png(image.resize((size, size), Image.NEAREST))

    def map_png(self, z1: float, z2: float) -> bytes:
        """PNG of the latent map with the current z marked by a red ring."""
        image = self._map.copy()
        fx, fy = self.marker_fraction(z1, z2)
        x, y, r = fx * image.width, fy * image.height, 7
        ImageDraw.Draw(image).ellipse((x - r, y - r, x + r, y + r), outline="red", width=3)
        return _png(image)

    def live(self):
        """ipywidgets for a kernel: moving a slider decodes its z and moves the marker."""
        import ipywidgets as widgets

        def slider(label: str):
            return widgets.FloatSlider(value=0.0, min=-self.limit, max=self.limit, step=0.05,
                                       description=label, continuous_update=True)

        self.z1_slider, self.z2_slider = slider("z₁"), slider("z₂")
        self.digit_selector = widgets.ToggleButtons(
            options=self.digits, value=self.digits[0], description="digit",
            style={"button_width": "28px"}) if self.model.conditional else None
        self.map_image = widgets.Image(format="png", width=MAP_PIXELS, height=MAP_PIXELS)
        self.digit_image = widgets.Image(format="png", width=168, height=168)
        self.update()
        controls = [self.z1_slider, self.z2_slider]
        if self.digit_selector is not None:
            controls.append(self.digit_selector)
        for control in controls:
            control.observe(lambda change: self.update(), names="value")
        return widgets.VBox([widgets.HBox([self.map_image, self.digit_image]), *controls])

    def update(self) -> None:
        """The callback: decode the sliders' z (and selected digit) and move the marker."""
        z1, z2 = self.z1_slider.value, self.z2_slider.value
        digit = self.digit_selector.value if self.digit_selector is not None else None
        self.digit_image.value = self.digit_png(z1, z2, digit)
        self.map_image.value = self.map_png(z1, z2)

    def frames(self) -> list[str]:
        """Base64 28x28 PNGs of the decoded grid, index = (digit * steps + i2) * steps + i1."""
        values = self.grid_values().tolist()
        return [base64.b64encode(self.digit_png(z1, z2, digit, scale=1)).decode("ascii")
                for digit in self.digits for z2 in values for z1 in values]

    def static_html(self):
        """Self-contained HTML/JS sliders over pre-decoded frames: no kernel, no network."""
        from IPython.display import HTML

        uid = f"vae-explorer-{uuid.uuid4().hex[:8]}"
        middle = self.steps // 2
        config = {"steps": self.steps, "limit": self.limit, "frames": self.frames(),
                  "axes": MAP_AXES}
        map_src = "data:image/png;base64," + base64.b64encode(self._map_png).decode("ascii")
        sliders = "".join(
            f'<label style="display:block">{name} <input type="range" class="{cls}" min="0" '
            f'max="{self.steps - 1}" step="1" value="{middle}" style="width:260px"> '
            f'<output class="{cls}-value"></output></label>'
            for name, cls in (("z₁", "z1"), ("z₂", "z2"))
        )
        if self.model.conditional:
            options = "".join(f'<option value="{d}">{d}</option>' for d in self.digits)
            sliders += ('<label style="display:block">digit '
                        f'<select class="digit">{options}</select></label>')

        return HTML(_STATIC_TEMPLATE.format(
            uid=uid, map_src=map_src, size=MAP_PIXELS, sliders=sliders,
            digit_size=IMAGE_SIDE * DIGIT_SCALE, config=json.dumps(config)))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


_STATIC_TEMPLATE = """
<div id="{uid}" class="vae-latent-explorer" style="font-family:sans-serif">
  <div style="display:flex;gap:16px;align-items:center;flex-wrap:wrap">
    <div style="position:relative;width:{size}px;height:{size}px;border:1px solid #ccc">
      <img class="latent-map" alt="latent map" src="{map_src}" width="{size}" height="{size}">
      <div class="latent-marker" style="position:absolute;width:14px;height:14px;
        margin:-9px 0 0 -9px;border:3px solid red;border-radius:50%"></div>
    </div>
    <img class="latent-digit" alt="decoded digit" width="{digit_size}" height="{digit_size}"
      style="image-rendering:pixelated;border:1px solid #ccc">
  </div>
  {sliders}
  <script type="application/json" class="latent-frames">{config}</script>
  <script>
  (function () {{
    var root = document.getElementById("{uid}");
    var config = JSON.parse(root.querySelector(".latent-frames").textContent);
    var n = config.steps, limit = config.limit;
    var s1 = root.querySelector("input.z1"), s2 = root.querySelector("input.z2");
    var digitSelect = root.querySelector("select.digit");
    var digit = root.querySelector(".latent-digit"), marker = root.querySelector(".latent-marker");
    function z(i) {{ return -limit + 2 * limit * i / (n - 1); }}
    function show() {{
      var d = digitSelect ? Number(digitSelect.value) : 0;
      var i1 = Number(s1.value), i2 = Number(s2.value), frame = (d * n + i2) * n + i1;
      digit.src = "data:image/png;base64," + config.frames[frame];
      digit.dataset.frame = frame;
      var box = config.axes;  // left, bottom, width, height of the plotting box
      marker.style.left = (100 * (box[0] + box[2] * i1 / (n - 1))) + "%";
      marker.style.top = (100 * (1 - box[1] - box[3] * i2 / (n - 1))) + "%";
      root.querySelector(".z1-value").textContent = z(i1).toFixed(2);
      root.querySelector(".z2-value").textContent = z(i2).toFixed(2);
    }}
    s1.addEventListener("input", show);
    s2.addEventListener("input", show);
    if (digitSelect) digitSelect.addEventListener("change", show);
    show();
  }})();
  </script>
</div>
"""
