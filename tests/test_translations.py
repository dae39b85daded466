"""The Korean edition's message catalogs (``book/locale/ko``): complete, current, and faithful
to the English markup. A changed English paragraph fails these tests until it is translated."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CATALOGS = sorted((ROOT / "book" / "locale" / "ko" / "LC_MESSAGES").rglob("*.po"))
HANGUL = re.compile(r"[\uac00-\ud7a3]")
# What a translation keeps exactly: inline mathematics, code, link targets, label targets, and
# each role with its target (a role's own title may be translated: {doc}`제목 <target>`).
MATH = re.compile(r"(?<!\\)\$\$?(?:[^$\\]|\\.)+?\$\$?")
ROLE = re.compile(r"\{([\w:-]+)\}`(?:[^`<]*<([^`>]+)>|([^`]*))`")
CODE = re.compile(r"(?<!\})``?[^`]+``?")
LINK_TARGET = re.compile(r"\]\(([^)]+)\)")


def markup(text: str) -> Counter:
    """The pieces of ``text`` that every translation of it must contain unchanged."""
    pieces = Counter(f"math {m}" for m in MATH.findall(text))
    without_math = MATH.sub(" ", text)
    for role, target, content in ROLE.findall(without_math):
        pieces[f"{role} {(target or content).strip()}"] += 1
    without_roles = ROLE.sub(" ", without_math)
    pieces.update(f"code {c}" for c in CODE.findall(without_roles))
    pieces.update(f"link {t}" for t in LINK_TARGET.findall(without_roles))
    return pieces


def emphasis(text: str) -> Counter:
    """How many bold and italic spans ``text`` renders as (CommonMark, as MyST reads it): a
    ``**`` that Hangul touches from outside a closing parenthesis, say, renders as asterisks."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parseInline(MATH.sub("x", text))[0].children
    return Counter(token.type for token in tokens if token.type in ("strong_open", "em_open"))


def problems(msgid: str, msgstr: str) -> list[str]:
    """What is wrong with ``msgstr`` as the Korean of ``msgid`` (empty: nothing)."""
    if not msgstr.strip():
        return ["not translated"]
    found = []
    if not HANGUL.search(msgstr):
        found.append("no Hangul in the translation")
    expected, got = markup(msgid), markup(msgstr)
    if expected != got:
        lost, added = expected - got, got - expected
        found.append(f"markup differs: lost {sorted(lost.elements())}, "
                     f"added {sorted(added.elements())}")
    if emphasis(msgid) != emphasis(msgstr):
        found.append(f"bold/italic spans differ: {dict(emphasis(msgid))} in the English, "
                     f"{dict(emphasis(msgstr))} rendered from the translation")
    return found


def _catalog(path: Path):
    from babel.messages.pofile import read_po

    with path.open("rb") as handle:
        return read_po(handle)


def test_there_is_a_catalog_for_every_page_of_the_book():
    base = ROOT / "book" / "locale" / "ko" / "LC_MESSAGES"
    missing = [page for page in _toc_pages() if not (base / f"{page}.po").is_file()]
    assert not missing, f"no catalog for {missing}: python book/editions.py --update-catalogs"


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: p.stem)
def test_every_message_is_translated_none_fuzzy_none_obsolete(path):
    catalog = _catalog(path)
    messages = [m for m in catalog if m.id]
    assert messages, f"{path.name}: no messages"
    fuzzy = [m.id[:60] for m in messages if m.fuzzy]
    assert not fuzzy, f"{path.name}: fuzzy (the English changed since): {fuzzy}"
    assert not catalog.obsolete, (f"{path.name}: obsolete messages (no longer in the English): "
                                  f"{[key[:60] for key in catalog.obsolete]}")
    wrong = {m.id[:60]: p for m in messages for p in [problems(m.id, m.string)] if p}
    assert not wrong, f"{path.name}: {wrong}"


@pytest.mark.parametrize("msgid, msgstr, ok", [
    ("The bound $\\log p(x)$, see {doc}`02_kl`.", "경계 $\\log p(x)$는 {doc}`02_kl`을 보라.", True),
    ("The bound $\\log p(x)$.", "경계 $\\log p(z)$.", False),
    ("See {doc}`the proof <02_kl>`.", "{doc}`증명 <02_kl>`을 보라.", True),
    ("See {doc}`the proof <02_kl>`.", "{doc}`증명 <03_kl>`을 보라.", False),
    ("Call `fit` **now**.", "지금 `fit`을 호출한다.", False),
    ("The **rate (R)** is", "**레이트(R)**는", False),  # CommonMark leaves this unbolded
    ("The **rate (R)** is", "**레이트**(R)는", True),
    ("Call `fit`.", "Call `fit`.", False),
    ("A [link](https://x.org).", "[링크](https://x.org).", True),
])
def test_the_markup_check_catches_what_a_translation_must_keep(msgid, msgstr, ok):
    assert (problems(msgid, msgstr) == []) is ok


# The built editions (the README's build command): the Korean site beside the English one.
HTML = ROOT / "_build" / "html"
KOREAN_SITE = HTML / "ko"
SWITCH = re.compile(r'<a href="([^"]+)"[^>]*\n?\s*class="btn btn-sm btn-language-switch-button"')


def _require_site() -> None:
    from conftest import in_ci

    if not (KOREAN_SITE / "index.html").is_file():
        reason = ("the Korean edition is not built: `jupyter-book build . -W --keep-going`, "
                  "then `python book/editions.py`")
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)


def _toc_pages() -> list[str]:
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


def test_the_korean_site_shows_no_english_message():
    _require_site()
    report = json.loads((KOREAN_SITE / "untranslated.json").read_text())
    assert report == {}, {page: messages[:3] for page, messages in report.items()}


@pytest.mark.parametrize("page", _toc_pages())
def test_every_page_links_to_the_same_page_in_the_other_edition(page):
    _require_site()
    english, korean = HTML / f"{page}.html", KOREAN_SITE / f"{page}.html"
    for here, there, language in ((english, korean, "en"), (korean, english, "ko")):
        text = here.read_text()
        assert f'<html lang="{language}"' in text
        links = SWITCH.findall(text)
        assert len(links) == 1, f"{here.relative_to(ROOT)}: {len(links)} language switches"
        assert (here.parent / links[0]).resolve() == there.resolve(), links[0]
