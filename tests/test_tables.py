"""The appendices' tables: the same cells as HTML (the web book) and as Markdown (the PDF)."""

import pytest
from markdown_it import MarkdownIt

from vae_helpers import Table


def test_html_and_markdown_hold_the_same_escaped_cells():
    table = Table(["model", "nats"], [["<VAE> & k = 1", "-86.76 ± 0.1"], ["a|b *c* `d` $e$", ""]])
    html = table._repr_html_()
    assert "<th>model</th>" in html and "&lt;VAE&gt; &amp; k = 1" in html
    tokens = MarkdownIt("gfm-like").parse(table._repr_markdown_())
    inline = [t.children for t in tokens if t.type == "inline"]
    cells = ["".join(c.content for c in children if c.type in ("text", "text_special"))
             for children in inline]
    assert cells == ["model", "nats", "<VAE> & k = 1", "-86.76 ± 0.1", "a|b *c* `d` $e$", ""]
    assert {c.type for children in inline for c in children} <= {"text", "text_special"}


def test_a_row_with_the_wrong_number_of_cells_is_refused():
    with pytest.raises(ValueError, match="every row needs 2 cells.*\\[1\\]"):
        Table(["a", "b"], [["1", "2"], ["3"]])
