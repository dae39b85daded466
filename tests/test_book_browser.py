"""The built book (``_build/html``) in headless Chromium: every page of ``_toc.yml`` with every
solution opened, at 1280 px and at a phone's 390 px, plus the sliders and the Colab links.

Build the book first (the README's first command: ``jupyter-book build . -W --keep-going``).
Under CI these tests must run; elsewhere they skip, with the reason, when the book or Chromium
is missing. Screenshots of every page at both widths go to ``_build/screenshots/``.
"""

from __future__ import annotations

import base64
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

import pytest
import yaml
from conftest import in_ci

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
BUILD_COMMAND = "jupyter-book build . -W --keep-going"
WIDE, PHONE = 1280, 390
# data: and blob: live in the page; chrome: and about: are the browser's own, never the network.
LOCAL_SCHEMES = ("data", "blob", "chrome", "about")
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


# Runs in the page once MathJax is done: opens every solution (sphinx-togglebutton dropdowns,
# hidden cells' <details>), turns off animations (a screenshot would catch the side panels
# sliding) and lets the layout settle.
OPEN_EVERYTHING = """
const done = arguments[arguments.length - 1];
const typeset = window.MathJax && MathJax.startup ? MathJax.startup.promise : Promise.resolve();
typeset.then(() => {
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
const brokenImages = [...document.images]
  .filter(i => i.complete && i.naturalWidth === 0).map(i => i.src.slice(0, 80));
return {rawTex, untypeset, errors, wideEquations, clippedOutputs, splitStreams, shrunkFigures,
        danglingColons, brokenImages,
        title: (article.querySelector('h1') || {textContent: ''}).textContent.trim()};
"""

# Runs in the page at 390 px: what makes the page wider than the window. Culprits are the
# outermost boxes that stick out, and the innermost blocks whose text spills out of them (a
# long word in a title); those inside a box that scrolls or clips (a code block, a display
# equation) and fixed ones (the hidden side panels) cannot widen the page. Also the tables that
# scroll sideways.
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
return {scrollWidth: document.documentElement.scrollWidth, width, culprits, scrollingTables};
"""


@dataclass
class PageReport:
    """What one page showed in the browser."""

    title: str = ""
    faults: dict[str, list[str]] = field(default_factory=dict)
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    phone: dict = field(default_factory=dict)


def _requested_urls(entries: list[dict]) -> list[str]:
    urls = []
    for entry in entries:
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


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
    driver.execute_async_script(OPEN_EVERYTHING)
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
    report.requests = _requested_urls(driver.get_log("performance"))
    driver.set_window_size(WIDE, 1000)
    return report


@pytest.fixture(scope="module")
def pages(server, browser):
    """``pages(page)``: the page's report, inspected once per test session."""
    reports: dict[str, PageReport] = {}

    def report(page: str) -> PageReport:
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


@pytest.mark.parametrize("page", PAGES)
def test_page_has_a_title_loads_its_images_and_stays_local(pages, page):
    report = pages(page)
    assert report.title, f"{page} has no title"
    remote = [url for url in report.requests if not _local(url)]
    _no_faults(page, {"images that failed to load": report.faults["brokenImages"],
                      "requests that left the machine": remote})


@pytest.mark.parametrize("page", PAGES)
def test_no_raw_tex_in_the_visible_text(pages, page):
    faults = pages(page).faults
    _no_faults(page, {"raw TeX in the text (outside maths and code)": faults["rawTex"],
                      "maths that MathJax did not typeset": faults["untypeset"]})


@pytest.mark.parametrize("page", PAGES)
def test_no_error_output(pages, page):
    _no_faults(page, {"error or stderr outputs": pages(page).faults["errors"]})


@pytest.mark.parametrize("page", PAGES)
def test_no_console_error(pages, page):
    _no_faults(page, {"console errors": pages(page).console_errors})


@pytest.mark.parametrize("page", PAGES)
def test_display_equations_fit_their_column_at_1280px(pages, page):
    _no_faults(page, {"display equations wider than the text column":
                      pages(page).faults["wideEquations"]})


@pytest.mark.parametrize("page", PAGES)
def test_cell_outputs_fit_at_1280px(pages, page):
    faults = pages(page).faults
    _no_faults(page, {"output lines cut off (the box scrolls sideways)": faults["clippedOutputs"],
                      "one cell's printed output split into boxes": faults["splitStreams"],
                      "figures shrunk below 75% of their size": faults["shrunkFigures"]})


@pytest.mark.parametrize("page", PAGES)
def test_no_sideways_scroll_at_390px(pages, page):
    phone = pages(page).phone
    wide = phone["scrollWidth"] > phone["width"]
    _no_faults(page, {
        f"{phone['scrollWidth']} px wide in a {phone['width']} px window, because of":
            phone["culprits"] or ["(no single element found)"] if wide else [],
        "tables that scroll sideways": phone["scrollingTables"]})


@pytest.mark.parametrize("page", PAGES)
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


def _open_explorer(browser, url: str):
    """The page's kernel-free latent explorer, its frames' config and its digit image."""
    browser.get(url)
    explorer = browser.find_element("css selector", ".vae-latent-explorer")
    browser.execute_script("arguments[0].scrollIntoView();", explorer)
    config = json.loads(browser.execute_script(
        "return arguments[0].querySelector('.latent-frames').textContent;", explorer))
    return explorer, config, explorer.find_element("css selector", ".latent-digit")


def test_latent_sliders_switch_frames_without_a_kernel(server, browser):
    from selenium.webdriver.common.keys import Keys

    page = _page_showing('class="vae-latent-explorer"', without='<select class="digit"')
    explorer, config, digit = _open_explorer(browser, f"{server}/{page}.html")
    steps, frames = config["steps"], config["frames"]
    marker = explorer.find_element("css selector", ".latent-marker")
    middle = steps // 2
    assert digit.get_attribute("src").endswith(frames[middle * steps + middle])
    before_src, before_left = digit.get_attribute("src"), marker.value_of_css_property("left")

    explorer.find_element("css selector", "input.z1").send_keys(Keys.RIGHT * 3)
    explorer.find_element("css selector", "input.z2").send_keys(Keys.LEFT * 2)
    i1, i2 = middle + 3, middle - 2
    assert digit.get_attribute("src") == "data:image/png;base64," + frames[i2 * steps + i1]
    assert digit.get_attribute("src") != before_src
    assert marker.value_of_css_property("left") != before_left
    value = explorer.find_element("css selector", ".z1-value").text
    assert float(value) == pytest.approx(-config["limit"] + 2 * config["limit"] * i1 / (steps - 1))
    browser.save_screenshot(str(SCREENSHOTS / "latent_sliders_moved.png"))


def test_digit_selector_switches_the_conditional_frames(server, browser):
    from selenium.webdriver.support.ui import Select

    page = _page_showing('<select class="digit"')
    explorer, config, digit = _open_explorer(browser, f"{server}/{page}.html")
    steps, frames = config["steps"], config["frames"]
    assert len(frames) == 10 * steps * steps
    middle = steps // 2
    for label in (7, 2):
        Select(explorer.find_element("css selector", "select.digit")).select_by_value(str(label))
        frame = (label * steps + middle) * steps + middle
        assert digit.get_attribute("src") == "data:image/png;base64," + frames[frame]
    browser.save_screenshot(str(SCREENSHOTS / "conditional_digit_selector.png"))


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
