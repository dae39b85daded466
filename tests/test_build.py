"""The book's build cannot lie: a tiny book built with the real book's extensions and execution
settings and the README's build command, with a notebook made to fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD_COMMAND = "jupyter-book build . -W --keep-going"
STALE = "stale output from another machine"


def _jupyter_book() -> str:
    """The ``jupyter-book`` script of the Python running the tests, else the one on PATH."""
    beside = Path(sys.executable).with_name("jupyter-book")
    found = str(beside) if beside.is_file() else shutil.which("jupyter-book")
    if found is None:
        pytest.fail("jupyter-book is not installed: pip install -r requirements.txt")
    return found


def _write_notebook(path: Path, failing_source: str) -> None:
    """Three cells, each with a stored output from "another run": a line for the build's log and
    a print, ``failing_source``, then a print that a failed run never reaches (the texts the
    test looks for are made by the cells, so they are not in their sources)."""
    cells = []
    first = ('import os, sys\nsys.__stderr__.write("progress " + "for the log\\n")\n'
             'print("fresh output", os.environ.get("VAE_LOG_PROGRESS"))')
    for source in (first, failing_source, 'print("after", "the error")'):
        cell = nbformat.v4.new_code_cell(source, execution_count=7)
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=STALE + "\n")]
        cells.append(cell)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Tiny"), *cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)


@pytest.fixture
def tiny_book(tmp_path: Path) -> Path:
    """A one-notebook book with the real ``_config.yml``'s local extensions and ``execute:``."""
    real = yaml.safe_load((ROOT / "_config.yml").read_text())
    extensions = {name: str(ROOT / folder)
                  for name, folder in real["sphinx"]["local_extensions"].items()}
    config = {"title": "Tiny", "only_build_toc_files": True, "exclude_patterns": ["_build"],
              "execute": real["execute"], "sphinx": {"local_extensions": extensions}}
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "_toc.yml").write_text("format: jb-article\nroot: tiny\n")
    _write_notebook(tmp_path / "tiny.ipynb", 'raise RuntimeError("deliberate" + " failure")')
    return tmp_path


def _build(book: Path) -> tuple[int, str, str]:
    """Run the README's build command in ``book``: exit status, log, and the page's HTML."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("VAE_LOG_PROGRESS", None)  # the extension must set it for the kernels
    command = [_jupyter_book(), *BUILD_COMMAND.split()[1:]]
    result = subprocess.run(command, cwd=book, env=env, capture_output=True, text=True,
                            timeout=300)
    page = book / "_build" / "html" / "tiny.html"
    return result.returncode, result.stdout + result.stderr, page.read_text()


def test_ci_runs_the_readmes_two_commands_and_every_place_names_the_same_build():
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    commands = [line for block in blocks for line in block.splitlines()
                if line.startswith(("pip install -r", "ruff check"))]
    assert len(commands) == 2 and BUILD_COMMAND in commands[0], commands
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert all(command in ci_lines for command in commands), "CI runs other commands"
    browser_tests = (ROOT / "tests" / "test_book_browser.py").read_text()
    assert f'BUILD_COMMAND = "{BUILD_COMMAND}"' in browser_tests


def test_a_failed_notebook_fails_every_build_until_fixed_and_never_shows_stale_outputs(
    tiny_book: Path,
):
    report = Path("_build", "html", "reports", "tiny.err.log")
    for attempt in ("first", "second"):
        status, log, page = _build(tiny_book)
        assert status != 0, f"the {attempt} build passed with a failing notebook:\n{log}"
        assert "tiny.ipynb: Executing notebook" in log, f"{attempt} build: not executed"
        assert str(report) in log, f"{attempt} build: the log does not name the report"
        assert "deliberate failure" in (tiny_book / report).read_text()
        assert STALE not in page, f"{attempt} build: a stored output is on the page"
        assert "fresh output 1" in page  # run this time, with VAE_LOG_PROGRESS=1 in the kernel
        assert "progress for the log" in log and "progress for the log" not in page
        assert "deliberate failure" in page and "after the error" not in page
        assert "failed to execute" in page, "the failed page carries no warning"
        assert "without encryption" not in log

    _write_notebook(tiny_book / "tiny.ipynb", 'print("fix" + "ed")')
    status, log, page = _build(tiny_book)
    assert status == 0, log
    assert "fixed" in page and "after the error" in page
    assert STALE not in page and "failed to execute" not in page

    os.utime(tiny_book / "tiny.ipynb")  # read again, unchanged: served from the cache
    status, log, page = _build(tiny_book)
    assert status == 0, log
    assert "tiny.ipynb: Using cached notebook" in log and "Executing notebook" not in log
    assert "after the error" in page and STALE not in page
