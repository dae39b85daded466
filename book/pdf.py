"""The book as a PDF, typeset by XeLaTeX from the same sources as the web book.

    jupyter-book build . -W --keep-going   # the web book; executes the notebooks into the cache
    python book/pdf.py                     # the PDF: _build/latex/book.pdf, copied to
                                           # _build/html/_static/vae-book.pdf (the header links it)

No notebook runs again: the LaTeX build reads the outputs the web build stored in
``_build/.jupyter_cache``. A notebook whose code changed since (no match in the cache) stops the
script before anything is typeset, with the command that brings the cache up to date.
``--allow-uncached`` (for trying the layout only) typesets such notebooks without outputs and
leaves the web book's copy alone.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
CACHE = BUILD / ".jupyter_cache"
LATEX = BUILD / "latex"
TARGET = BUILD / "html" / "_static" / "vae-book.pdf"


def notebooks() -> dict[Path, object]:
    """Every notebook the table of contents lists (``.ipynb``, or MyST markdown with a kernel),
    read as myst-nb reads it."""
    import nbformat
    import yaml
    from myst_nb.core.read import read_myst_markdown_notebook

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    found = {}
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            for suffix in (".ipynb", ".md"):
                path = ROOT / f"{chapter['file']}{suffix}"
                if not path.is_file():
                    continue
                text = path.read_text()
                if suffix == ".ipynb":
                    found[path] = nbformat.reads(text, as_version=4)
                elif text.startswith("---") and "kernelspec:" in text.split("\n---", 1)[0]:
                    found[path] = read_myst_markdown_notebook(text, path=path)
    return found


def uncached() -> list[Path]:
    """The notebooks whose current code has no executed copy in the cache."""
    from jupyter_cache import get_cache

    cache = get_cache(CACHE)
    missing = []
    for path, notebook in notebooks().items():
        try:
            cache.match_cache_notebook(notebook)
        except KeyError:
            missing.append(path)
    return missing


def sphinx_latex(exclude: list[Path]) -> None:
    """Sphinx's LaTeX builder on the book, configured by ``_config.yml`` and ``_toc.yml``, as
    ``jupyter-book build . --builder latex`` would run it; warnings are errors, as on the web,
    unless notebooks are ``exclude``d from execution (typeset without their outputs). Every
    document is read again (a notebook's cached outputs may have changed with its source the
    same)."""
    from jupyter_book.sphinx import build_sphinx

    overrides = {
        "external_toc_path": (ROOT / "_toc.yml").as_posix(),
        "latex_individualpages": False,
        "nb_execution_cache_path": CACHE.as_posix(),
        "nb_execution_excludepatterns": [p.relative_to(ROOT).as_posix() for p in exclude],
    }
    status = build_sphinx(ROOT, LATEX, noconfig=True, path_config=ROOT / "_config.yml",
                          confoverrides=overrides, builder="latex",
                          doctreedir=BUILD / ".doctrees-latex", warningiserror=not exclude,
                          keep_going=True, freshenv=True)
    if status != 0:
        sys.exit("The LaTeX build failed; its log is above.")


def typeset() -> Path:
    """XeLaTeX through latexmk (as many runs as the references need); stops on an error."""
    run = subprocess.run(["latexmk", "-xelatex", "-interaction=nonstopmode", "-halt-on-error",
                          "-file-line-error", "book.tex"], cwd=LATEX, capture_output=True,
                         text=True)
    if run.returncode != 0:
        print(run.stdout[-6000:], run.stderr[-2000:], sep="\n")
        sys.exit(f"XeLaTeX failed; the log is {LATEX / 'book.log'}")
    runs = (run.stdout + run.stderr).count("Running 'xelatex")
    print(f"XeLaTeX: {runs} run(s); log {(LATEX / 'book.log').relative_to(ROOT)}")
    return LATEX / "book.pdf"


def _pages(pdf: Path) -> str:
    """The page count pdfinfo (poppler-utils) reports, or "?" without it."""
    try:
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return "?"
    return next((line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")),
                "?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--allow-uncached", action="store_true",
                        help="typeset notebooks missing from the cache without their outputs")
    args = parser.parse_args()
    start = time.perf_counter()
    missing = uncached()
    if missing and not args.allow_uncached:
        names = ", ".join(p.name for p in missing)
        sys.exit(f"Not in the execution cache (changed since the web build): {names}. "
                 "Run `jupyter-book build . -W --keep-going` first.")
    if missing:
        print("Typeset without outputs (not in the cache):", *(p.name for p in missing))
    sphinx_latex(missing)
    pdf = typeset()
    if missing:  # an incomplete book is not served with the web pages
        print(f"PDF (incomplete, not copied to the web book): {pdf.relative_to(ROOT)}")
        return
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pdf, TARGET)
    print(f"PDF: {TARGET.relative_to(ROOT)} ({TARGET.stat().st_size / 1e6:.1f} MB, "
          f"{_pages(pdf)} pages) in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
