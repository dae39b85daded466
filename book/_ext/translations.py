"""The Korean edition (한국어판): the same sources, read through Sphinx's gettext catalogs in
``book/locale/ko/LC_MESSAGES/`` (``python book/editions.py`` builds it into
``_build/html/ko/``; ``--update-catalogs`` brings the catalogs up to date with the English).

- Only prose is a message: a display equation, a paragraph or table cell that holds nothing
  but mathematics, code and punctuation, whatever a code cell printed or displayed, and a
  ``{container} notranslate`` block (the glossary's table) are marked untranslatable, so they
  are neither extracted nor looked up, and stay as the English edition has them.
- A translated edition lists in ``untranslated.json`` (beside its pages) the messages it had to
  show in English, because the catalog lacks them or has them only as fuzzy.
- The parts' captions in the table of contents are translated too (from the root page's
  catalog, where Sphinx's extraction puts them).
- Every web page's header links to the same page in the other edition ("한국어" on an English
  page, "English" on a Korean one).
"""

from __future__ import annotations

import json
import re

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.locale import init as init_locale
from sphinx.transforms import SphinxTransform
from sphinx.util.i18n import docname_to_domain
from sphinx.util.nodes import extract_messages

# The editions: language code → (the switch's label on the other edition's pages, the folder
# of _build/html the edition is built into).
EDITIONS = {"en": ("English", ""), "ko": ("한국어", "ko/")}
WORD = re.compile(r"[^\W\d_]", re.UNICODE)  # a letter of any script
UNTRANSLATED = "untranslated.json"
KEEP = "notranslate"  # a container with this class stays as written (the glossary's table)
NOT_PROSE = (nodes.math, nodes.math_block, nodes.literal, nodes.literal_block, nodes.raw)


def has_words(node: nodes.Element) -> bool:
    """Whether ``node`` has a letter outside its mathematics, code and raw markup."""
    for text in node.findall(nodes.Text):
        parent = text.parent
        while parent is not node and not isinstance(parent, NOT_PROSE):
            parent = parent.parent
        if parent is node and WORD.search(str(text)):
            return True
    return False


class OnlyProseIsTranslated(SphinxTransform):
    """Before the translations are applied (the Locale transform, priority 20) and before the
    gettext builder extracts the messages: what has no words is not a message."""

    default_priority = 10

    def apply(self, **kwargs) -> None:
        kept = [node for node in self.document.findall(nodes.Element)
                if node.get("nb_element") == "cell_code_output" or KEEP in node["classes"]
                or isinstance(node, nodes.field_name)]  # a notebook's metadata keys
        for container in kept:
            for node in container.findall(nodes.TextElement):
                node["translatable"] = False
        for node in self.document.findall(nodes.TextElement):
            if isinstance(node, nodes.math_block) or not has_words(node):
                node["translatable"] = False


class NoteUntranslated(SphinxTransform):
    """Just after the catalogs are applied, in a translated edition: every message of the page
    that found no translation (new, changed or fuzzy in the catalog), kept for the report."""

    default_priority = 21

    def apply(self, **kwargs) -> None:
        if self.config.language == "en":
            return
        missing = [message for node, message in extract_messages(self.document)
                   if not node.get("translated")]
        untranslated = self.env.__dict__.setdefault("untranslated_messages", {})
        untranslated[self.env.docname] = missing


class TranslatePartCaptions(SphinxTransform):
    """The parts' captions, in a translated edition. They are extracted with the root page's
    messages, but sphinx-external-toc inserts its toctrees (priority 100) after Sphinx has
    applied the catalogs (priority 20), so this looks them up in the same catalog."""

    default_priority = 101

    def apply(self, **kwargs) -> None:
        if self.config.language == "en":
            return
        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        folders = [str(self.env.srcdir / folder) for folder in self.config.locale_dirs]
        catalog, _ = init_locale(folders, self.config.language, domain)
        untranslated = self.env.__dict__.setdefault("untranslated_messages", {})
        for toctree in self.document.findall(addnodes.toctree):
            caption = toctree.get("caption")
            if caption:
                toctree["caption"] = catalog.gettext(caption)
                if toctree["caption"] == caption:
                    untranslated.setdefault(self.env.docname, []).append(caption)


def merge_untranslated(app: Sphinx, env: BuildEnvironment, docnames: set[str],
                       other: BuildEnvironment) -> None:
    """``env-merge-info``: the report of documents read in parallel."""
    env.__dict__.setdefault("untranslated_messages", {}).update(
        getattr(other, "untranslated_messages", {}))


def write_untranslated(app: Sphinx, exception: Exception | None) -> None:
    """``build-finished``, in a translated edition: ``untranslated.json`` beside the pages,
    page → the English messages shown untranslated (the tests require it to be empty), and
    their count in the log."""
    if exception is not None or app.config.language == "en" or app.builder.format != "html":
        return
    report = {page: messages for page, messages
              in sorted(getattr(app.env, "untranslated_messages", {}).items()) if messages}
    (app.outdir / UNTRANSLATED).write_text(json.dumps(report, ensure_ascii=False, indent=1))
    count = sum(len(messages) for messages in report.values())
    print(f"{app.config.language}: {count} messages shown untranslated, on {len(report)} "
          f"pages (listed in {UNTRANSLATED})")


def edition_link(language: str, pagename: str) -> str:
    """The address of ``pagename`` in the edition in ``language``, relative to the same page in
    the edition being built."""
    here = "../" * pagename.count("/")
    return f"{here}{'../' if language == 'en' else EDITIONS[language][1]}{pagename}.html"


def add_language_switch(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object
) -> None:
    """``html-page-context``, after sphinx-book-theme's buttons: the same page in the other
    language, first in the header's row of buttons."""
    if "header_buttons" not in context:
        return
    other = "ko" if app.config.language == "en" else "en"
    label = EDITIONS[other][0]
    context["header_buttons"].insert(0, {
        "type": "link",
        "url": edition_link(other, pagename),
        "icon": "fas fa-language",
        "text": label,
        "tooltip": "이 쪽의 한국어판" if other == "ko" else "This page in English",
        "label": "language-switch-button",
    })


def setup(app: Sphinx) -> dict:
    app.add_transform(OnlyProseIsTranslated)
    app.add_transform(NoteUntranslated)
    app.add_transform(TranslatePartCaptions)
    app.connect("env-merge-info", merge_untranslated)
    app.connect("build-finished", write_untranslated)
    app.connect("html-page-context", add_language_switch, priority=503)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
