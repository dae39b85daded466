"""The built book (``_build/html``) in headless Chromium: pages, maths, sliders, no network.

Build the book first (the README's first command). Under CI=true these tests must run; elsewhere
they skip with the reason when the book or Chromium is missing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
PAGES = ["book/preface", "notebooks/01_elbo", "notebooks/02_kl_nonnegative",
         "notebooks/03_gaussian_kl_and_reparameterization", "notebooks/04_building_the_vae",
         "notebooks/05_training", "notebooks/06_latent_space", "book/performance",
         "notebooks/07_beta_vae_and_posterior_collapse", "notebooks/08_conditional_vae",
         "notebooks/09_convolutional_vae", "book/notation", "book/references"]
# data: and blob: live in the page; chrome: and about: are the browser's own, never the network.
LOCAL_SCHEMES = ("data", "blob", "chrome", "about")
pytestmark = pytest.mark.browser


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (browser tests must run under CI)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").is_file():
        _unavailable("the book is not built: run `jupyter-book build . -W` first")
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
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        _unavailable("Chromium is missing: apt-get install chromium chromium-driver")
    os.environ["SE_AVOID_STATS"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-sync",
                 "--disable-component-update", "--disable-dev-shm-usage",
                 "--window-size=1280,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _wait_for_mathjax(driver) -> None:
    driver.set_script_timeout(30)
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const wait = () => (window.MathJax && MathJax.startup && MathJax.startup.promise)"
        " ? MathJax.startup.promise.then(() => done(true)) : setTimeout(wait, 50);"
        "wait();")


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_renders_maths_and_stays_local(server, browser, page):
    browser.get_log("performance")  # forget earlier pages' requests
    browser.get(f"{server}/{page}.html")
    assert browser.find_element("css selector", "article.bd-article h1").text.strip()
    if page != "book/references":  # the only page without maths, so without MathJax
        _wait_for_mathjax(browser)
    text = browser.find_element("css selector", "article.bd-article").text
    assert "$$" not in text and "\\begin{" not in text, "raw TeX left on the page"
    if page != "book/references":
        assert browser.find_elements("css selector", "mjx-container"), "no typeset maths"
    browser.save_screenshot(str(SCREENSHOTS / f"{page.replace('/', '_')}.png"))
    for url in _requested_urls(browser):
        scheme, host = urlparse(url).scheme, urlparse(url).hostname
        local = scheme in LOCAL_SCHEMES or (scheme == "http" and host == "127.0.0.1")
        assert local, f"request left the machine: {url}"
    broken = browser.execute_script(
        "return [...document.images].filter(i => i.complete && i.naturalWidth === 0)"
        ".map(i => i.src.slice(0, 80));")
    assert not broken, f"images that failed to load: {broken}"


@pytest.mark.parametrize("page", [p for p in PAGES if p.startswith("notebooks/")])
def test_notebook_pages_launch_in_colab_and_offer_the_notebook(page):
    if not (HTML / "index.html").is_file():
        _unavailable("the book is not built: run `jupyter-book build . -W` first")
    import yaml

    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    owner_and_name = urlparse(repository["url"]).path.strip("/")
    text = (HTML / f"{page}.html").read_text()
    colab = (f"https://colab.research.google.com/github/{owner_and_name}/blob/"
             f"{repository['branch']}/{page}.ipynb")
    assert colab in text
    assert f'href="../_sources/{page}.ipynb"' in text
    assert (HTML / "_sources" / f"{page}.ipynb").is_file()


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

    explorer, config, digit = _open_explorer(browser, f"{server}/notebooks/06_latent_space.html")
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

    url = f"{server}/notebooks/08_conditional_vae.html"
    explorer, config, digit = _open_explorer(browser, url)
    steps, frames = config["steps"], config["frames"]
    assert len(frames) == 10 * steps * steps
    middle = steps // 2
    for label in (7, 2):
        Select(explorer.find_element("css selector", "select.digit")).select_by_value(str(label))
        frame = (label * steps + middle) * steps + middle
        assert digit.get_attribute("src") == "data:image/png;base64," + frames[frame]
    browser.save_screenshot(str(SCREENSHOTS / "conditional_digit_selector.png"))


def test_solutions_are_hidden_behind_a_toggle(server, browser):
    browser.get(f"{server}/notebooks/07_beta_vae_and_posterior_collapse.html")
    solution = browser.find_element("css selector", ".admonition.dropdown")
    assert "Solution" in solution.find_element("css selector", ".admonition-title").text
    body = solution.find_element("css selector", "p:not(.admonition-title)")
    assert not body.is_displayed(), "the solution shows before the reader opens it"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", solution)
    solution.find_element("css selector", ".admonition-title").click()
    time.sleep(0.5)
    assert body.is_displayed(), "clicking the title does not reveal the solution"
