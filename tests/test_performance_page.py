"""The performance chapter shows figures read from benchmarks/results.json, none typed by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from myst_nb.core.read import read_myst_markdown_notebook

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "performance.md"
RESULTS = ROOT / "benchmarks" / "results.json"


def _page() -> dict:
    return read_myst_markdown_notebook(PAGE.read_text())


def _numbers(results: dict) -> set[str]:
    found = set()
    for section in results.values():
        for key, value in section.items():
            if isinstance(value, float) and key != "target":
                found |= {f"{value:.2f}", f"{value:.3f}", f"{value:.1f}"}
    return found


def test_results_file_has_the_cpu_benchmark_and_profile():
    cpu = json.loads(RESULTS.read_text())["training_cpu"]
    assert abs(cpu["speedup"] - cpu["seed_s_per_epoch"] / cpu["helpers_s_per_epoch"]) < 0.01
    assert "data loading" in json.loads(RESULTS.read_text())["seed_profile_cpu"]


def test_prose_types_no_measured_figure():
    prose = "".join("".join(c.source) for c in _page().cells if c.cell_type == "markdown")
    typed = sorted(n for n in _numbers(json.loads(RESULTS.read_text())) if n in prose)
    assert not typed, f"figures typed into the page instead of read from results.json: {typed}"


def test_page_prints_whatever_the_results_file_holds(tmp_path):
    fake = {
        "training_cpu": {"device": "cpu (7 threads)", "torch": "9.9", "date": "2031-01-02",
                         "epochs": 4, "seed_s_per_epoch": 12.3456, "helpers_s_per_epoch": 3.2109,
                         "seed_final_loss": 171.71, "helpers_final_loss": 170.07,
                         "speedup": 3.85},
        "seed_profile_cpu": {"device": "cpu (7 threads)", "torch": "9.9", "data loading": 6.5,
                             "forward and loss": 3.5},
        "long_run_cpu": {"device": "cpu (7 threads)", "torch": "9.9", "date": "2031-01-02",
                         "target": 138.0, "reached": True, "epochs": 3, "seconds": 77.0,
                         "final_test_loss": 137.5, "best_test_loss": 137.5,
                         "test_loss_per_epoch": [150.25, 141.125, 137.5]},
    }
    (tmp_path / "results.json").write_text(json.dumps(fake))
    code = "\n".join("".join(c.source) for c in _page().cells if c.cell_type == "code")
    env = dict(os.environ, VAE_RESULTS_FILE=str(tmp_path / "results.json"), MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "book", env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    for figure in ("12.346", "3.211", "3.85x", "171.71", "170.07", "6.500", "65.0 %",
                   "cpu (7 threads)", "2031-01-02", "GPU figures: not measured yet",
                   "reached 138 nats in 3 epochs (77 s)", "137.50 at epoch 3"):
        assert figure in run.stdout, (figure, run.stdout)
