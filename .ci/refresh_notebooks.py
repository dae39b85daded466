"""Execute chapters in place, keeping only the outputs that nbval compares.

    python .ci/refresh_notebooks.py notebooks/05_training.ipynb [...]

Cells marked ``# NBVAL_CHECK_OUTPUT`` keep their fresh outputs (nbval checks them against the
next run); every other output is dropped, so no notebook carries figures or timings from another
machine (the book shows the outputs of its own build). The complete executed notebook is left in
``_build/executed/`` to read. Prints each notebook's run time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import zmq
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

CHECKED = "# NBVAL_CHECK_OUTPUT"
KERNEL_NAME = "Python 3 (ipykernel)"
# Encrypted local kernel connections, as in the build: no "running over TCP" warning.
if zmq.has("curve") and "transport_encryption" in KernelManager.class_traits():
    KernelManager.class_traits()["transport_encryption"].default_value = "auto"


def strip_unchecked(notebook: nbformat.NotebookNode) -> None:
    """Drop the outputs and execution counts of every code cell that nbval does not check, and
    number the checked ones 1, 2, ... (nbval refuses stored outputs without a count)."""
    checked = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if cell.source.lstrip().startswith(CHECKED):
            checked += 1
            cell.execution_count = checked
            for output in cell.outputs:
                if "execution_count" in output:
                    output.execution_count = checked
        else:
            cell.execution_count = None
            cell.outputs = []


def name_the_kernel(notebook: nbformat.NotebookNode) -> None:
    """Store the kernel under the name JupyterLab gives it ("Python 3 (ipykernel)"): with the old
    "Python 3" JupyterLab rewrites the metadata on opening and marks an untouched chapter as
    modified."""
    notebook.metadata["kernelspec"] = {"display_name": KERNEL_NAME, "language": "python",
                                       "name": "python3"}


def refresh(path: Path, timeout: int = 1800) -> float:
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    executed = Path(__file__).resolve().parents[1] / "_build" / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, executed / path.name)
    strip_unchecked(notebook)
    name_the_kernel(notebook)
    nbformat.write(notebook, path)
    return seconds


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {refresh(Path(name)):.1f} s", flush=True)
