"""The built book (``_build/html``) in headless Chromium: every page of ``_toc.yml`` with every
solution opened, at 1280 px and at a phone's 390 px, plus the latent explorers (the trained
models run in the page, compared with PyTorch) and the Colab links.

Build the book first (the README's first command: ``jupyter-book build . -W --keep-going``).
Under CI these tests must run; elsewhere they skip, with the reason, when the book or Chromium
is missing. Screenshots of every page at both widths go to ``_build/screenshots/``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import yaml
from conftest import in_ci

from vae_helpers.widgets import MODEL_FOLDER, PAGE

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
BUILD_COMMAND = "jupyter-book build . -W --keep-going"
WIDE, PHONE = 1280, 390
# data: and blob: live in the page; chrome: and about: are the browser's own, never the network.
LOCAL_SCHEMES = ("data", "blob", "chrome", "about")
# The latent explorer's names: its parts' classes and the properties its script sets.
NAMES = {**PAGE["classes"], **PAGE["properties"]}
pytestmark = pytest.mark.browser


def _toc_pages() -> list[str]:
    """Every page of ``_toc.yml`` in reading order, as a path without suffix."""
    def files(entry: dict) -> Iterator[str]:
        for key in ("root", "file"):
            if key in entry:
                yield re.sub(r"\.(md|ipynb|rst)$", "", entry[key])
        for key in ("parts", "chapters", "sections"):
            for child in entry.get(key, []):
                yield from files(child)

    return list(files(yaml.safe_load((ROOT / "_toc.yml").read_text())))


# Pages of _toc.yml, then the ones Sphinx and sphinx-proof generate.
PAGES = [*_toc_pages(), "genindex", "prf-prf"]
NOTEBOOK_PAGES = [page for page in PAGES if (ROOT / f"{page}.ipynb").is_file()]
# The Korean edition's pages (``python book/editions.py`` builds them into _build/html/ko/):
# the same checks in the browser as the English ones.
KOREAN = "ko/"
BOTH_EDITIONS = PAGES + [KOREAN + page for page in PAGES]


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason} (browser tests must run under CI)")
    pytest.skip(reason)


def _require_book() -> None:
    if not (HTML / "index.html").is_file():
        _unavailable(f"the book is not built: run `{BUILD_COMMAND}` first")


def _which(*names: str) -> str | None:
    return next((path for path in map(shutil.which, names) if path), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    _require_book()
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(HTML)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = _which("chromium", "chromium-browser", "google-chrome")
    chromedriver = _which("chromedriver", "chromium.chromedriver")
    if not (chromium and chromedriver):
        _unavailable("Chromium is missing: sudo apt-get install chromium chromium-driver")
    os.environ["SE_AVOID_STATS"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # --hide-scrollbars: the page is as wide as the window, as on a phone.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-sync",
                 "--disable-component-update", "--disable-dev-shm-usage", "--hide-scrollbars",
                 f"--window-size={WIDE},1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


# Runs in the page once MathJax is done and the latent explorers run: opens every solution
# (sphinx-togglebutton dropdowns, hidden cells' <details>), turns off animations (a screenshot
# would catch the side panels sliding) and lets the layout settle.
OPEN_EVERYTHING = """
const [c, done] = arguments;
const typeset = window.MathJax && MathJax.startup ? MathJax.startup.promise : Promise.resolve();
// Each explorer loads its model when it comes into view or is touched: start them all.
const explorers = [...document.querySelectorAll('.' + c.root)].map(e => e[c.start]());
Promise.all([typeset, ...explorers]).then(() => {
  const still = document.createElement('style');
  still.textContent = '*, ::before, ::after { transition: none !important; '
                      + 'animation: none !important; }';
  document.head.append(still);
  document.querySelectorAll('.toggle-hidden > .admonition-title').forEach(t => t.click());
  document.querySelectorAll('details:not([open])').forEach(d => { d.open = true; });
  requestAnimationFrame(() => requestAnimationFrame(() => done(true)));
});
"""

# Runs in the page at 1280 px: what a reader should never see.
FAULTS_AT_WIDE = r"""
const article = document.querySelector('article.bd-article') || document.body;
const visible = el => el.checkVisibility ? el.checkVisibility() : el.getClientRects().length > 0;
const near = (text, i) => text.slice(Math.max(0, i - 40), i + 40).replace(/\s+/g, ' ');
const skip = 'pre, code, script, style, mjx-container, .MathJax';
const tex = /\$|\\[A-Za-z]+|\{(eq|math|cite|cite:[a-z]+|ref|numref|doc|prf:[a-z]+)\}/;
const rawTex = [];
const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const el = node.parentElement, match = tex.exec(node.textContent);
  if (match && !el.closest(skip) && visible(el)) rawTex.push(near(node.textContent, match.index));
}
const untypeset = [...article.querySelectorAll('.math')]
  .filter(m => !m.querySelector('mjx-container') && visible(m))
  .map(m => m.textContent.slice(0, 80));
const errors = [...article.querySelectorAll('.cell_output .output')]
  .filter(o => o.matches('.error, .traceback, .stderr')
               || /Traceback \(most recent call last\)|KeyboardInterrupt/.test(o.textContent))
  .map(o => o.className.split(' ').slice(0, 2).join('.') + ': ' + o.textContent.slice(0, 160));
const label = m => {
  const box = m.closest('.math, .MathJax_Display') || m.parentElement;
  const number = box.querySelector('.eqno');
  return (number ? number.textContent.replace('#', '').trim() + ' ' : '')
         + m.textContent.slice(0, 50);
};
const wideEquations = [...article.querySelectorAll('mjx-container[display]')]
  .filter(m => m.scrollWidth > m.clientWidth + 1 || m.scrollWidth > m.parentElement.clientWidth + 1)
  .map(m => `${label(m)} (${m.scrollWidth} px in ${m.clientWidth} px)`);
const clippedOutputs = [...article.querySelectorAll('.cell_output pre')]
  .filter(p => p.scrollWidth > p.clientWidth + 1)
  .map(p => {
    const longest = p.textContent.split('\n').reduce((a, b) => b.length > a.length ? b : a, '');
    return `${longest.slice(0, 100)} (${p.scrollWidth} px in ${p.clientWidth} px)`;
  });
