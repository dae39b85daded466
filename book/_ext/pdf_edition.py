"""The PDF books (``python book/editions.py``, Sphinx's LaTeX builder) and their web links.

In the LaTeX build only:

- Solutions are printed: a solution's code cells (tagged ``hide-cell``, a dropdown on the web)
  would otherwise be dropped by sphinx-jupyterbook-latex, which removes hidden cells.
- Proofs are set as text ending in a square: sphinx-proof's LaTeX gives them an empty
  title bar (its proof admonition has no title).
- A table a cell displays breaks across pages (a longtable), its columns sized by their text.
- Each in-page explorer (a cell calling ``.static_html(...)``) becomes its static picture (the
  PNG its output carries besides the HTML) and one sentence pointing to the web edition; the
  output's text stand-in ("<... object>") is left out. An explorer without a picture is a
  warning, hence an error in the build.

In the web book: a header button that downloads the PDF of the page's edition
(``_static/vae-book.pdf`` of each site, which ``book/editions.py`` writes after the web build).
"""

from __future__ import annotations

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

PDF_PATH = "_static/vae-book.pdf"
EXPLORER_CALL = ".static_html("
# What the PDF says in place of an explorer, and the header button's tooltip, per edition.
WEB_EDITION = {
    "en": ("In the web edition of this book, built from {url}, this picture is a live explorer: "
           "the trained model runs in the page and redraws it as you use its controls."),
    "ko": ("{url}에서 만드는 이 책의 웹판에서는 이 그림이 살아 있는 탐색기다. 학습된 모델이 "
           "페이지 안에서 실행되어, 조작할 때마다 그림을 다시 그린다."),
}
PDF_TOOLTIP = {"en": "Download the whole book as a PDF", "ko": "책 전체를 PDF로 내려받기"}


def _code_cells(document: nodes.Node):
    return [node for node in document.findall(nodes.container)
            if node.get("nb_element") == "cell_code"]


def _part(cell: nodes.Element, element: str) -> nodes.Element | None:
    return next((child for child in cell.children if child.get("nb_element") == element), None)


class PrintSolutionCells(SphinxPostTransform):
    """Keep ``hide-cell`` cells (the solutions' code) in the PDF: runs before
    sphinx-jupyterbook-latex's transform (priority 400) that drops them."""

    default_priority = 390
    formats = ("latex",)

    def run(self, **kwargs) -> None:
        for cell in _code_cells(self.document):
            if "tag_hide-cell" in cell["classes"]:
                cell["classes"].remove("tag_hide-cell")


class ProofsAsText(SphinxPostTransform):
    """A proof ("Proof. ..." in its first paragraph) as the paragraphs themselves and a square
    at the end, instead of a box with an empty title bar."""

    default_priority = 390
    formats = ("latex",)

    def run(self, **kwargs) -> None:
        for proof in list(self.document.findall(nodes.admonition)):
            if "proof" not in proof["classes"] or any(isinstance(child, nodes.title)
                                                      for child in proof.children):
                continue
            if proof.children and isinstance(proof[-1], nodes.paragraph):
                proof[-1] += nodes.raw("", r"\hfill$\square$", format="latex")
            proof.replace_self(proof.children)


class ExplorerPictures(SphinxPostTransform):
    """An explorer's cell in the PDF: its code, its picture and a sentence on the web book."""

    default_priority = 390
    formats = ("latex",)

    def run(self, **kwargs) -> None:
        config = self.app.config
        url = config.pdf_web_edition_url or config.html_theme_options.get("repository_url", "")
        for cell in _code_cells(self.document):
            source, output = _part(cell, "cell_code_source"), _part(cell, "cell_code_output")
            if source is None or EXPLORER_CALL not in source.astext():
                continue
            if output is None or not any(True for _ in output.findall(nodes.image)):
                logger.warning("an explorer's output has no picture for the PDF (its notebook "
                               "ran before explorers had one: execute it again)", location=cell,
                               type="pdf_edition", subtype="explorer")
                if output is None:
                    continue
            for literal in list(output.findall(nodes.literal_block)):
                literal.parent.remove(literal)
            sentence = WEB_EDITION.get(config.language, WEB_EDITION["en"])
            output += nodes.paragraph("", sentence.format(url=url))


class OutputTablesAcrossPages(SphinxPostTransform):
    """A table a cell displays (the appendices' tables of recorded figures, up to ten columns
    and twenty rows): a longtable, which breaks across pages, with each column as wide as its
    longest cell asks for (at least its longest word, at most 14 characters' worth before its
    text wraps), instead of a tabulary that runs off the page."""

    default_priority = 390
    formats = ("latex",)

    def run(self, **kwargs) -> None:
        for cell in _code_cells(self.document):
            output = _part(cell, "cell_code_output")
            for table in output.findall(nodes.table) if output is not None else ():
                table["classes"] += ["longtable", "colwidths-given"]
                for group in table.findall(nodes.tgroup):
                    columns = list(group.findall(nodes.colspec))
                    widths = [1] * len(columns)
                    for row in group.findall(nodes.row):
                        for j, entry in enumerate(row.children[:len(columns)]):
                            text = entry.astext()
                            longest_word = max(map(len, text.split()), default=0)
                            widths[j] = max(widths[j], longest_word + 1, min(14, len(text)))
                    for colspec, width in zip(columns, widths):
                        colspec["colwidth"] = width


def add_pdf_button(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object
) -> None:
    """``html-page-context``, after sphinx-book-theme's buttons: the book's PDF, first in the
    header's row of buttons."""
    if "header_buttons" not in context:
        return
    context["header_buttons"].insert(0, {
        "type": "link",
        "url": context["pathto"](PDF_PATH, 1),
        "icon": "fas fa-book",
        "text": "PDF",
        "tooltip": PDF_TOOLTIP.get(app.config.language, PDF_TOOLTIP["en"]),
        "label": "book-pdf-button",
    })


def setup(app: Sphinx) -> dict:
    # Where the explorers run; empty: the repository (``repository: url`` in _config.yml).
    app.add_config_value("pdf_web_edition_url", "", "env")
    app.add_post_transform(PrintSolutionCells)
    app.add_post_transform(ProofsAsText)
    app.add_post_transform(ExplorerPictures)
    app.add_post_transform(OutputTablesAcrossPages)
    app.connect("html-page-context", add_pdf_button, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
