"""Latent sliders: decode (z1, z2) live in a kernel, or in the browser with no kernel at all.

One ``LatentExplorer`` serves both. ``live()`` returns ipywidgets (two sliders, the decoded digit
and the latent map with the current z marked) that work in Jupyter and Colab. ``static_html()``
exports the model's encoder and decoder as ONNX files and returns the HTML of an explorer that
runs them in the web page with ONNX Runtime Web (``book/_static/latent_explorer.js``): continuous
sliders, a draggable marker, a drawing pad whose digit the encoder places on the map, and
interpolation. For a conditional model both add a digit selector. Both show the map's legend.
``DiffusionExplorer`` does the same for chapter 16's latent diffusion prior: a step slider along
its reverse chain, decoded by the VAE, and a button that draws new chains.

``PAGE`` is the page part's contract, the one place its names live: the classes of its
elements and the properties the page script sets on the explorer element.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch
from matplotlib.colors import to_hex
from PIL import Image, ImageDraw

from .data import IMAGE_SIDE, MNIST, check_images
from .errors import check_integers, check_numbers
from .export import export_onnx
from .model import LatentVariableModel
from .plots import figure_png, scatter_codes

if TYPE_CHECKING:
    from .latent_diffusion import LatentDiffusion

MAP_PIXELS = 300
DIGIT_SCALE = 6
# Where the plotting box sits in the map picture, as fractions (left, bottom, width, height):
# the margins hold the axes' ticks and labels, and keep the marker whole at the corners.
MAP_AXES = (0.16, 0.14, 0.8, 0.8)
# Where static_html writes the ONNX files, relative to the notebook (and so to its page).
MODEL_FOLDER = "browser_models"
# The contract between the explorers' HTML, the page script (book/_static/latent_explorer.js),
# its styles (book/_static/book.css), the book's browser_models extension and the tests.
# "classes": each element's role -> its class. static_html writes the HTML with them and copies
# them into the explorer's settings, where the script reads them: the script knows only the
# root's class. "properties": what the script sets on the root element: a promise settled once
# the model runs or fails ("ready"); a function that starts the model at once and returns that
# promise ("start"; otherwise it starts when the explorer first comes into view or is touched,
# so that a reader who never gets there downloads nothing); and a small state object, replaced,
# never grown ("state": "failed", "startedMs", the time the model began to load, the time of the
# "firstImageMs"; for the latent explorer the last decoded view "last", the drawn digit's
# "encoding", the "strip", the "lastDecodeMs" and a count of "decodes"; for the diffusion
# explorer the "chain" drawn and the "last" row shown, "sample(noise)" to draw; and "idle()", a
# promise for the end of the queued work), which the tests and benchmarks/browser_explorer.py
# read.
PAGE = {
    "classes": {
        "root": "vae-latent-explorer", "config": "explorer-config",
        # Shown until the model runs: a picture of what the model makes and why it stands in:
        # no WebAssembly or scripts ("why"), a page opened as a file ("served"), or a model that
        # loads once the explorer comes into view or is touched ("loading").
        "fallback": "explorer-fallback", "why": "explorer-why", "served": "explorer-served",
        "loading": "explorer-loading",
        "live": "explorer-live", "row": "explorer-row", "controls": "explorer-controls",
        "map": "explorer-map", "marker": "explorer-marker", "ellipse": "explorer-ellipse",
        "legend": "explorer-legend", "decoded": "explorer-decoded",
        "z1": "explorer-z1", "z1-value": "explorer-z1-value",
        "z2": "explorer-z2", "z2-value": "explorer-z2-value",
        "digit-select": "explorer-digit-select",
        "pad": "explorer-pad", "clear": "explorer-clear", "input": "explorer-input",
        "reconstruction": "explorer-reconstruction", "encoding": "explorer-encoding",
        "interpolation": "explorer-interpolation", "from": "explorer-from", "to": "explorer-to",
        "steps": "explorer-steps", "interpolate": "explorer-interpolate",
        "strip": "explorer-strip", "status": "explorer-status",
        # The diffusion explorer's: the decoded chains at the slider's step, and the button.
        "frames": "explorer-frames", "step": "explorer-step", "step-value": "explorer-step-value",
        "sample": "explorer-sample",
        # On the page's <html> element while a map or a drawing pad, which take drags and
        # strokes, is on screen: the theme's "back to top" button, which floats over the page,
        # stays hidden then (book.css).
        "touch-on-screen": "vae-explorer-touch-on-screen",
    },
    "properties": {"ready": "vaeReady", "state": "vaeExplorer", "start": "vaeStart"},
}


class LatentExplorer:
    """Sliders over the 2-D latent plane [-limit, limit]^2 of a trained ``model``, taught in
    chapter 7 (used again in chapters 9 and 10)."""

    def __init__(self, model: LatentVariableModel, data: MNIST | None = None, limit: float = 3.0,
                 n_points: int = 3000) -> None:
        if model.nz != 2:
            raise ValueError(f"Latent sliders need a 2-D latent space (nz=2), not nz={model.nz}.")
        check_numbers(limit=limit)
        check_integers(n_points=n_points)
        if data is not None:
            check_images(data.images, model.nx, "data.images")
        self.model, self.data, self.limit = model, data, float(limit)
        self.digits = list(range(model.n_classes)) if model.conditional else [None]
        self.device = next(model.parameters()).device
        self._map_png = self._render_map(data, n_points)
        self._map = Image.open(io.BytesIO(self._map_png)).convert("RGB")

    def _render_map(self, data: MNIST | None, n_points: int) -> bytes:
        fig = plt.figure(figsize=(3, 3), dpi=MAP_PIXELS / 3)
        ax = fig.add_axes(MAP_AXES)
        ax.axhline(0, color="0.85", lw=0.8)
        ax.axvline(0, color="0.85", lw=0.8)
        self.legend = []  # (digit, color) of the map's points
        if data is not None:
            points = scatter_codes(ax, self.model, data, n_points, size=2)
            self.legend = [(int(d), to_hex(points.to_rgba(d)))
                           for d in sorted(set(points.get_array().tolist()))]
        ax.set_xlim(-self.limit, self.limit)
        ax.set_ylim(-self.limit, self.limit)
        ax.set_xlabel("$z_1$", fontsize=8, labelpad=1)
        ax.set_ylabel("$z_2$", fontsize=8, labelpad=1)
        ax.tick_params(labelsize=7, length=2, pad=1)
        return figure_png(fig, dpi=MAP_PIXELS / 3)

    def legend_html(self) -> str:
        """The map's legend: a colored dot and its digit for each digit on the map ("" without
        data). Styled inline, so that it reads the same in a notebook and in the book."""
        if not self.legend:
            return ""
        items = "".join(
            f'<span style="display: inline-flex; align-items: center; gap: 0.15em; '
            f'margin-right: 0.4em"><span style="display: inline-block; width: 0.7em; '
            f'height: 0.7em; border-radius: 50%; background: {color}"></span>{digit}</span>'
            for digit, color in self.legend)
        return (f'<div class="{PAGE["classes"]["legend"]}" style="font-size: 0.85rem; '
                f'max-width: {MAP_PIXELS}px">digit: {items}</div>')

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
        legend = [widgets.HTML(self.legend_html())] if self.legend else []
        return widgets.VBox([widgets.HBox([self.map_image, self.digit_image]), *legend,
                             *controls])

    def update(self) -> None:
        """The callback: decode the sliders' z (and selected digit) and move the marker."""
        z1, z2 = self.z1_slider.value, self.z2_slider.value
        digit = self.digit_selector.value if self.digit_selector is not None else None
        self.digit_image.value = self.digit_png(z1, z2, digit)
        self.map_image.value = self.map_png(z1, z2)

    @torch.no_grad()
    def fallback_png(self, columns: int = 9) -> bytes:
        """PNG of decoded digits for the page without WebAssembly: codes on a grid over the
        square (rows from z2 = limit down), or, for a conditional model, one row per digit with
        z1 across and z2 = 0."""
        from torchvision.utils import make_grid

        values = torch.linspace(-self.limit, self.limit, columns, device=self.device)
        if self.model.conditional:
            z = torch.stack([values, torch.zeros_like(values)], -1).repeat(len(self.digits), 1)
            labels = torch.arange(len(self.digits), device=self.device).repeat_interleave(columns)
            pixels = self.model.probabilities(z, labels)
        else:
            z2, z1 = torch.meshgrid(values.flip(0), values, indexing="ij")
            pixels = self.model.probabilities(torch.stack([z1, z2], -1).reshape(-1, 2))
        grid = make_grid(pixels.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE).cpu(), nrow=columns,
                         padding=2, pad_value=0.5)
        return _png(Image.fromarray((grid[0] * 255).round().byte().numpy(), mode="L"))

    def test_digits(self) -> list[dict]:
        """The first test image of each digit as base64 gray levels (784 bytes), with its label,
        for the page's interpolation; none without data."""
        if self.data is None:
            return []
        digits = []
        for label in range(10):
            index = int((self.data.labels == label).nonzero()[0, 0])
            pixels = (self.data.images[index] * 255).round().byte().cpu().numpy().tobytes()
            digits.append({"label": label, "pixels": base64.b64encode(pixels).decode("ascii")})
        return digits

    def static_html(self, name: str, folder: str | os.PathLike = MODEL_FOLDER):
        """The explorer for a page with no kernel: the model itself runs in the browser.

        Writes the encoder and decoder as ONNX (``export_onnx``) to ``folder`` (relative to
        the notebook; the book's ``browser_models`` extension publishes them beside the page),
        and returns HTML that ``book/_static/latent_explorer.js`` brings to life with ONNX
        Runtime Web: sliders, a draggable marker, a drawing pad and interpolation. Without
        WebAssembly, or opened as a file, the page keeps a picture of decoded codes
        (``fallback_png``) and says why.
        """
        alt = "decoded digits for codes on a grid"
        picture = self.fallback_png()
        if not _can_export():
            return _picture_only(picture, alt)
        paths = export_onnx(self.model, folder, name)
        config = {
            "page": PAGE, "limit": self.limit, "axes": MAP_AXES,
            "conditional": self.model.conditional, "digits": self.digits,
            "models": _model_urls(folder, paths),
            "testDigits": self.test_digits(),
        }
        classes = PAGE["classes"]
        label = ""
        if self.model.conditional:
            options = "".join(f'<option value="{d}">{d}</option>' for d in self.digits)
            label = (f'<label>digit <select class="{classes["digit-select"]}">{options}'
                     '</select></label>')
        fallback = _FALLBACK_BLOCK.format(c=classes, alt=alt, src=_data_url(picture))
        return PagePart(_PAGE_TEMPLATE.format(
            c=classes, config=_json_in_html(config), map_src=_data_url(self._map_png),
            fallback=fallback, size=MAP_PIXELS, limit=self.limit, label=label,
            legend=self.legend_html()), picture)