const wideCode = [...article.querySelectorAll('pre')]
  .filter(p => !p.closest('.cell_output') && visible(p) && p.scrollWidth > p.clientWidth + 1)
  .map(p => {
    const longest = p.textContent.split('\n').reduce((a, b) => b.length > a.length ? b : a, '');
    return `${longest.trim().slice(0, 70)} (${p.scrollWidth} px in ${p.clientWidth} px)`;
  });
const splitStreams = [...article.querySelectorAll('.cell_output')]
  .filter(o => o.querySelectorAll(':scope > .output.stream + .output.stream').length)
  .map(o => `${o.querySelectorAll(':scope > .output.stream').length} boxes: `
            + o.textContent.trim().slice(0, 80));
const shrunkFigures = [...article.querySelectorAll('.cell_output img')]
  .filter(i => i.naturalWidth && i.clientWidth && i.clientWidth < 0.75 * i.naturalWidth)
  .map(i => `${i.naturalWidth} px image shown at ${i.clientWidth} px`);
const danglingColons = [...article.querySelectorAll('p')]
  .filter(p => visible(p) && /:\s*$/.test(p.textContent)
               && !p.closest('.admonition-title, li, td, th'))
  .filter(p => {
    const next = p.nextElementSibling;
    return !next || next.matches('p, h1, h2, h3, h4, h5, h6, section');
  })
  .map(p => p.textContent.trim().slice(-100));
// The theme's header bar above the page, when it shows and holds nothing but a search box.
const headers = [...document.querySelectorAll('.bd-header')]
  .filter(h => visible(h) && h.getBoundingClientRect().height > 0)
  .filter(h => [...h.querySelectorAll('*')].filter(visible).every(
    el => el.closest('.search-button-field, .search-button')
          || !(el.matches('a, img, svg, input') || [...el.childNodes].some(
            n => n.nodeType === Node.TEXT_NODE && n.textContent.trim()))))
  .map(h => `${Math.round(h.getBoundingClientRect().height)} px high`);
const searchBoxes = [...document.querySelectorAll('.search-button-field, form.bd-search')]
  .filter(b => visible(b) && b.getBoundingClientRect().width > 0)
  .map(b => (b.closest('header, .bd-sidebar-primary, .bd-header-article') || b).className
    .split(' ')[0]);
const brokenImages = [...document.images]
  .filter(i => i.complete && i.naturalWidth === 0).map(i => i.src.slice(0, 80));
return {rawTex, untypeset, errors, wideEquations, clippedOutputs, wideCode, splitStreams,
        shrunkFigures, danglingColons, brokenImages, headers, searchBoxes,
        title: (article.querySelector('h1') || {textContent: ''}).textContent.trim()};
"""

# Runs in the page at 390 px: what makes the page wider than the window. Culprits are the
# outermost boxes that stick out, and the innermost blocks whose text spills out of them (a
# long word in a title); those inside a box that scrolls or clips (a code block, a display
# equation) and fixed ones (the hidden side panels) cannot widen the page. Also the tables that
# scroll sideways; inline maths cut off by a box that clips it or by the column's edge (inline
# maths in a box that scrolls can be read); display equations whose number sits beside or over
# an equation that does not fit (the number then stands where the hidden part goes on); and the
# figures' natural and shown widths.
AT_PHONE_WIDTH = """
const width = document.documentElement.clientWidth;
const clips = style => style.overflowX !== 'visible' && style.display !== 'inline';
const contained = el => {
  if (getComputedStyle(el).visibility === 'hidden') return true;
  for (let box = el; box && box !== document.body; box = box.parentElement) {
    const style = getComputedStyle(box);
    if (style.position === 'fixed' || (box !== el && clips(style))) return true;
  }
  return false;
};
const boxOut = el => el.getBoundingClientRect().right > width + 1;
const spills = el => {
  const style = getComputedStyle(el);
  return style.display !== 'inline' && !clips(style) && el.scrollWidth > el.clientWidth + 1
         && el.getBoundingClientRect().left + el.scrollWidth > width + 1;
};
const shown = [...document.body.querySelectorAll('*')].filter(el => el.getClientRects().length);
const boxes = shown.filter(el => boxOut(el) && !boxOut(el.parentElement) && !contained(el));
const spilling = shown.filter(el => !boxOut(el) && spills(el) && !contained(el));
const texts = spilling.filter(el => !spilling.some(other => other !== el && el.contains(other))
                                    && !boxes.some(box => el.contains(box)));
const describe = el => `${el.tagName.toLowerCase()}.${[...el.classList].slice(0, 2).join('.')} `
  + `"${(el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 60)}"`;
const culprits = [...boxes, ...texts].map(el => `${describe(el)} (reaches `
  + `${Math.round(Math.max(el.getBoundingClientRect().right,
                           el.getBoundingClientRect().left + el.scrollWidth))} px)`);
const scrollingTables = [...document.querySelectorAll('article table')]
  .filter(t => [t, t.parentElement].some(box => box.scrollWidth > box.clientWidth + 1))
  .map(t => `${describe(t)} (${t.scrollWidth} px in ${t.parentElement.clientWidth} px)`);
const article = document.querySelector('article.bd-article') || document.body;
const visible = el => el.checkVisibility ? el.checkVisibility() : el.getClientRects().length > 0;
const column = article.getBoundingClientRect(), padding = getComputedStyle(article);
const [left, right] = [column.left + parseFloat(padding.paddingLeft),
                       column.right - parseFloat(padding.paddingRight)];
const clippedMaths = m => {
  const parts = [...m.getClientRects()];
  const beyond = (l, r) => parts.some(part => part.right > r + 1 || part.left < l - 1);
  for (let box = m.parentElement; box && box !== article; box = box.parentElement) {
    const overflow = getComputedStyle(box).overflowX, b = box.getBoundingClientRect();
    if (overflow === 'auto' || overflow === 'scroll') return false;
    if ((overflow === 'hidden' || overflow === 'clip') && beyond(b.left, b.right)) return true;
  }
  return beyond(left, right);
};
const reach = m => Math.round(Math.max(...[...m.getClientRects()].map(part => part.right)));
const clippedInlineMaths = [...article.querySelectorAll('mjx-container:not([display="true"])')]
  .filter(m => visible(m) && clippedMaths(m))
  .map(m => `${m.textContent.slice(0, 60)} (reaches ${reach(m)} px; the column ends at `
            + `${Math.round(right)} px)`);
