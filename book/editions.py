"""The book's other editions, built from the same sources as the English web book:

    jupyter-book build . -W --keep-going   # the English web book; executes the notebooks
    python book/editions.py                # the Korean web book, _build/html/ko/ (from the
                                           # catalogs in book/locale/ko), then the PDFs,
                                           # _build/html/_static/vae-book.pdf and
                                           # _build/html/ko/_static/vae-book.pdf (each edition's
                                           # header links its own)
    python book/editions.py --update-catalogs   # after changing English text (see the README)

No notebook runs again: every edition reads the outputs the English build stored in
``_build/.jupyter_cache``. A notebook whose code changed since (no match in the cache) stops the
script before anything is built, with the command that brings the cache up to date.
``--allow-uncached`` (for trying the layout only) builds such notebooks without outputs and
leaves the web book alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
CACHE = BUILD / ".jupyter_cache"
LOCALE = ROOT / "book" / "locale"
KOREAN = "ko"
# Where each edition's web pages go; each one's PDF is _static/vae-book.pdf inside them.
SITE = {"en": BUILD / "html", KOREAN: BUILD / "html" / KOREAN}
# What a translated edition says in its own language beyond the catalogs: the book's title and
# the buttons myst-nb puts on folded code cells; and its footer leaves out the theme's "By the
# authors" line, which the theme's Korean turns into "으로 ..." (the copyright line names them).
KOREAN_TITLE = "직접 해 보는 변분 오토인코더"
TRANSLATED_CONFIG = {KOREAN: {
    "project": KOREAN_TITLE, "html_title": KOREAN_TITLE,
    "nb_code_prompt_show": "코드 셀 보기", "nb_code_prompt_hide": "코드 셀 숨기기",
    "html_theme_options": {"footer_content_items": ["copyright.html", "last-updated.html",
                                                    "extra-footer.html"]}}}
PDF_NAME = "vae-book.pdf"
# The Korean PDF: Babel stays English (it has no Korean, and sphinx-jupyterbook-latex's preamble
# needs Babel); once Babel has set its names, the book's title and the names LaTeX prints
# (contents, part, figure...) are set in Korean. _config.yml's preamble sets the Hangul fonts.
KOREAN_PREAMBLE = ("\\AtBeginDocument{\\renewcommand{\\contentsname}{차례}"
                   "\\renewcommand{\\bibname}{참고 문헌}\\renewcommand{\\chaptername}{}"
                   "\\renewcommand{\\partname}{제}\\renewcommand{\\thepart}{\\Roman{part}부}"
                   "\\renewcommand{\\appendixname}{부록}\\renewcommand{\\figurename}{그림}"
                   f"\\renewcommand{{\\tablename}}{{표}}\\title{{{KOREAN_TITLE}}}}}\n")


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


def sphinx(builder: str, outdir: Path, language: str = "en", exclude: list[Path] = (),
           **config) -> None:
    """Sphinx's ``builder`` on the book in ``language``, configured by ``_config.yml`` and
    ``_toc.yml`` as ``jupyter-book build . --builder ...`` would run it, into ``outdir``.
    Warnings are errors, as in the English build, unless notebooks are ``exclude``d from
    execution (built without their outputs). Every document is read again (a notebook's cached
    outputs, or a translation, may have changed with its source the same)."""
    from jupyter_book.sphinx import build_sphinx
    from sphinx.locale import translators

    # Sphinx keeps the catalogs it loaded in a global, keyed without the language: a build
    # after one in another language would use the other's translations.
    translators.clear()
    overrides = {
        "external_toc_path": (ROOT / "_toc.yml").as_posix(),
        "latex_individualpages": False,
        "language": language,
        "nb_execution_cache_path": CACHE.as_posix(),
        "nb_execution_excludepatterns": [p.relative_to(ROOT).as_posix() for p in exclude],
        **TRANSLATED_CONFIG.get(language, {}),
        **config,
    }
    status = build_sphinx(ROOT, outdir, noconfig=True, path_config=ROOT / "_config.yml",
                          confoverrides=overrides, builder=builder,
                          doctreedir=BUILD / f".doctrees-{builder}-{language}",
                          warningiserror=not exclude, keep_going=True, freshenv=True)
    if status != 0:
        sys.exit(f"The {language} {builder} build failed; its log is above.")


class Typesetting(NamedTuple):
    """XeLaTeX at work, through latexmk, in another process: the next edition's Sphinx build
    runs meanwhile, on the other core."""

    language: str
    latex: Path
    process: subprocess.Popen
    started: float


def typeset(language: str, latex: Path) -> Typesetting:
    """Start latexmk on ``latex``/book.tex (as many XeLaTeX runs as the references need), its
    output in ``latexmk.log`` there."""
    with (latex / "latexmk.log").open("w") as log:
        process = subprocess.Popen(["latexmk", "-xelatex", "-interaction=nonstopmode",
                                    "-halt-on-error", "-file-line-error", "book.tex"],
                                   cwd=latex, stdout=log, stderr=subprocess.STDOUT)
    return Typesetting(language, latex, process, time.perf_counter())


def finish(job: Typesetting, missing: list[Path]) -> None:
    """Wait for ``job``; stop on an error; copy the PDF into its edition's web pages (unless
    notebooks were ``missing`` from the cache: an incomplete book is not served)."""
    status = job.process.wait()
    output = (job.latex / "latexmk.log").read_text(errors="replace")
    if status != 0:
        print(output[-6000:])
        sys.exit(f"XeLaTeX failed; the log is {job.latex / 'book.log'}")
    book, runs = job.latex / "book.pdf", output.count("Running 'xelatex")
    print(f"XeLaTeX ({job.language}): {runs} run(s); "
          f"log {(job.latex / 'book.log').relative_to(ROOT)}")
    if missing:
        print(f"PDF (incomplete, not copied to the web book): {book.relative_to(ROOT)}")
        return
    target = SITE[job.language] / "_static" / PDF_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(book, target)
    print(f"PDF ({job.language}): {target.relative_to(ROOT)} ({target.stat().st_size / 1e6:.1f} "
          f"MB, {_pages(book)} pages); typeset in {time.perf_counter() - job.started:.0f} s")


def _pages(pdf: Path) -> str:
    """The page count pdfinfo (poppler-utils) reports, or "?" without it."""
    try:
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return "?"
    return next((line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")),
                "?")


def _no_babel_for_korean(record: logging.LogRecord) -> bool:
    """Drop Sphinx's warning that Babel has no Korean: the Korean PDF uses xeCJK, not Babel."""
    return not record.getMessage().startswith("no Babel option known for language 'ko'")


