"""Tables of already formatted cells, for the pages that build theirs from recorded figures (the
appendices on performance and on the literature): HTML in the web book, and a Markdown table,
which the PDF typesets as a table, for every other output."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

# CommonMark's punctuation that could start markup inside a cell; a backslash makes it literal.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#$~])")


class Table:
    """``display(Table(header, rows))``: each row has one plain-text cell per header cell (the
    appendices on performance and on the literature, chapters 17 and 18 of the PDF)."""

    def __init__(self, header: Sequence[object], rows: Sequence[Sequence[object]]) -> None:
        self.header = [str(cell) for cell in header]
        self.rows = [[str(cell) for cell in row] for row in rows]
        lengths = sorted({len(row) for row in self.rows} - {len(self.header)})
        if lengths:
            raise ValueError(f"every row needs {len(self.header)} cells, one per header cell; "
                             f"some rows have {lengths}")

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in self.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row)
                       + "</tr>" for row in self.rows)
        return f"<table class='table'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def _repr_markdown_(self) -> str:
        def line(cells: list[str]) -> str:
            return "| " + " | ".join(_MARKDOWN_SPECIAL.sub(r"\\\1", cell) or " "
                                     for cell in cells) + " |"

        return "\n".join([line(self.header), "|" + "---|" * len(self.header),
                          *map(line, self.rows)])