const equations = [...article.querySelectorAll('div.math')].filter(visible).map(d => {
  const m = d.querySelector('mjx-container'), number = d.querySelector('.eqno');
  const cut = m.scrollWidth > m.clientWidth + 1;
  let crowded = false;
  if (number) {
    const [e, n] = [m, number].map(el => el.getBoundingClientRect());
    const sameLine = n.top < e.bottom - 1 && n.bottom > e.top + 1;
    crowded = sameLine && (cut || (n.left < e.right - 1 && n.right > e.left + 1));
  }
  return {cut, crowded, text: (number ? number.textContent.replace('#', '').trim() + ' ' : '')
          + `"${m.textContent.slice(0, 40)}" (${m.scrollWidth} px in ${m.clientWidth} px)`};
});
const figures = [...article.querySelectorAll('.cell_output img')]
  .filter(i => visible(i) && i.naturalWidth && i.clientWidth)
  .map(i => ({src: i.currentSrc || i.src, natural: i.naturalWidth, shown: i.clientWidth}));
return {scrollWidth: document.documentElement.scrollWidth, width, culprits, scrollingTables,
        clippedInlineMaths, equations: equations.length,
        cutEquations: equations.filter(e => e.cut).length,
        crowdedNumbers: equations.filter(e => e.crowded).map(e => e.text), figures};
"""


@dataclass
class PageReport:
    """What one page showed in the browser."""

    title: str = ""
    faults: dict[str, list[str]] = field(default_factory=dict)
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed_responses: list[str] = field(default_factory=list)
    phone: dict = field(default_factory=dict)


def _network(entries: list[dict]) -> tuple[list[str], list[str]]:
    """The URLs the page requested, and its responses with an error status (a 404)."""
    urls, failed = [], []
    for entry in entries:
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
        elif message["method"] == "Network.responseReceived":
            response = message["params"]["response"]
            if response["status"] >= 400:
                failed.append(f"{response['status']} {response['url']}")
    return urls, failed


def _full_page_screenshot(driver, path: Path) -> None:
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
    path.write_bytes(base64.b64decode(shot["data"]))


def _inspect(driver, url: str, name: str) -> PageReport:
    """Load ``url`` at 1280 px, open every solution, record the faults, then do the same at
    390 px; a full-page screenshot at each width."""
    driver.set_window_size(WIDE, 1000)
    for log in ("performance", "browser"):
        driver.get_log(log)  # forget earlier pages
    driver.get(url)
    driver.execute_async_script(OPEN_EVERYTHING, NAMES)
    found = driver.execute_script(FAULTS_AT_WIDE)
    report = PageReport(title=found.pop("title"), faults=found)
    _full_page_screenshot(driver, SCREENSHOTS / f"{name}_{WIDE}.png")
    driver.set_window_size(PHONE, 844)
    driver.execute_async_script(
        "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(done));")
    report.phone = driver.execute_script(AT_PHONE_WIDTH)
    _full_page_screenshot(driver, SCREENSHOTS / f"{name}_{PHONE}.png")
    report.console_errors = [entry["message"] for entry in driver.get_log("browser")
                             if entry["level"] == "SEVERE"]
    report.requests, report.failed_responses = _network(driver.get_log("performance"))
    driver.set_window_size(WIDE, 1000)
    return report


@pytest.fixture(scope="module")
def pages(server, browser):
    """``pages(page)``: the page's report, inspected once per test session."""
    reports: dict[str, PageReport] = {}

    def report(page: str) -> PageReport:
        if page.startswith(KOREAN) and not (HTML / KOREAN / "index.html").is_file():
            _unavailable("the Korean edition is not built: run `python book/editions.py`")
        if page not in reports:
            reports[page] = _inspect(browser, f"{server}/{page}.html", page.replace("/", "_"))
        return reports[page]

    return report


def _local(url: str) -> bool:
    """Whether a request stays in the page, the browser or the test's own server."""
    parts = urlparse(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.scheme, parts.hostname) == ("http", "127.0.0.1")


def _no_faults(page: str, found: dict[str, list[str]]) -> None:
    """Fail with every kind of fault ``found`` on ``page`` (described by its key), not the first."""
    message = "".join(f"\n{page}: {what}:\n  " + "\n  ".join(items)
                      for what, items in found.items() if items)
    assert not message, message


@pytest.mark.parametrize("page", BOTH_EDITIONS)
def test_page_has_a_title_loads_its_images_and_stays_local(pages, page):
    report = pages(page)
    assert report.title, f"{page} has no title"
    remote = [url for url in report.requests if not _local(url)]
    _no_faults(page, {"images that failed to load": report.faults["brokenImages"],
                      "requests that left the machine": remote,
                      "responses with an error status": report.failed_responses})


@pytest.mark.parametrize("page", BOTH_EDITIONS)
def test_no_raw_tex_in_the_visible_text(pages, page):
    faults = pages(page).faults
    _no_faults(page, {"raw TeX in the text (outside maths and code)": faults["rawTex"],
                      "maths that MathJax did not typeset": faults["untypeset"]})


@pytest.mark.parametrize("page", BOTH_EDITIONS)
def test_no_error_output(pages, page):
    _no_faults(page, {"error or stderr outputs": pages(page).faults["errors"]})


@pytest.mark.parametrize("page", BOTH_EDITIONS)
def test_no_console_error(pages, page):
    _no_faults(page, {"console errors": pages(page).console_errors})


@pytest.mark.parametrize("page", BOTH_EDITIONS)
def test_display_equations_fit_their_column_at_1280px(pages, page):
    _no_faults(page, {"display equations wider than the text column":
                      pages(page).faults["wideEquations"]})


@pytest.mark.parametrize("page", BOTH_EDITIONS)
def test_cell_outputs_fit_at_1280px(pages, page):
    faults = pages(page).faults
    _no_faults(page, {"output lines cut off (the box scrolls sideways)": faults["clippedOutputs"],
                      "one cell's printed output split into boxes": faults["splitStreams"],
                      "figures shrunk below 75% of their size": faults["shrunkFigures"]})


