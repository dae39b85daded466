"""Serve MathJax from the built book instead of a CDN, so pages work with no internet.

MathJax 3 comes from the PyPI package ``django-static-mathjax`` (static files only). It is
copied into ``_static/vendor/mathjax`` after the build rather than listed in
``html_static_path``, because Jupyter Book adds every script found there to every page.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError


def mathjax_source() -> Path:
    try:
        import mathjax
    except ImportError:
        raise ExtensionError(
            "MathJax for offline pages is missing: pip install django-static-mathjax"
        ) from None
    source = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (source / "tex-chtml.js").is_file():
        raise ExtensionError(f"{source} has no tex-chtml.js: reinstall django-static-mathjax.")
    return source


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / "vendor" / "mathjax"
        shutil.copytree(mathjax_source(), target, dirs_exist_ok=True)


def setup(app: Sphinx) -> dict:
    mathjax_source()  # fail early, before a long build
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
