"""The PDF books, English and Korean, that ``python book/editions.py`` typesets after the web
build (the README's build command).

Each builds without LaTeX errors or undefined references, names every chapter, keeps every line
of text and code inside the margin (no overfull box wider than ``OVERFULL_PT``), includes every
figure of its web edition and each explorer's picture, renders pages that are not blank, and is
served beside its web pages, linked from their header.

Under CI these tests must run; elsewhere they skip, with the reason, when the PDF is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import in_ci
from PIL import Image, ImageStat

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
BUILD = "jupyter-book build . -W --keep-going`, then `python book/editions.py"


@dataclass(frozen=True)
class Edition:
    """Where an edition's PDF is typeset and served, and words its PDF must contain."""

    language: str
    latex: Path  # the LaTeX build: book.tex, book.log, book.pdf
    site: Path  # its web pages, which serve the PDF as _static/vae-book.pdf
    web_edition: str  # from the sentence that stands in for each explorer
    solution: str  # the title of each solution


EDITIONS = {
    "en": Edition("en", ROOT / "_build" / "latex", HTML,
                  "In the web edition of this book, built from", "solution"),
    "ko": Edition("ko", ROOT / "_build" / "latex-ko", HTML / "ko",
                  "에서 만드는 이 책의 웹판에서는", "풀이"),
}
# LaTeX reports a line that runs past the margin as an overfull box; up to this much (a
# fraction of a character in a table cell) cannot be seen, more can.
OVERFULL_PT = 10.0


def _missing(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason} (the PDF tests must run under CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module", params=list(EDITIONS))
def edition(request) -> Edition:
    return EDITIONS[request.param]


@pytest.fixture(scope="module")
def pdf(edition: Edition) -> Path:
    path = edition.latex / "book.pdf"
    if not path.is_file():
        _missing(f"no {path.relative_to(ROOT)}: build it with `{BUILD}`")
    for tool in ("pdftotext", "pdftoppm", "pdfinfo", "pdfimages"):
        if shutil.which(tool) is None:
            _missing(f"{tool} is missing (Debian's poppler-utils)")
    return path


@pytest.fixture(scope="module")
def log(pdf: Path) -> str:
    return (pdf.parent / "book.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def text(pdf: Path) -> str:
    result = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                            text=True, check=True)
    return result.stdout


def _titles(language: str) -> list[str]:
    """The title (first ``# `` heading) of every chapter and page in the table of contents, in
    ``language`` (looked up in its catalogs)."""
    import yaml
    from babel.messages.pofile import read_po

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
        title = re.search(r"^# (.+)$", source, re.M)[1].strip()
        if language != "en":
            catalog = ROOT / "book" / "locale" / language / "LC_MESSAGES" / f"{file}.po"
            with catalog.open("rb") as handle:
                title = read_po(handle)[title].string
        titles.append(title)
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


def test_every_chapter_title_is_in_the_book(edition, text):
    flat = _flat(text)
    missing = [title for title in _titles(edition.language) if _flat(title) not in flat]
    assert not missing, missing


def test_no_line_of_text_or_code_runs_into_the_margin(edition, log):
    widths = [float(w) for w in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    wide = [w for w in widths if w > OVERFULL_PT]
    assert not wide, (f"{len(wide)} overfull boxes wider than {OVERFULL_PT} pt (widest "
                      f"{max(wide):.0f} pt): see 'Overfull' in {edition.latex / 'book.log'}")


def test_every_figure_is_included(edition, pdf, log):
    tex = (edition.latex / "book.tex").read_text()
    included = set(re.findall(r"\\sphinxincludegraphics(?:\[[^\]]*\])?\{\{([^}]+)\}(\.\w+)\}",
                              tex))
    names = {stem + suffix for stem, suffix in included}
    assert names, "the book includes no figure"
    assert all((edition.latex / name).is_file() for name in names)
    assert not re.search(r"File `[^']+' not found", log)
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True,
                             check=True).stdout.splitlines()[2:]
    assert len(listing) >= len(names), f"{len(listing)} images in the PDF, {len(names)} included"
    # The edition's web pages' figures (cell outputs and pictures they show): all printed.
    pages = [page for page in edition.site.glob("**/*.html")
             if page.relative_to(edition.site).parts[0] not in ("_static", *EDITIONS)]
    shown = {name for page in pages
             for name in re.findall(r'src="(?:\.\./)*_images/([^"]+\.(?:png|jpe?g))"',
                                    page.read_text(errors="replace"))}
    assert shown <= names, f"figures of the web book missing from the PDF: {sorted(shown - names)}"


def test_each_explorer_is_a_picture_and_a_sentence_on_the_web_edition(edition, text):
    calls = 0
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(notebook.read_text())["cells"]
        calls += sum(".static_html(" in "".join(c["source"]) for c in cells
                     if c["cell_type"] == "code" and "remove-cell" not in
                     c.get("metadata", {}).get("tags", []))
    assert calls > 0
    sentences = _flat(text).count(_flat(edition.web_edition))
    assert sentences == calls, f"{sentences} pointers to the web edition for {calls} explorers"
    # In each explorer's output, its picture comes before the sentence.
    tex = (edition.latex / "book.tex").read_text()
    outputs = [before.rsplit("\\begin{sphinxVerbatimOutput}", 1)[-1]
               for before in tex.split(edition.web_edition)[:-1]]
    pictures = sum("\\sphinxincludegraphics" in output for output in outputs)
    assert pictures == calls, f"{calls - pictures} of {calls} explorers have no picture"


def test_solutions_and_their_code_are_printed(edition, text):
    flat = _flat(text)
    assert flat.count(edition.solution) >= 16  # at least one per chapter
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


def test_the_web_book_serves_the_pdf_and_links_it_from_every_page_header(edition, pdf):
    pages = [edition.site / "book" / "preface.html", edition.site / "notebooks" / "01_elbo.html"]
    if not all(page.is_file() for page in pages):
        _missing(f"no web book in {edition.site.relative_to(ROOT)}: build it with `{BUILD}`")
    served = edition.site / "_static" / "vae-book.pdf"
    assert served.is_file() and served.read_bytes() == pdf.read_bytes()
    for page in pages:
        assert 'href="../_static/vae-book.pdf"' in page.read_text(), f"{page}: no PDF link"