@pytest.mark.parametrize("page", BOTH_EDITIONS)
def test_no_sideways_scroll_at_390px(pages, page):
    phone = pages(page).phone
    wide = phone["scrollWidth"] > phone["width"]
    _no_faults(page, {
        f"{phone['scrollWidth']} px wide in a {phone['width']} px window, because of":
            phone["culprits"] or ["(no single element found)"] if wide else [],
        "tables that scroll sideways": phone["scrollingTables"]})


@pytest.mark.parametrize("page", BOTH_EDITIONS)
def test_no_empty_header_and_one_search_box_at_1280px(pages, page):
    faults = pages(page).faults
    boxes = faults["searchBoxes"]
    _no_faults(page, {"a header bar holding only a search box": faults["headers"],
                      "search boxes (one is enough)": boxes if len(boxes) > 1 else []})


@pytest.mark.parametrize("page", BOTH_EDITIONS)
def test_code_fits_its_column_at_1280px(pages, page):
    _no_faults(page, {"code cells that scroll sideways": pages(page).faults["wideCode"]})


@pytest.mark.parametrize("page", BOTH_EDITIONS)
def test_maths_is_whole_and_numbers_stand_apart_at_390px(pages, page):
    phone = pages(page).phone
    _no_faults(page, {
        "inline maths cut off": phone["clippedInlineMaths"],
        "equation numbers beside or over an equation that does not fit":
            phone["crowdedNumbers"]})


# A figure's text: matplotlib's default size (its ticks and labels), in pixels of the figure's
# PNG at the resolution it was saved with, scaled as the figure is shown.
FIGURE_TEXT_PT = 10  # matplotlib.rcParams["font.size"]
MIN_FIGURE_TEXT_PX = 9


def _figure_dpi(src: str) -> float | None:
    """The resolution a shown image was saved with (matplotlib records it), or None."""
    from PIL import Image

    if src.startswith("data:"):
        data = base64.b64decode(src.partition(",")[2])
    else:
        path = HTML / urlparse(src).path.lstrip("/")
        if not path.is_file():
            return None
        data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        dpi = image.info.get("dpi")
    return float(dpi[0]) if dpi else None


def figure_text_sizes(figures: list[dict]) -> list[tuple[float, str]]:
    """(text size in CSS pixels, description) for each figure saved with a resolution."""
    sizes = []
    for figure in figures:
        dpi = _figure_dpi(figure["src"])
        if dpi:
            size = FIGURE_TEXT_PT * dpi / 72 * figure["shown"] / figure["natural"]
            name = figure["src"].rsplit("/", 1)[-1][:40]
            sizes.append((size, f"{name}: {figure['natural']} px shown at {figure['shown']} px, "
                                f"its {FIGURE_TEXT_PT}-point text at {size:.1f} px"))
    return sizes


@pytest.mark.parametrize("page", BOTH_EDITIONS)
def test_figure_text_stays_readable_at_390px(pages, page):
    small = [text for size, text in figure_text_sizes(pages(page).phone["figures"])
             if size < MIN_FIGURE_TEXT_PX]
    _no_faults(page, {f"figures whose text is below {MIN_FIGURE_TEXT_PX} px": small})


@pytest.mark.parametrize("page", BOTH_EDITIONS)
def test_no_sentence_ends_in_a_colon_before_nothing(pages, page):
    _no_faults(page, {"a colon introduces nothing": pages(page).faults["danglingColons"]})


@pytest.mark.parametrize("page", PAGES)
def test_launch_buttons_only_on_notebook_pages(page):
    _require_book()
    text = (HTML / f"{page}.html").read_text()
    if page in NOTEBOOK_PAGES:
        repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
        owner_and_name = urlparse(repository["url"]).path.strip("/")
        colab = (f"https://colab.research.google.com/github/{owner_and_name}/blob/"
                 f"{repository['branch']}/{page}.ipynb")
        assert colab in text
        assert f'href="../_sources/{page}.ipynb"' in text
        assert (HTML / "_sources" / f"{page}.ipynb").is_file()
    else:
        assert "colab.research.google.com" not in text, f"{page} offers a Colab launch"


def test_bibliography_labels_read_as_author_and_year():
    _require_book()
    text = (HTML / "book" / "references.html").read_text()
    labels = re.findall(r'<span class="fn-bracket">\[</span>(.*?)<span', text)
    assert labels, "the references page lists no entries"
    author_year = re.compile(r"^\w[^,]*, (\d{4}|n\.d\.)[a-z]?$")
    assert all(author_year.match(label) for label in labels), labels


def _page_showing(marker: str, without: str | None = None) -> str:
    """The first notebook page whose built HTML contains ``marker`` (and not ``without``)."""
    _require_book()
    for page in NOTEBOOK_PAGES:
        text = (HTML / f"{page}.html").read_text()
        if marker in text and (without is None or without not in text):
            return page
    pytest.fail(f"no page of the book shows {marker!r}")


# The latent explorers: the chapters' trained models run in the page by ONNX Runtime Web. What
# the page decodes and encodes is compared with the same model files run here by ONNX Runtime
# (tests/test_export.py checks that such files compute what the PyTorch models compute). The
# explorer's names (classes, and the properties its script sets) come from their one source,
# vae_helpers.widgets.PAGE, and reach each script below as its first argument `c`.
EXPLORERS = ["latent_space", "conditional", "convolutional"]
TOLERANCE = 1e-4  # largest absolute difference allowed, in pixels' gray levels and codes

EXPLORER_READY = """
const [c, done] = arguments;
const root = document.querySelector('.' + c.root);
(root[c.start] ? root[c.start]() : Promise.resolve()).then(() => done({
  failed: root[c.state] ? root[c.state].failed : 'no state',
  config: JSON.parse(root.querySelector('.' + c.config).textContent)}));
"""

