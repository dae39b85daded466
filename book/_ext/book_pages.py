"""What the theme and the bibliography get wrong for this book's pages, put right.

- Launch buttons (Colab) only on pages made from an ``.ipynb``: sphinx-book-theme also offers
  them for MyST markdown notebooks, whose ``.md`` source Colab cannot open.
- Bibliography labels that read as author and year ("Kingma and Welling, 2014",
  "Duchi, n.d.", "Apache MXNet contributors, n.d.") instead of pybtex's alpha labels, which
  mangle entries without a year or with an organisation as author ("[Ducd.]"). Select them
  with ``bibtex_default_style: author_year_labels``.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Iterable, Iterator

from pybtex.database import Entry, Person
from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import SortingStyle as AuthorYearTitleSorting
from sphinx.application import Sphinx

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
    app.connect("html-page-context", drop_launch_buttons_off_notebooks, priority=501)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
