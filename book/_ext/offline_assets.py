"""Pages that need no internet: MathJax served from the built book, no thebe scripts.

MathJax 3 comes from npm (``mathjax`` in ``package.json``, pinned by ``package-lock.json``:
``npm ci``), as ONNX Runtime Web does. Its ready-to-serve ``es5`` build is copied into
``_static/vendor/mathjax`` after the build rather than listed in ``html_static_path``, because
Jupyter Book adds every script found there to every page.

Jupyter Book always loads ``sphinx_thebe``, whose inline script (added twice, hence a console
error on every page) points at a CDN. This book runs no code in the page, so thebe is switched
off: none of its scripts, settings or style sheet reach a page.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError

REPOSITORY = Path(__file__).resolve().parents[2]  # where package.json and node_modules are


def mathjax_source() -> Path:
    """The folder of MathJax's ready-to-serve ``es5`` build under ``node_modules``."""
    source = REPOSITORY / "node_modules" / "mathjax" / "es5"
    if not (source / "tex-chtml.js").is_file():
        raise ExtensionError(f"MathJax is missing ({source / 'tex-chtml.js'}): run `npm ci`.")
    return source


def check_mathjax(app: Sphinx) -> None:
    """``builder-inited``: fail early, before a long build, where pages need MathJax (HTML);
    the LaTeX builder does not."""
    if app.builder.format == "html":
        mathjax_source()


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    """``build-finished``: copy MathJax to where ``mathjax_path`` points."""
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / "vendor" / "mathjax"
        shutil.copytree(mathjax_source(), target, dirs_exist_ok=True)


def turn_off_thebe(app: Sphinx, config: Config) -> None:
    """``config-inited``: disconnect sphinx_thebe's event handlers (its scripts, its settings
    and its per-page kernel configuration), since Jupyter Book always loads it."""
    for listeners in app.events.listeners.values():
        for listener in list(listeners):
            if getattr(listener.handler, "__module__", "") == "sphinx_thebe":
                app.disconnect(listener.id)


def drop_thebe_css(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object
) -> None:
    """``html-page-context``: leave out the style sheet sphinx_thebe registers at setup."""
    context["css_files"] = [
        css for css in context.get("css_files", []) if "thebe" not in os.fspath(css.filename)
    ]


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", check_mathjax)
    app.connect("config-inited", turn_off_thebe)
    app.connect("html-page-context", drop_thebe_css)
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