# Sets the sliders (and the digit selector) as a reader would, each z in turn, and reads back
# what the page decoded for the digit it shows.
DECODE_AT = """
const [c, zs, digits, done] = arguments;
const root = document.querySelector('.' + c.root), hooks = root[c.state];
const sliders = [c.z1, c.z2].map(name => root.querySelector('.' + name));
const select = root.querySelector('.' + c['digit-select']);
(async () => {
  const shown = [];
  for (const digit of digits) {
    if (select) { select.value = String(digit); select.dispatchEvent(new Event('change')); }
    for (const z of zs) {
      sliders.forEach((s, i) => { s.value = z[i]; s.dispatchEvent(new Event('input')); });
      await hooks.idle();
      shown.push(hooks.last);
    }
  }
  return shown;
})().then(done, error => done(String(error)));
"""

SETTLE = """
const [c, done] = arguments;
const hooks = document.querySelector('.' + c.root)[c.state];
hooks.idle().then(() => done({last: hooks.last, encoding: hooks.encoding, strip: hooks.strip}));
"""

VIEW = """
const [c] = arguments;
const root = document.querySelector('.' + c.root);
const marker = root.querySelector('.' + c.marker);
return {marker: [marker.style.left, marker.style.top],
        digit: root.querySelector('.' + c.decoded).toDataURL(),
        ellipse: !root.querySelector('.' + c.ellipse).hidden,
        strip: root.querySelectorAll('.' + c.strip + ' canvas').length};
"""


def _css(part: str) -> str:
    """The CSS selector of an explorer's ``part``."""
    return "." + PAGE["classes"][part]


def _explorer_page(name: str, part: str = "encoder", edition: str = "") -> str:
    """The notebook page that shows the explorer of the model exported as ``name``, in the
    English edition or (``edition="ko/"``) in the Korean one."""
    page = edition + _page_showing(f'"{MODEL_FOLDER}/{name}_{part}.onnx"')
    if not (HTML / f"{page}.html").is_file():
        _unavailable(f"no {page}.html: build the editions with `python book/editions.py`")
    return page


class _PageModel:
    """The model files an explorer page runs, run here by ONNX Runtime (CPU)."""

    def __init__(self, page: str, config: dict) -> None:
        try:
            import onnxruntime
        except ImportError:
            _unavailable("onnxruntime is missing: pip install -r requirements.txt")
        folder = (HTML / page).parent
        self.sessions = {part: onnxruntime.InferenceSession(
            str(folder / url), providers=["CPUExecutionProvider"])
            for part, url in config["models"].items()}
        self.config = config
        self.conditional, self.digits = config.get("conditional"), config.get("digits")

    def _label(self, n: int, digit: int) -> dict:
        return {"y": np.full(n, digit, dtype=np.int64)} if self.conditional else {}

    def decode(self, zs, digit: int = 0) -> np.ndarray:
        z = np.asarray(zs, dtype=np.float32)
        return self.sessions["decoder"].run(["pixels"], {"z": z, **self._label(len(z), digit)})[0]

    def encode(self, x, digit: int = 0) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float32)
        return tuple(self.sessions["encoder"].run(["mu", "log_var"],
                                                  {"x": x, **self._label(len(x), digit)}))


def _open_explorer(browser, server: str, name: str, width: int = WIDE, part: str = "encoder",
                   edition: str = ""):
    """Load the page with the explorer ``name`` (whose model has ``part``) at ``width`` and wait
    until its model runs; returns the page, the explorer element and the model files it runs."""
    page = _explorer_page(name, part, edition)
    browser.set_window_size(width, 1000 if width == WIDE else 844)
    browser.get(f"{server}/{page}.html")
    explorer = browser.find_element("css selector", _css("root"))
    ready = browser.execute_async_script(EXPLORER_READY, NAMES)
    assert ready["failed"] is None, f"{page}: the explorer did not start: {ready['failed']}"
    browser.execute_script("arguments[0].scrollIntoView();", explorer)
    return page, explorer, _PageModel(page, ready["config"])


def _max_difference(got, expected) -> float:
    return float(np.abs(np.asarray(got, dtype=np.float32) - np.asarray(expected)).max())


@pytest.mark.parametrize("name, edition", [(name, "") for name in EXPLORERS]
                         + [("latent_space", KOREAN)])
