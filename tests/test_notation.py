"""The notation page's promise, "one symbol, one meaning", read against the chapters.

The page's table of symbols that belong to some chapters only (its last column names them)
reserves each symbol for those chapters: the test fails where another chapter's mathematics
uses it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTATION = (ROOT / "book" / "notation.md").read_text()
MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.DOTALL)
# A Greek letter's macro, or one Latin letter that is not part of a longer name.
SYMBOL = re.compile(r"\\[A-Za-z]+|(?<![\\A-Za-z])[A-Za-z](?![A-Za-z])")


def reserved_symbols() -> dict[str, set[int]]:
    """Symbol -> chapters, from the page's table whose last column is "chapters"."""
    table = NOTATION.split("| symbol | meaning | chapters |", 1)[1].split("\n\n", 1)[0]
    reserved = {}
    for row in re.findall(r"^\|(.+)\|$", table, re.MULTILINE)[1:]:  # below the |---| line
        symbol, _, chapters = (c.strip() for c in row.split("|"))
        (name,) = SYMBOL.findall(symbol)  # one symbol a row
        reserved[name] = {int(n) for n in re.findall(r"\d+", chapters)}
    return reserved


def math_of(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return " ".join(a or b for a, b in MATH.findall(text))


CHAPTERS = {int(p.stem[:2]): p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}


def test_the_notation_page_reserves_symbols_for_chapters():
    reserved = reserved_symbols()
    assert {r"\lambda", r"\tau"} <= set(reserved)  # the rows this test reads exist
    assert all(chapters <= set(CHAPTERS) for chapters in reserved.values())


@pytest.mark.parametrize("number", sorted(CHAPTERS))
def test_a_chapter_uses_no_symbol_reserved_for_other_chapters(number):
    used = set(SYMBOL.findall(math_of(CHAPTERS[number])))
    foreign = {symbol: sorted(chapters) for symbol, chapters in reserved_symbols().items()
               if symbol in used and number not in chapters}
    assert not foreign, f"chapter {number} uses symbols the notation page gives to: {foreign}"