def latex_folder(language: str) -> Path:
    """Where the LaTeX build of the edition in ``language`` is typeset."""
    return BUILD / ("latex" if language == "en" else f"latex-{language}")


# In the Korean LaTeX, a space between Hangul and a command or group ("는 {\hyperref...}"):
# xeCJK drops such a space, so it becomes an explicit one.
SPACE_BEFORE_COMMAND = re.compile(r"(?<=[\uac00-\ud7a3]) (?=[\\{])")


def finish_translated_latex(tex: Path, language: str) -> None:
    """What Sphinx's LaTeX of a translated edition still needs: sphinx-proof titles its boxes in
    English ("Theorem 1.3.1") even where its web pages are translated, so its own translations
    of the names (its ``translations/jsons``) go in; in Korean, the spaces before commands."""
    import sphinx_proof

    text = tex.read_text()
    start = "\\begin{sphinxadmonition}{note}{"
    for table in (Path(sphinx_proof.__file__).parent / "translations" / "jsons").glob("*.json"):
        names = {row["symbol"]: row["text"] for row in json.loads(table.read_text())}
        if language in names:
            text = text.replace(f"{start}{names['en']} ", f"{start}{names[language]} ")
    if language == KOREAN:
        text = SPACE_BEFORE_COMMAND.sub(lambda match: "\\ ", text)
    tex.write_text(text)


def latex_sources(language: str, missing: list[Path]) -> Path:
    """Sphinx's LaTeX of the edition in ``language``; returns its folder."""
    start = time.perf_counter()
    latex = latex_folder(language)
    config = {}
    if language == KOREAN:
        # Jupyter Book merges this into _config.yml's latex_elements, key by key.
        config["latex_elements"] = {"polyglossia": "", "babel": "\\usepackage[english]{babel}",
                                    "extrapackages": KOREAN_PREAMBLE}
        for name in ("sphinx.sphinx.builders.latex", "sphinx.sphinx.writers.latex"):
            logging.getLogger(name).addFilter(_no_babel_for_korean)
    sphinx("latex", latex, language, missing, **config)
    if language != "en":
        finish_translated_latex(latex / "book.tex", language)
    print(f"LaTeX ({language}): {latex.relative_to(ROOT)}/book.tex in "
          f"{time.perf_counter() - start:.0f} s")
    return latex


def korean_site(missing: list[Path]) -> None:
    """The Korean web book in ``_build/html/ko``, from the catalogs in ``book/locale/ko``."""
    start = time.perf_counter()
    sphinx("html", SITE[KOREAN], KOREAN, missing)
    print(f"Korean web book: {SITE[KOREAN].relative_to(ROOT)}/index.html in "
          f"{time.perf_counter() - start:.0f} s")


def update_catalogs() -> None:
    """Extract the English messages and merge them into ``book/locale/ko``: new ones arrive
    untranslated, changed ones fuzzy, removed ones obsolete (the tests fail on each kind until
    a translator has dealt with it)."""
    templates = BUILD / "gettext"
    shutil.rmtree(templates, ignore_errors=True)
    sphinx("gettext", templates, exclude=uncached())
    subprocess.run([sys.executable, "-m", "sphinx_intl", "update", "--pot-dir", str(templates),
                    "--locale-dir", str(LOCALE), "--language", KOREAN, "--line-width", "-1"],
                   check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update-catalogs", action="store_true",
                        help="extract the English messages into book/locale/ko and stop")
    parser.add_argument("--allow-uncached", action="store_true",
                        help="build notebooks missing from the cache without their outputs")
    parser.add_argument("--only", choices=["ko", "pdf", "ko-pdf"], action="append",
                        help="build only this edition (repeat for several); default: all")
    args = parser.parse_args()
    if args.update_catalogs:
        update_catalogs()
        return
    missing = uncached()
    if missing and not args.allow_uncached:
        names = ", ".join(p.name for p in missing)
        sys.exit(f"Not in the execution cache (changed since the web build): {names}. "
                 "Run `jupyter-book build . -W --keep-going` first.")
    if missing:
        print("Built without outputs (not in the cache):", *(p.name for p in missing))
    only = set(args.only or ["ko", "pdf", "ko-pdf"])
    jobs = []
    if "pdf" in only:
        jobs.append(typeset("en", latex_sources("en", missing)))
    if "ko" in only:
        korean_site(missing)
    if "ko-pdf" in only:
        jobs.append(typeset(KOREAN, latex_sources(KOREAN, missing)))
    for job in jobs:
        finish(job, missing)


if __name__ == "__main__":
    main()
