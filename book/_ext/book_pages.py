"""What the theme and the bibliography get wrong for this book's pages, put right.

- Launch buttons (Colab) only on pages made from an ``.ipynb``: sphinx-book-theme also offers
  them for MyST markdown notebooks, whose ``.md`` source Colab cannot open.
- No empty header bar above the page on a desktop, holding a second search box (the sidebar
  has one): pydata-sphinx-theme 0.16+ fills its ``navbar_persistent`` slot with a search button
  unless a book sets the slot, and sphinx-book-theme 1.3, which puts everything else elsewhere,
  does not set it. With the slot empty the theme leaves the header empty: it takes no room.
- Figures whose text stays readable on a phone: each output image carries its natural width
  (``--natural-width``), below a fraction of which ``book.css`` never shrinks it.
- Bibliography labels that read as author and year ("Kingma and Welling, 2014",
  "Duchi, n.d.", "Apache MXNet contributors, n.d.") instead of pybtex's alpha labels, which
  mangle entries without a year or with an organisation as author ("[Ducd.]"). Select them
  with ``bibtex_default_style: author_year_labels``.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from PIL import Image
from pybtex.database import Entry, Person
from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import SortingStyle as AuthorYearTitleSorting
from sphinx.application import Sphinx
from sphinx.config import Config

STYLE_NAME = "author_year_labels"


def drop_launch_buttons_off_notebooks(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object
) -> None:
    """``html-page-context``, after sphinx-book-theme adds its buttons (priority 501)."""
    if context.get("page_source_suffix") != ".ipynb" and "header_buttons" in context:
        context["header_buttons"] = [
            button
            for button in context["header_buttons"]
            if button.get("label") != "launch-buttons"
        ]


def no_header_search(app: Sphinx, config: Config) -> None:
    """``config-inited``: an empty ``navbar_persistent`` slot, unless the book fills it."""
    config.html_theme_options = {"navbar_persistent": [], **config.html_theme_options}


# An image Sphinx copied to _images/, in the HTML it writes for a page.
IMAGE_TAG = re.compile(r'<img (?P<attributes>[^>]*?src="(?:\.\./)*_images/(?P<name>[^"]+)"[^>]*?)'
                       r'(?P<end>\s*/?>)')


def natural_widths(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object
) -> None:
    """``html-page-context``: ``style="--natural-width: 640px"`` on each image of the page
    without a style of its own (the images' sources are known once the page is written)."""
    body = context.get("body", "")
    if "_images/" not in body:
        return
    sources = {name: Path(app.srcdir, source) for source, name in app.builder.images.items()}

    def with_width(tag: re.Match) -> str:
        source = sources.get(tag["name"])
        if source is None or "style=" in tag["attributes"]:
            return tag[0]
        try:
            with Image.open(source) as image:
                width = image.width
        except OSError:  # not a raster image (an SVG), or unreadable: left as it is
            return tag[0]
        return f'<img {tag["attributes"]} style="--natural-width: {width}px"{tag["end"]}'

    context["body"] = IMAGE_TAG.sub(with_width, body)


def surname(person: Person) -> str:
    """A person's last name(s) as plain text: ``{Apache MXNet contributors}`` loses its braces."""
    return Text.from_latex(" ".join(person.prelast_names + person.last_names)).render_as("text")


class AuthorYearLabels(BaseLabelStyle):
    """Labels "A, 2014", "A and B, 2014", "A et al., 2014", "A, n.d."; repeats get a, b, ..."""

    def label(self, entry: Entry) -> str:
        """One entry's label, before telling apart entries that share it."""
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [surname(person) for person in people]
        if not names:
            who = entry.key
        elif len(names) <= 2:
            who = " and ".join(names)
        else:
            who = f"{names[0]} et al."
        return f"{who}, {entry.fields.get('year', 'n.d.')}"

    def format_labels(self, sorted_entries: Iterable[Entry]) -> Iterator[str]:
        labels = [self.label(entry) for entry in sorted_entries]
        counts, seen = Counter(labels), Counter()
        for label in labels:
            if counts[label] > 1:
                yield label + string.ascii_lowercase[seen[label]]
                seen[label] += 1
            else:
                yield label


class PlainNameSorting(AuthorYearTitleSorting):
    """Author, year, title order, comparing names as plain text (braces would sort last)."""

    def person_key(self, person: Person) -> str:
        return Text.from_latex(super().person_key(person)).render_as("text")


class AuthorYearLabelStyle(UnsrtStyle):
    """pybtex's ``unsrt`` entries with author–year labels, sorted by author, year and title."""

    default_label_style = AuthorYearLabels
    default_sorting_style = PlainNameSorting


def setup(app: Sphinx) -> dict:
    register_plugin("pybtex.style.formatting", STYLE_NAME, AuthorYearLabelStyle)
    app.connect("config-inited", no_header_search)
    app.connect("html-page-context", natural_widths)
    app.connect("html-page-context", drop_launch_buttons_off_notebooks, priority=501)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
