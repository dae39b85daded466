"""What the in-page explorers cost a reader: page weight, time to first image, decoding.

Serves the built book (``_build/html``) on 127.0.0.1 and opens each explorer page in headless
Chromium twice: with an empty cache (a first visit) and again (a cached visit). A page shows
each explorer's picture at once and loads ONNX Runtime Web and the model only when the explorer
comes into view, so each visit is measured in two parts. It records

- the bytes transferred while the reader has not scrolled to the explorer (two seconds after
  the page loaded), all of them and those of the explorer (ONNX files, ONNX Runtime Web, the
  page script), as sent by this uncompressed local server;
- after scrolling to the explorer: the bytes it then adds, the same files gzip-compressed (what
  a server that compresses would send), and the time from the scroll to the first live image;
- for a latent explorer, the time per decode in the page (one z at a time, as a slider moves),
  over 200 decodes: each ``session.run`` call (the page's clock ticks in steps of 0.1 ms without
  cross-origin isolation), and the whole loop divided by the number of decodes (moving the
  slider, decoding, drawing); for the diffusion explorer, the time per "sample" (eight chains
  of 100 denoiser calls, then every step decoded), over 10 samples.

Usage (after the README's build command)::

    python benchmarks/browser_explorer.py --record benchmarks/results.json
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
EXPLORERS = {"latent_space": "notebooks/07_latent_space",
             "conditional": "notebooks/09_conditional_vae",
             "convolutional": "notebooks/10_convolutional_vae",
             "latent_diffusion": "notebooks/16_hierarchical_vaes_and_diffusion"}
ADDED = (".onnx", "/vendor/onnxruntime/", "latent_explorer.js")  # what the explorer brings

# The explorer's names (its classes, the properties the page script sets), from their one source.
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
from bench_training import record  # noqa: E402

from vae_helpers.widgets import PAGE  # noqa: E402

NAMES = {**PAGE["classes"], **PAGE["properties"]}
# Scrolls the page's first explorer into view and waits for its model to run.
FIRST_IMAGE = """
const done = arguments[arguments.length - 1];
const root = document.querySelector('.{root}');
root.scrollIntoView();
root.{ready}.then(() => done({{failed: root.{state}.failed, startedMs: root.{state}.startedMs,
                               firstImageMs: root.{state}.firstImageMs}}));
