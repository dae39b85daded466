"""The performance chapter shows figures read from benchmarks/results.json, none typed by hand."""

from __future__ import annotations

import json
import os
from pathlib import Path

from myst_nb.core.read import read_myst_markdown_notebook
from nbclient import NotebookClient

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
    assert abs(cpu["speedup"] - cpu["tutorial_s_per_epoch"] / cpu["helpers_s_per_epoch"]) < 0.01
    assert "data loading" in json.loads(RESULTS.read_text())["tutorial_profile_cpu"]


def test_prose_types_no_measured_figure():
    prose = "".join("".join(c.source) for c in _page().cells if c.cell_type == "markdown")
    typed = sorted(n for n in _numbers(json.loads(RESULTS.read_text())) if n in prose)
    assert not typed, f"figures typed into the page instead of read from results.json: {typed}"


def test_page_prints_whatever_the_results_file_holds(tmp_path):
    fake = {
        "training_cpu": {"device": "cpu (7 threads)", "torch": "9.9", "date": "2031-01-02",
                         "epochs": 4, "tutorial_s_per_epoch": 12.3456,
                         "helpers_s_per_epoch": 3.2109,
                         "tutorial_final_loss": 171.71, "helpers_final_loss": 170.07,
                         "speedup": 3.85},
        "training_cuda": {"device": "Fancy GPU 9000", "torch": "9.9", "date": "2031-01-03",
                          "epochs": 5, "tutorial_s_per_epoch": 2.5, "helpers_s_per_epoch": 0.125,
                          "tutorial_final_loss": 160.5, "helpers_final_loss": 161.25,
                          "speedup": 20.0, "graph_s_per_epoch": 0.0432, "graph_speedup": 57.87,
                          "graph_final_loss": 161.0, "graph_record_seconds": 0.8},
        "tutorial_profile_cpu": {"device": "cpu (7 threads)", "torch": "9.9", "data loading": 6.5,
                             "forward and loss": 3.5},
        "long_run_cpu": {"device": "cpu (7 threads)", "torch": "9.9", "date": "2031-01-02",
                         "target": 138.0, "reached": True, "epochs": 3, "seconds": 77.0,
                         "final_test_loss": 137.5, "best_test_loss": 137.5,
                         "test_loss_per_epoch": [150.25, 141.125, 137.5],
                         "train_loss_per_epoch": [160.5, 139.75, 136.875]},
    }
    (tmp_path / "results.json").write_text(json.dumps(fake))
    os.environ["VAE_RESULTS_FILE"] = str(tmp_path / "results.json")  # the kernel inherits it
    try:
        notebook = NotebookClient(_page(), timeout=120,
                                  resources={"metadata": {"path": ROOT / "book"}})
        notebook.execute()
    finally:
        del os.environ["VAE_RESULTS_FILE"]
    shown = "".join(output.get("text", "") + output.get("data", {}).get("text/html", "")
                    for cell in notebook.nb.cells for output in cell.get("outputs", []))
    for figure in ("<td>12.346</td>", "<td>3.211</td>", "<td>3.85x</td>", "<td>171.71</td>",
                   "<td>170.07</td>", "<td>6.500</td>", "<td>65.0 %</td>", "cpu (7 threads)",
                   "2031-01-02", "<td>77</td>", "<td>n/a (GPU only)</td>",
                   "Fancy GPU 9000", "<td>0.0432</td>", "<td>57.87x</td>", "<td>20.00x</td>",
                   "<td>137.50 (epoch 3)</td>", "<td>yes</td>", "<td>136.88 (epoch 3)</td>"):
        assert figure in shown, (figure, shown)
    assert "GPU figures: not measured yet" not in shown