def test_the_page_decodes_as_its_model_files_do(server, browser, name, edition):
    import torch

    page, _, model = _open_explorer(browser, server, name, edition=edition)
    generator = torch.Generator().manual_seed(0)
    zs = (torch.rand(20, 2, generator=generator) * 6 - 3).tolist()
    digits = model.digits if model.conditional else [0]
    shown = browser.execute_async_script(DECODE_AT, NAMES, zs, digits)
    assert isinstance(shown, list), shown
    assert len(shown) == len(zs) * len(digits)
    worst = 0.0
    for k, decoded in enumerate(shown):
        digit, z = digits[k // len(zs)], zs[k % len(zs)]
        assert decoded["z"] == pytest.approx(z, abs=1e-6) and decoded["digit"] == digit
        expected = model.decode([decoded["z"]], digit)[0]
        worst = max(worst, _max_difference(decoded["pixels"], expected))
    assert worst <= TOLERANCE, f"{page}: pixels differ from ONNX Runtime's by up to {worst:.2e}"


def _stroke(browser, pad, points: list[tuple[int, int]], touch: bool = False) -> None:
    """Draw through ``points`` (offsets from the pad's center) with a mouse or a finger, in
    small steps, as WebDriver's pointer actions: real pointer events in the page."""
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    kind = interaction.POINTER_TOUCH if touch else interaction.POINTER_MOUSE
    actions = ActionBuilder(browser, mouse=PointerInput(kind, "finger" if touch else "mouse"),
                            duration=10)
    pointer = actions.pointer_action
    pointer.move_to(pad, *points[0]).pointer_down()
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        for step in range(1, 9):
            pointer.move_to(pad, round(x0 + (x1 - x0) * step / 8), round(y0 + (y1 - y0) * step / 8))
    pointer.pointer_up()
    actions.perform()


@pytest.mark.parametrize("name", EXPLORERS)
def test_a_digit_drawn_on_the_pad_is_encoded_as_its_model_files_do(server, browser, name):
    page, explorer, model = _open_explorer(browser, server, name)
    before = browser.execute_script(VIEW, NAMES)
    explorer.screenshot(str(SCREENSHOTS / f"explorer_{name}_before_drawing.png"))
    pad = explorer.find_element("css selector", _css("pad"))
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", pad)
    # A seven: the bar, then the stem; on the conditional page with its label selected, and
    # drawn with a finger there.
    if model.conditional:
        browser.execute_script(
            "const s = arguments[0].querySelector(arguments[1]);"
            "s.value = '7'; s.dispatchEvent(new Event('change'));", explorer, _css("digit-select"))
    _stroke(browser, pad, [(-55, -65), (55, -65), (-5, 70)], touch=model.conditional)
    settled = browser.execute_async_script(SETTLE, NAMES)
    after = browser.execute_script(VIEW, NAMES)
    # Scrolled down to it as before: the theme's header shows while one scrolls up.
    browser.execute_script("window.scrollTo(0, 0); arguments[0].scrollIntoView();", explorer)
    explorer.screenshot(str(SCREENSHOTS / f"explorer_{name}_after_drawing.png"))

    encoding = settled["encoding"]
    assert encoding is not None, f"{page}: the stroke was not encoded"
    assert after["marker"] != before["marker"], "the marker stayed where it was"
    assert after["ellipse"], "no ellipse for the drawn digit's sigma"
    x = np.asarray([encoding["input"]], dtype=np.float32)
    assert x.shape == (1, 784) and 0 <= x.min() and x.max() <= 1 and x.sum() > 10
    digit = encoding["digit"] if model.conditional else 0
    mu, log_var = model.encode(x, digit)
    reconstruction = model.decode(mu, digit)[0]
    assert settled["last"]["z"] == pytest.approx(encoding["mu"], abs=1e-6)  # the marker's z is mu
    for what, got, expected in (("mu", encoding["mu"], mu[0]),
                                ("log_var", encoding["logVar"], log_var[0]),
                                ("reconstruction", encoding["pixels"], reconstruction)):
        worst = _max_difference(got, expected)
        assert worst <= TOLERANCE, f"{page}: {what} differs from ONNX Runtime's by {worst:.2e}"


def test_slider_and_marker_change_the_digit_and_the_strip_has_the_images_asked(server, browser):
    from selenium.webdriver.common.action_chains import ActionChains

    page, explorer, model = _open_explorer(browser, server, "latent_space")
    start = browser.execute_script(VIEW, NAMES)
    center = "arguments[0].scrollIntoView({block: 'center'});"
    slider = explorer.find_element("css selector", _css("z1"))
    browser.execute_script(center, slider)
    ActionChains(browser).move_to_element_with_offset(slider, slider.size["width"] // 3, 0) \
        .click().perform()
    moved = browser.execute_async_script(SETTLE, NAMES)
    after_slider = browser.execute_script(VIEW, NAMES)
    assert moved["last"]["z"][0] > 0.5, moved["last"]["z"]
    assert after_slider["digit"] != start["digit"] and after_slider["marker"] != start["marker"]

    latent_map = explorer.find_element("css selector", _css("map"))
    browser.execute_script(center, latent_map)
    dx, dy = browser.execute_script(  # the marker's center, from the map's center
        "const [m, r] = [arguments[0], arguments[0].parentElement].map("
        "  e => e.getBoundingClientRect());"
        "return [Math.round(m.x + m.width / 2 - r.x - r.width / 2),"
        "        Math.round(m.y + m.height / 2 - r.y - r.height / 2)];",
        explorer.find_element("css selector", _css("marker")))
    ActionChains(browser).move_to_element_with_offset(latent_map, dx, dy).click_and_hold() \
        .move_by_offset(-40, 30).move_by_offset(-40, 30).release().perform()
    dragged = browser.execute_async_script(SETTLE, NAMES)
    after_drag = browser.execute_script(VIEW, NAMES)
    assert dragged["last"]["z"][0] < moved["last"]["z"][0] - 0.5
    assert dragged["last"]["z"][1] < moved["last"]["z"][1] - 0.5
    assert after_drag["digit"] != after_slider["digit"]

    steps = explorer.find_element("css selector", _css("steps"))
    steps.clear()
    steps.send_keys("5")
    browser.execute_script(
        "const [root, from, to] = arguments;"
        "root.querySelector(from).value = 'test1'; root.querySelector(to).value = 'marker';",
        explorer, _css("from"), _css("to"))
    explorer.find_element("css selector", _css("interpolate")).click()
    strip = browser.execute_async_script(SETTLE, NAMES)["strip"]
    assert browser.execute_script(VIEW, NAMES)["strip"] == 5 and len(strip["zs"]) == 5
    assert strip["zs"][-1] == pytest.approx(dragged["last"]["z"], abs=1e-6)
    expected = model.decode(strip["zs"]).flatten()
    assert _max_difference(strip["pixels"], expected) <= TOLERANCE
    browser.save_screenshot(str(SCREENSHOTS / "latent_explorer_moved.png"))


# The legend's colors, and how many of the map's pixels show each (within a small distance, as
# the points' edges are blended into the white background).
LEGEND = """
const [c, done] = arguments;
const root = document.querySelector('.' + c.root);
const legend = root.querySelector('.' + c.legend);
if (!legend) return done(null);
const items = [...legend.querySelectorAll(':scope > span')].map(item => ({
  text: item.textContent.trim(),
  color: getComputedStyle(item.querySelector('span')).backgroundColor
    .match(/\\d+/g).slice(0, 3).map(Number)}));
const picture = root.querySelector('.' + c.map + ' img');
const canvas = document.createElement('canvas');
canvas.width = picture.naturalWidth; canvas.height = picture.naturalHeight;
const context = canvas.getContext('2d');
context.drawImage(picture, 0, 0);
const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
const counts = items.map(({color}) => {
  let n = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    if (color.every((v, k) => Math.abs(v - pixels[i + k]) <= 12)) n++;
  }
  return n;
});
const [l, p] = [legend, picture].map(e => e.getBoundingClientRect());
done({items, counts, shown: legend.checkVisibility(),
      below: l.top >= p.bottom - 1 || l.left >= p.right - 1});
"""


@pytest.mark.parametrize("name", EXPLORERS)
def test_the_latent_map_has_a_legend_of_its_colors(server, browser, name):
    page, _, _ = _open_explorer(browser, server, name)
    legend = browser.execute_async_script(LEGEND, NAMES)
    assert legend is not None, f"{page}: the latent map has no legend"
    assert legend["shown"] and legend["below"], f"{page}: the legend is hidden or over the map"
    assert [item["text"] for item in legend["items"]] == [str(d) for d in range(10)]
    assert len({tuple(item["color"]) for item in legend["items"]}) == 10, legend["items"]
    # Each digit's color is on the map: the legend describes this picture's points.
    assert min(legend["counts"]) >= 20, dict(zip(range(10), legend["counts"]))


# On a phone the theme shows its "back to top" button (fixed, near the window's bottom) while
# one scrolls up. For each place of the drawing pad in the window, reached by scrolling up:
# whether the button is shown over the pad, and where.
BACK_TO_TOP = """
const [c, offset, done] = arguments;
const pad = document.querySelector('.' + c.root + ' .' + c.pad);
const frames = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
const wait = ms => new Promise(r => setTimeout(r, ms));
(async () => {
  const top = pad.getBoundingClientRect().top + window.scrollY;
  window.scrollTo(0, top - offset + 200);  // below, then up: the button shows
  await wait(100); await frames();
  window.scrollTo(0, top - offset);
  await wait(100); await frames();
  const button = document.getElementById('pst-back-to-top');
  if (!button) return {button: null};
  const [b, p] = [button, pad].map(e => e.getBoundingClientRect());
  const shown = button.checkVisibility() && b.width > 0;
  const over = shown && b.left < p.right && b.right > p.left
               && b.top < p.bottom && b.bottom > p.top;
  return {button: true, shown, over, rect: [b.left, b.top, b.width, b.height].map(Math.round)};
})().then(done);
"""


def test_the_back_to_top_button_never_covers_the_drawing_pad_on_a_phone(server, browser):
    page, _, _ = _open_explorer(browser, server, "latent_space", width=PHONE)
    try:
        height = browser.execute_script("return window.innerHeight;")
        found = {offset: browser.execute_async_script(BACK_TO_TOP, NAMES, offset)
                 for offset in range(0, height, 50)}
        assert any(place["button"] for place in found.values()), "the theme has no such button"
        over = {offset: place["rect"] for offset, place in found.items() if place["over"]}
        assert not over, f"{page}: the button covers the pad with the pad's top at: {over}"
        # Away from the pad (above or below it), the button still shows.
        away = [browser.execute_async_script(BACK_TO_TOP, NAMES, offset)
                for offset in (-1200, height + 800)]
        assert any(place["shown"] for place in away), away
        browser.execute_async_script(BACK_TO_TOP, NAMES, height - 250)
        browser.save_screenshot(str(SCREENSHOTS / f"explorer_pad_{PHONE}.png"))
    finally:
        browser.set_window_size(WIDE, 1000)


def test_without_webassembly_the_explorer_keeps_a_picture_and_says_why(server, browser):
    page = _explorer_page("latent_space")
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                     {"source": "delete window.WebAssembly;"})
    try:
        browser.get(f"{server}/{page}.html")
        explorer = browser.find_element("css selector", _css("root"))
        fallback = explorer.find_element("css selector", _css("fallback"))
        assert fallback.is_displayed()
        assert "WebAssembly" in fallback.text and "http.server" not in fallback.text
        assert not explorer.find_element("css selector", _css("live")).is_displayed()
        image = fallback.find_element("css selector", "img")
        assert browser.execute_script("return arguments[0].naturalWidth;", image) > 0
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", script)


def test_opened_as_a_file_the_explorer_says_to_serve_the_folder(browser):
    """Over file:// the browser blocks ONNX Runtime's module: the page says to serve the book
    (the README's command) instead of blaming WebAssembly, and tries nothing that fails."""
    page = _explorer_page("latent_space")
    browser.get_log("browser")
    browser.get((HTML / f"{page}.html").as_uri())
    explorer = browser.find_element("css selector", _css("root"))
    ready = browser.execute_async_script(EXPLORER_READY, NAMES)
    fallback = explorer.find_element("css selector", _css("fallback"))
    assert fallback.is_displayed() and ready["failed"]
    assert "python -m http.server -d _build/html" in fallback.text, fallback.text
    assert "WebAssembly" not in fallback.text
    assert not explorer.find_element("css selector", _css("live")).is_displayed()
    image = fallback.find_element("css selector", "img")
    assert browser.execute_script("return arguments[0].naturalWidth;", image) > 0
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not [e for e in errors if "onnxruntime" in e or "latent explorer" in e], errors


# Chapter 9's second explorer (M2's style code): found by the model files it names.
SWITCH_CLASS = """
const [c, name, z, digits, done] = arguments;
const root = [...document.querySelectorAll('.' + c.root)]
  .find(r => r.querySelector('.' + c.config).textContent.includes(name));
(async () => {
  await root[c.start]();
  const hooks = root[c.state], select = root.querySelector('.' + c['digit-select']);
  root.querySelectorAll('.' + c.z1 + ', .' + c.z2).forEach((s, i) => {
    s.value = z[i]; s.dispatchEvent(new Event('input'));
  });
  const shown = [];
  for (const digit of digits) {
    select.value = String(digit);
    select.dispatchEvent(new Event('change'));
    await hooks.idle();
    shown.push(hooks.last);
  }
  return {failed: hooks.failed, shown,
          config: JSON.parse(root.querySelector('.' + c.config).textContent)};
})().then(done, error => done(String(error)));
"""


def test_the_m2_explorer_changes_the_class_and_keeps_the_style(server, browser):
    """Chapter 9's M2 explorer: one style code z decoded as each digit, as its model files do,
    and a different image for each digit."""
    page = _explorer_page("semi_supervised")
    browser.set_window_size(WIDE, 1000)
    browser.get(f"{server}/{page}.html")
    z, digits = [0.5, -0.8], list(range(10))
    found = browser.execute_async_script(SWITCH_CLASS, NAMES, "semi_supervised_decoder", z,
                                         digits)
    assert isinstance(found, dict) and found["failed"] is None, found
    model = _PageModel(page, found["config"])
    assert model.conditional
    for digit, shown in zip(digits, found["shown"]):
        assert shown["digit"] == digit and shown["z"] == pytest.approx(z, abs=1e-6)
        assert _max_difference(shown["pixels"], model.decode([z], digit)[0]) <= TOLERANCE
    images = np.asarray([shown["pixels"] for shown in found["shown"]])
    assert min(np.abs(images[i] - images[j]).max() for i in range(10) for j in range(i)) > 0.1


RESOURCES = "return performance.getEntriesByType('resource').map(e => e.name);"
WAIT_READY = """
const [c, done] = arguments;
const root = document.querySelector('.' + c.root);
root[c.ready].then(() => done({failed: root[c.state].failed, startedMs: root[c.state].startedMs}));
"""


def test_an_explorer_loads_its_model_only_once_it_comes_into_view(server, browser):
    """The page shows the explorer's picture at once and downloads neither ONNX Runtime nor the
    model until the reader scrolls to it (what benchmarks/browser_explorer.py measures)."""
    page = _explorer_page("latent_space")
    browser.set_window_size(WIDE, 1000)
    browser.get(f"{server}/{page}.html")
    time.sleep(1.5)  # time enough for a page that loads eagerly to ask for the runtime
    explorer = browser.find_element("css selector", _css("root"))
    assert not [u for u in browser.execute_script(RESOURCES)
                if u.endswith(".onnx") or "onnxruntime" in u]
    assert explorer.find_element("css selector", _css("fallback")).is_displayed()
    assert "scroll to it" in explorer.find_element("css selector", _css("loading")).text
    assert browser.execute_script(f"return arguments[0].{NAMES['state']}.startedMs;",
                                  explorer) is None
    browser.execute_script("arguments[0].scrollIntoView();", explorer)
    ready = browser.execute_async_script(WAIT_READY, NAMES)
    assert ready["failed"] is None and ready["startedMs"] is not None
    assert explorer.find_element("css selector", _css("live")).is_displayed()
    assert not explorer.find_element("css selector", _css("fallback")).is_displayed()
    assert [u for u in browser.execute_script(RESOURCES) if u.endswith(".onnx")]


SAMPLE = """
const [c, noise, done] = arguments;
const hooks = document.querySelector('.' + c.root)[c.state];
hooks.sample(noise).then(() => done({path: hooks.chain.path, samples: hooks.samples}),
                         error => done(String(error)));
"""

SHOW_STEP = """
const [c, position] = arguments;
const root = document.querySelector('.' + c.root), slider = root.querySelector('.' + c.step);
slider.value = position;
slider.dispatchEvent(new Event('input'));
return {last: root[c.state].last, label: root.querySelector('.' + c['step-value']).textContent};
"""


def test_the_diffusion_explorer_samples_as_pytorch_does(server, browser):
    """On fixed noise, the page's reverse chain is LatentDiffusion.sample's, run with the page's
    denoiser file (tests/test_export.py checks it against the PyTorch network), and each step the
    slider picks shows those codes decoded by the page's decoder file."""
    import torch

    from vae_helpers import LatentDiffusion

    page, explorer, model = _open_explorer(browser, server, "latent_diffusion", part="denoiser")
    config = model.config
    n, nz, steps, schedule = config["n"], config["nz"], config["steps"], config["schedule"]
    prior = LatentDiffusion(nz, steps=steps, beta_start=schedule["betas"][0],
                            beta_end=schedule["betas"][-1])
    for key, buffer in (("betas", "betas"), ("alphas", "alphas"),
                        ("alphaBars", "alpha_bars"), ("variances", "variances")):
        np.testing.assert_allclose(schedule[key], getattr(prior, buffer).numpy(), rtol=1e-12)
    session = model.sessions["denoiser"]

    class PageDenoiser(torch.nn.Module):  # the page's file in place of the network
        def forward(self, z, t):
            (eps,) = session.run(["eps"], {"z": z.numpy(), "t": t.float().numpy()})
            return torch.from_numpy(eps)

    prior.denoiser = PageDenoiser()
    noise = torch.randn(steps, n, nz, generator=torch.Generator().manual_seed(0))
    drawn = browser.execute_async_script(SAMPLE, NAMES, noise.flatten().tolist())
    assert isinstance(drawn, dict), drawn
    expected = prior.sample(n, noise=noise, trajectory=True)  # z_T, ..., z_0
    got = np.asarray(drawn["path"]).reshape(steps + 1, n, nz)
    worst = _max_difference(got, expected.numpy())
    assert worst <= TOLERANCE, f"{page}: the chain differs from PyTorch's by up to {worst:.2e}"
    for position in (0, steps // 2, steps):
        shown = browser.execute_script(SHOW_STEP, NAMES, position)
        assert shown["last"]["position"] == position
        assert shown["label"].startswith(f"t = {steps - position}")
        pixels = model.decode(expected[position].numpy())
        assert _max_difference(shown["last"]["pixels"], pixels.reshape(-1)) <= TOLERANCE
    explorer.find_element("css selector", _css("sample")).click()
    again = browser.execute_async_script(SETTLE_DIFFUSION, NAMES)
    assert again["samples"] == drawn["samples"] + 1
    assert _max_difference(np.asarray(again["path"]).reshape(steps + 1, n, nz), got) > 0.1
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", explorer)
    explorer.screenshot(str(SCREENSHOTS / "diffusion_explorer.png"))


SETTLE_DIFFUSION = """
const [c, done] = arguments;
const hooks = document.querySelector('.' + c.root)[c.state];
hooks.idle().then(() => done({path: hooks.chain.path, samples: hooks.samples}));
"""


def test_solutions_are_hidden_behind_a_toggle(server, browser):
    page = _page_showing('class="dropdown admonition')
    browser.get(f"{server}/{page}.html")
    dropdowns = browser.find_elements("css selector", ".admonition.dropdown")
    solutions = [dropdown for dropdown in dropdowns
                 if "Solution" in dropdown.find_element("css selector", ".admonition-title").text]
    assert solutions, f"{page} has dropdowns but no solution"
    solution = solutions[0]
    body = solution.find_element("css selector", ":scope > :not(.admonition-title)")
    assert not body.is_displayed(), "the solution shows before the reader opens it"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", solution)
    solution.find_element("css selector", ".admonition-title").click()
    time.sleep(0.5)
    assert body.is_displayed(), "clicking the title does not reveal the solution"
