"""Trained models that run in the page: ONNX files and ONNX Runtime Web, served by the book.

A chapter's ``LatentExplorer.static_html(name)`` (or ``DiffusionExplorer.static_html(name)``)
exports the model's networks to ``browser_models/`` beside the notebook while the notebook
executes. After the build this
extension

- copies those ``.onnx`` files to the same place beside the built page;
- copies ONNX Runtime Web's single-threaded WebAssembly build from ``node_modules`` (``npm ci``,
  pinned by ``package-lock.json``) to ``_static/vendor/onnxruntime``: no CDN, works offline;
- fails the build if a page's explorer names a model file that is not there (a notebook whose
  outputs came from the cache after its ``browser_models/`` folder was deleted).

The page script ``book/_static/latent_explorer.js`` is added to the pages with an explorer only.
The names of the explorer's HTML come from ``vae_helpers.widgets.PAGE``, their one source.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

from vae_helpers.widgets import MODEL_FOLDER, PAGE

EXPLORER, CONFIG = PAGE["classes"]["root"], PAGE["classes"]["config"]
PAGE_SCRIPT = "latent_explorer.js"
# What the page loads: the script that defines `ort`, the module that loads the WebAssembly
# (its threads stay unused) and the WebAssembly itself.
RUNTIME_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


REPOSITORY = Path(__file__).resolve().parents[2]  # where package.json and node_modules are


def runtime_source() -> Path:
    """ONNX Runtime Web's ``dist`` folder under the repository's ``node_modules``."""
    dist = REPOSITORY / "node_modules" / "onnxruntime-web" / "dist"
    missing = [name for name in RUNTIME_FILES if not (dist / name).is_file()]
    if missing:
        raise ExtensionError(
            f"ONNX Runtime Web is missing ({', '.join(missing)} in {dist}): run `npm ci`."
        )
    return dist


def check_runtime(app: Sphinx) -> None:
    """``builder-inited``: fail early, before a long build, where pages need the runtime (HTML);
    the LaTeX builder does not."""
    if app.builder.format == "html":
        runtime_source()


def add_page_script(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object
) -> None:
    """``html-page-context``: the explorer's script on the pages that show one."""
    if EXPLORER in context.get("body", ""):
        app.add_js_file(PAGE_SCRIPT)


def model_folders(app: Sphinx) -> list[Path]:
    """The ``browser_models`` folders beside the book's documents, relative to the source."""
    source = Path(app.srcdir)
    folders = {Path(app.env.doc2path(doc, False)).parent / MODEL_FOLDER
               for doc in app.env.found_docs}
    return sorted(folder for folder in folders if (source / folder).is_dir())


def referenced_models(page: Path) -> list[str]:
    """The model files named by the explorers on a built page, relative to the page."""
    configs = re.findall(rf'<script type="application/json" class="{CONFIG}">(.*?)</script>',
                         page.read_text(encoding="utf-8"), flags=re.S)
    return [url for config in configs for url in json.loads(config)["models"].values()]


def publish(app: Sphinx, exception: Exception | None) -> None:
    """``build-finished``: copy the runtime and the models, then check every page's models."""
    if exception is not None or app.builder.format != "html":
        return
    source, out = Path(app.srcdir), Path(app.outdir)
    runtime = out / "_static" / "vendor" / "onnxruntime"
    runtime.mkdir(parents=True, exist_ok=True)
    dist = runtime_source()
    for name in RUNTIME_FILES:
        shutil.copy2(dist / name, runtime / name)
    for folder in model_folders(app):
        for model in (source / folder).glob("*.onnx"):
            (out / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy2(model, out / folder / model.name)
    missing = []
    for doc in sorted(app.env.found_docs):
        page = Path(app.builder.get_outfilename(doc))
        if page.is_file():
            missing += [f"{doc}: {url}" for url in referenced_models(page)
                        if not (page.parent / url).is_file()]
    if missing:
        raise ExtensionError(
            "Explorers name model files that the build did not produce:\n  " + "\n  ".join(missing)
            + "\nExecute those notebooks again: `jupyter-book clean .` then build."
        )


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", check_runtime)
    app.connect("html-page-context", add_page_script)
    app.connect("build-finished", publish)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