class DiffusionExplorer:
    """The reverse chain of chapter 16's latent diffusion ``prior``, each step's codes decoded
    by ``vae``: ``n`` chains side by side, a slider over the steps from z_T to z_0 and a button
    that draws new chains, in a kernel (``live``) or in the web book (``static_html``)."""

    def __init__(self, prior: LatentDiffusion, vae: LatentVariableModel, n: int = 8,
                 seed: int = 0) -> None:
        from .latent_diffusion import LatentDiffusion

        if not isinstance(prior, LatentDiffusion):
            raise TypeError(f"prior must be a LatentDiffusion, not {type(prior).__name__}.")
        if not isinstance(vae, LatentVariableModel) or vae.conditional or vae.nz != prior.nz:
            raise ValueError(f"vae must be an unconditional vae_helpers model with nz = "
                             f"{prior.nz}, the prior's code size.")
        check_integers(n=n)
        check_integers(0, seed=seed)
        self.prior, self.vae, self.n = prior, vae, n
        self.generator = torch.Generator(device=prior.betas.device).manual_seed(seed)
        self.sample()

    @torch.no_grad()
    def sample(self) -> None:
        """Draw ``n`` new chains; ``frames`` keeps every step's decoded images, (T + 1, n, 784),
        from z_T (position 0) to z_0 (position T)."""
        path = self.prior.sample(self.n, self.generator, trajectory=True)
        pixels = self.vae.probabilities(path.reshape(-1, self.prior.nz).float())
        self.frames = pixels.reshape(len(path), self.n, -1).cpu()

    def frames_png(self, positions: list[int], scale: int = 2) -> bytes:
        """PNG of the chains (rows) decoded at the given positions along the chain (columns),
        enlarged ``scale`` times without blurring."""
        from torchvision.utils import make_grid

        images = self.frames[positions].transpose(0, 1).reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
        grid = make_grid(images, nrow=len(positions), padding=2, pad_value=0.5)[0]
        image = Image.fromarray((grid * 255).round().byte().numpy(), mode="L")
        return _png(image.resize((image.width * scale, image.height * scale), Image.NEAREST))

    def live(self):
        """ipywidgets for a kernel: a step slider along the chains and a "sample" button."""
        import ipywidgets as widgets

        steps = self.prior.steps
        slider = widgets.IntSlider(value=steps, min=0, max=steps, description="position",
                                   continuous_update=True)
        button = widgets.Button(description="sample")
        image = widgets.Image(format="png")
        caption = widgets.Label()

        def show(change=None) -> None:
            image.value = self.frames_png([slider.value], scale=3)
            caption.value = f"t = {steps - slider.value}" + (" (z_0, the samples)"
                                                            if slider.value == steps else "")

        def resample(_) -> None:
            self.sample()
            show()

        slider.observe(show, names="value")
        button.on_click(resample)
        show()
        return widgets.VBox([image, widgets.HBox([slider, caption, button])])

    def static_html(self, name: str, folder: str | os.PathLike = MODEL_FOLDER):
        """The explorer for a page with no kernel: writes the prior's denoiser
        (``export_denoiser``) and the VAE's decoder as ONNX to ``folder`` and returns HTML that
        ``book/_static/latent_explorer.js`` runs with ONNX Runtime Web: the reverse steps are
        computed in the page from the schedule, which the HTML carries. Until the model runs,
        the page shows the chains of ``frames_png`` at seven positions."""
        from .latent_diffusion import export_denoiser

        steps = self.prior.steps
        shown = [0, steps // 2, (7 * steps) // 10, (4 * steps) // 5, (9 * steps) // 10,
                 (19 * steps) // 20, steps]
        picture = self.frames_png(shown)
        alt = f"{self.n} chains decoded at seven steps, from z_T (left) to z_0 (right)"
        if not _can_export():
            return _picture_only(picture, alt)
        fallback = _FALLBACK_BLOCK.format(c=PAGE["classes"], src=_data_url(picture), alt=alt)
        paths = {"denoiser": export_denoiser(self.prior, folder, name),
                 **export_onnx(self.vae, folder, name, parts=("decoder",))}
        schedule = {key: getattr(self.prior, buffer).tolist() for key, buffer in (
            ("betas", "betas"), ("alphas", "alphas"), ("alphaBars", "alpha_bars"),
            ("variances", "variances"))}
        config = {"page": PAGE, "kind": "diffusion", "n": self.n, "nz": self.prior.nz,
                  "steps": steps, "schedule": schedule,
                  "models": _model_urls(folder, paths)}
        canvases = "".join(f'<canvas width="{IMAGE_SIDE}" height="{IMAGE_SIDE}"></canvas>'
                           for _ in range(self.n))
        return PagePart(_DIFFUSION_TEMPLATE.format(
            c=PAGE["classes"], config=_json_in_html(config), fallback=fallback,
            canvases=canvases, steps=steps), picture)


class PagePart:
    """What ``static_html`` returns: the explorer's HTML (``data``) for the web book, and the
    picture it shows until its model runs, for outputs that cannot run it (the PDF book)."""

    def __init__(self, html: str, png: bytes) -> None:
        self.data, self.png = html, png

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        return {"text/html": self.data,
                "image/png": base64.b64encode(self.png).decode("ascii"),
                "text/plain": "An explorer that runs the trained model in the web book."}


def _model_urls(folder: str | os.PathLike, paths: dict[str, Path]) -> dict[str, str]:
    """Each exported network's address as the page names it: relative to the notebook."""
    return {part: Path(folder, path.name).as_posix() for part, path in paths.items()}


def _can_export() -> bool:
    """Whether the ``onnx`` package is here (Colab lacks it: ``live()`` is the way there)."""
    import importlib.util

    return importlib.util.find_spec("onnx") is not None


def _picture_only(picture: bytes, alt: str):
    from IPython.display import HTML

    return HTML(_FALLBACK_ONLY.format(c=PAGE["classes"], alt=alt, src=_data_url(picture)))


def _json_in_html(config: dict) -> str:
    """``config`` as JSON that cannot end the <script> element holding it."""
    return json.dumps(config).replace("</", "<\\/")


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# The page's explorer; book/_static/latent_explorer.js finds it by its class and shows the live
# part once the model runs. Styles are in book/_static/book.css.
_FALLBACK_ONLY = """
<div class="{c[fallback]}">
<p>The web book runs the trained model in the page; here, <code>explorer.live()</code> gives live
controls (exporting the model for a browser needs the <code>onnx</code> package, which this
environment lacks).</p>
<img alt="{alt}" src="{src}">
</div>
"""

# What an explorer shows until its model runs in the page, and why.
_FALLBACK_BLOCK = """
<div class="{c[fallback]}">
<p class="{c[why]}">This picture stands in for the live explorer, which runs the trained model in
the web book with WebAssembly, because this browser does not offer it or runs no scripts here (in
Jupyter or Colab, <code>explorer.live()</code> gives live controls).</p>
<p class="{c[served]}" hidden>Opened as a file, this page cannot run the live explorer (the
browser blocks the model's code there): serve the book's folder, with
<code>python -m http.server -d _build/html</code>, and open <code>http://localhost:8000</code>.</p>
<p class="{c[loading]}" hidden></p>
<img alt="{alt}" src="{src}">
</div>
"""

_PAGE_TEMPLATE = """
<div class="{c[root]}">
<script type="application/json" class="{c[config]}">{config}</script>
{fallback}<div class="{c[live]}" hidden>
<div class="{c[row]}">
<div><div class="{c[map]}"><img alt="latent map: the test set's codes" src="{map_src}"
 width="{size}" height="{size}" draggable="false"><div class="{c[ellipse]}" hidden></div>
<div class="{c[marker]}"></div></div>
{legend}</div>
<figure><canvas class="{c[decoded]}" width="28" height="28"></canvas>
<figcaption>decoded at z</figcaption></figure>
</div>
<div class="{c[controls]}">
<label>z₁ <input type="range" class="{c[z1]}" min="-{limit}" max="{limit}" step="any"
 value="0"> <output class="{c[z1-value]}">0.00</output></label>
<label>z₂ <input type="range" class="{c[z2]}" min="-{limit}" max="{limit}" step="any"
 value="0"> <output class="{c[z2-value]}">0.00</output></label>
{label}
</div>
<div class="{c[row]}">
<figure><canvas class="{c[pad]}" width="196" height="196"></canvas>
<figcaption>draw a digit here <button type="button" class="{c[clear]}">clear</button>
</figcaption></figure>
<figure><canvas class="{c[input]}" width="28" height="28"></canvas>
<figcaption>as MNIST: 20×20, centered</figcaption></figure>
<figure><canvas class="{c[reconstruction]}" width="28" height="28"></canvas>
<figcaption>decoded at its μ</figcaption></figure>
</div>
<p class="{c[encoding]}">Your digit's code appears here and on the map: the blue ellipse is one
σ of the encoder's q(z | x) around μ.</p>
<div class="{c[interpolation]}">
<label>from <select class="{c[from]}"></select></label>
<label>to <select class="{c[to]}"></select></label>
<label>images <input type="number" class="{c[steps]}" min="2" max="12" value="8"></label>
<button type="button" class="{c[interpolate]}">interpolate</button>
<div class="{c[strip]}"></div>
</div>
<p class="{c[status]}"></p>
</div>
</div>
"""

_DIFFUSION_TEMPLATE = """
<div class="{c[root]}">
<script type="application/json" class="{c[config]}">{config}</script>
{fallback}<div class="{c[live]}" hidden>
<div class="{c[frames]}">{canvases}</div>
<div class="{c[controls]}">
<label>z<sub>T</sub> <input type="range" class="{c[step]}" min="0" max="{steps}" step="1"
 value="{steps}"> z<sub>0</sub></label> <output class="{c[step-value]}"></output>
<button type="button" class="{c[sample]}">sample</button>
</div>
<p class="{c[status]}"></p>
</div>
</div>
"""