""".format(**NAMES)

SAMPLES = """
const [n, done] = arguments;
const hooks = document.querySelector('.{root}').{state};
(async () => {{
  const each = [];
  for (let i = 0; i < n; i++) {{
    const start = performance.now();
    await hooks.sample();
    each.push(performance.now() - start);
  }}
  return {{each}};
}})().then(done);
""".format(**NAMES)

# Each decode's time is the page's lastDecodeMs, read after the decode it belongs to.
DECODES = """
const [n, done] = arguments;
const root = document.querySelector('.{root}'), hooks = root.{state};
const slider = root.querySelector('.{z1}');
(async () => {{
  const each = [], start = performance.now();
  for (let i = 0; i < n; i++) {{
    const before = hooks.decodes;
    slider.value = -3 + 6 * i / (n - 1);
    slider.dispatchEvent(new Event('input'));
    await hooks.idle();
    if (hooks.decodes > before) each.push(hooks.lastDecodeMs);
  }}
  return {{each, loop: (performance.now() - start) / n}};
}})().then(done);
""".format(**NAMES)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("google-chrome")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-dev-shm-usage",
                 "--window-size=1280,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_script_timeout(120)
    driver.execute_cdp_cmd("Network.enable", {})
    return driver


def _transferred(driver) -> dict[str, int]:
    """Bytes received per URL since the last call, from the DevTools network log."""
    urls, sizes = {}, {}
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
        elif message["method"] == "Network.loadingFinished":
            url = urls.get(params["requestId"])
            if url:
                sizes[url] = sizes.get(url, 0) + int(params["encodedDataLength"])
    return sizes


def _added(sizes: dict[str, int]) -> dict[str, int]:
    return {u: n for u, n in sizes.items() if any(part in u for part in ADDED)}


def _visit(driver, url: str) -> dict:
    driver.get_log("performance")
    driver.get(url)
    time.sleep(2)  # a reader reading the top of the page
    before = _transferred(driver)
    found = driver.execute_async_script(FIRST_IMAGE)
    if found["failed"]:
        raise RuntimeError(f"{url}: the explorer failed: {found['failed']}")
    time.sleep(0.5)  # let the last responses finish in the log
    added = _added(_transferred(driver))
    return {"first_image_after_scroll_ms": round(found["firstImageMs"] - found["startedMs"], 1),
            "bytes_before_scroll": sum(before.values()),
            "explorer_bytes_before_scroll": sum(_added(before).values()),
            "added_bytes": sum(added.values()),
            "added_files": sorted(u.split("/")[-1].split("?")[0] for u in added)}


def _gzip_bytes(paths: list[Path]) -> int:
    return sum(len(gzip.compress(path.read_bytes(), 6)) for path in paths)


def measure(decodes: int) -> dict:
    if not (HTML / "index.html").is_file():
        sys.exit("the book is not built: run the README's build command first")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(HTML)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    driver = _browser()
    runtime = sorted((HTML / "_static" / "vendor" / "onnxruntime").iterdir())
    script = HTML / "_static" / "latent_explorer.js"
    pages = {}
    try:
        for name, page in EXPLORERS.items():
            url = f"http://127.0.0.1:{port}/{page}.html"
            driver.execute_cdp_cmd("Network.clearBrowserCache", {})
            first = _visit(driver, url)
            cached = _visit(driver, url)
            models = sorted((HTML / page).parent.glob(f"browser_models/{name}_*.onnx"))
            pages[name] = {
                "page": page,
                "onnx_bytes": sum(p.stat().st_size for p in models),
                "onnx_gzip_bytes": _gzip_bytes(models),
                "first_visit_bytes_before_scroll": first["bytes_before_scroll"],
                "first_visit_explorer_bytes_before_scroll": first["explorer_bytes_before_scroll"],
                "first_visit_added_bytes": first["added_bytes"],
                "cached_visit_added_bytes": cached["added_bytes"],
                "first_visit_first_image_after_scroll_ms": first["first_image_after_scroll_ms"],
                "cached_visit_first_image_after_scroll_ms": cached["first_image_after_scroll_ms"],
                "html_bytes": (HTML / f"{page}.html").stat().st_size,
                "added_files": first["added_files"],
            }
            if name == "latent_diffusion":
                times = driver.execute_async_script(SAMPLES, 10)["each"]
                pages[name].update(sample_ms_median=round(statistics.median(times), 1),
                                   samples=len(times))
            else:
                timed = driver.execute_async_script(DECODES, decodes)
                times = timed["each"]
                pages[name].update(
                    decode_ms_median=round(statistics.median(times), 2),
                    decode_ms_p90=round(sorted(times)[int(0.9 * len(times))], 2),
                    decode_loop_ms_per_decode=round(timed["loop"], 3), decodes=len(times))
    finally:
        driver.quit()
        server.terminate()
        server.wait()
    return {
        "date": datetime.date.today().isoformat(),
        "device": f"{os.cpu_count()}-core {platform.machine()} CPU (shared), headless Chromium",
        "runtime_bytes": sum(p.stat().st_size for p in runtime) + script.stat().st_size,
        "runtime_gzip_bytes": _gzip_bytes([*runtime, script]),
        "pages": pages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decodes", type=int, default=200, help="decodes timed per page")
    parser.add_argument("--record", type=Path, help="add the figures to this results file")
    args = parser.parse_args()
    figures = measure(args.decodes)
    print(json.dumps(figures, indent=1))
    if args.record:
        record(args.record, "browser_explorer_cpu", figures)


if __name__ == "__main__":
    main()
