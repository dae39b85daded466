"""The PDF book that ``python book/pdf.py`` typesets after the web build (the README's build).

It builds without LaTeX errors or undefined references, names every chapter, keeps every line
of text and code inside the margin (no overfull box wider than ``OVERFULL_PT``), includes every
figure of the web book and each explorer's picture, renders pages that are not blank, and is
served beside the web pages, linked from their header.

Under CI these tests must run; elsewhere they skip, with the reason, when the PDF is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import in_ci
from PIL import Image, ImageStat

ROOT = Path(__file__).resolve().parents[1]
LATEX = ROOT / "_build" / "latex"
PDF = LATEX / "book.pdf"
HTML = ROOT / "_build" / "html"
SERVED = HTML / "_static" / "vae-book.pdf"
BUILD = "jupyter-book build . -W --keep-going`, then `python book/pdf.py"
# LaTeX reports a line that runs past the margin as an overfull box; up to this much (a
# fraction of a character in a table cell) cannot be seen, more can.
OVERFULL_PT = 10.0


def _missing(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason} (the PDF tests must run under CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def pdf() -> Path:
    if not PDF.is_file():
        _missing(f"no {PDF.relative_to(ROOT)}: build it with `{BUILD}`")
    for tool in ("pdftotext", "pdftoppm", "pdfinfo", "pdfimages"):
        if shutil.which(tool) is None:
            _missing(f"{tool} is missing (Debian's poppler-utils)")
    return PDF


@pytest.fixture(scope="module")
def log(pdf: Path) -> str:
    return (LATEX / "book.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def text(pdf: Path) -> str:
    result = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                            text=True, check=True)
    return result.stdout


def _titles() -> list[str]:
    """The title (first ``# `` heading) of every chapter and page in the table of contents."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    titles = []
    for file in files:
        path = next(p for p in (ROOT / f"{file}.ipynb", ROOT / f"{file}.md") if p.is_file())
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text())["cells"]
            source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        else:
            source = path.read_text()
        titles.append(re.search(r"^# (.+)$", source, re.M)[1].strip())
    return titles


def _flat(text: str) -> str:
    """Lower case, hyphenation at line ends undone, runs of white space as one space."""
    return re.sub(r"\s+", " ", re.sub(r"-\n\s*", "-", text)).lower()


def test_no_latex_error_and_no_undefined_reference(log, text):
    errors = [line for line in log.splitlines()
              if line.startswith("!") or (".tex:" in line and "error" in line.lower())]
    assert not errors, errors[:5]
    undefined = re.findall(r"(?:Reference|Citation) `[^']+' on page \d+ undefined", log)
    assert not undefined, undefined[:5]
    assert "??" not in text, "an unresolved reference (??) in the PDF"
    assert "Missing character" not in log, "a character the fonts lack"


def test_every_chapter_title_is_in_the_book(text):
    flat = _flat(text)
    missing = [title for title in _titles() if _flat(title) not in flat]
    assert not missing, missing


def test_no_line_of_text_or_code_runs_into_the_margin(log):
    widths = [float(w) for w in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    wide = [w for w in widths if w > OVERFULL_PT]
    assert not wide, (f"{len(wide)} overfull boxes wider than {OVERFULL_PT} pt (widest "
                      f"{max(wide):.0f} pt): see 'Overfull' in {LATEX / 'book.log'}")


def test_every_figure_is_included(pdf, log):
    tex = (LATEX / "book.tex").read_text()
    included = set(re.findall(r"\\sphinxincludegraphics(?:\[[^\]]*\])?\{\{([^}]+)\}(\.\w+)\}",
                              tex))
    names = {stem + suffix for stem, suffix in included}
    assert names, "the book includes no figure"
    assert all((LATEX / name).is_file() for name in names)
    assert not re.search(r"File `[^']+' not found", log)
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True,
                             check=True).stdout.splitlines()[2:]
    assert len(listing) >= len(names), f"{len(listing)} images in the PDF, {len(names)} included"
    # The web book's figures (cell outputs and pictures the pages show): all printed.
    shown = {name for page in HTML.glob("**/*.html") if "_static" not in page.parts
             for name in re.findall(r'src="(?:\.\./)*_images/([^"]+\.(?:png|jpe?g))"',
                                    page.read_text(errors="replace"))}
    assert shown <= names, f"figures of the web book missing from the PDF: {sorted(shown - names)}"


def test_each_explorer_is_a_picture_and_a_sentence_on_the_web_edition(text):
    calls = 0
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(notebook.read_text())["cells"]
        calls += sum(".static_html(" in "".join(c["source"]) for c in cells
                     if c["cell_type"] == "code" and "remove-cell" not in
                     c.get("metadata", {}).get("tags", []))
    assert calls > 0
    sentences = _flat(text).count("in the web edition of this book, built from")
    assert sentences == calls, f"{sentences} pointers to the web edition for {calls} explorers"
    # In each explorer's output, its picture comes before the sentence.
    tex = (LATEX / "book.tex").read_text()
    outputs = [before.rsplit("\\begin{sphinxVerbatimOutput}", 1)[-1]
               for before in tex.split("In the web edition of this book, built from")[:-1]]
    pictures = sum("\\sphinxincludegraphics" in output for output in outputs)
    assert pictures == calls, f"{calls - pictures} of {calls} explorers have no picture"


def test_solutions_and_their_code_are_printed(text):
    flat = _flat(text)
    assert flat.count("solution") >= 16  # at least one per chapter
    assert "# solution:" in flat, "no solution code cell (hide-cell) in the PDF"


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_rendered_pages_are_not_blank(pdf, tmp_path, position):
    pages = int(re.search(r"Pages:\s+(\d+)", subprocess.run(
        ["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout)[1])
    assert pages > 100, f"only {pages} pages"
    page = {"first": 1, "middle": pages // 2, "last": pages - 1}[position]
    subprocess.run(["pdftoppm", "-r", "40", "-gray", "-png", "-f", str(page), "-l", str(page),
                    str(pdf), str(tmp_path / "page")], check=True)
    (image,) = tmp_path.glob("page*.png")
    with Image.open(image) as picture:
        spread = ImageStat.Stat(picture.convert("L")).stddev[0]
    assert spread > 5, f"page {page} looks blank (gray-level spread {spread:.1f})"


def test_the_web_book_serves_the_pdf_and_links_it_from_every_page_header(pdf):
    pages = [HTML / "book" / "preface.html", HTML / "notebooks" / "01_elbo.html"]
    if not all(page.is_file() for page in pages):
        _missing(f"no web book in {HTML.relative_to(ROOT)}: build it with `{BUILD}`")
    assert SERVED.is_file() and SERVED.read_bytes() == pdf.read_bytes()
    for page in pages:
        assert 'href="../_static/vae-book.pdf"' in page.read_text(), f"{page}: no PDF link"
