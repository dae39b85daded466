"""The package as a whole: its data flow, its docstrings, its import-time check; and the rule
that no checked notebook cell compares timings."""

import ast
import inspect
import json
import re
from pathlib import Path

import pytest

import vae_helpers

ROOT = Path(__file__).resolve().parents[1]


def _core_chain() -> list[str]:
    """The modules the package docstring lists, in order, as importing only earlier ones."""
    text = vae_helpers.__doc__.split("each importing only those before it:")[1].split(". ")[0]
    return re.findall(r"``(\w+)``", text)


def _module_level_imports(module: str) -> set[str]:
    tree = ast.parse((ROOT / "vae_helpers" / f"{module}.py").read_text())
    return {node.module for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module}


def test_the_data_flow_line_matches_the_imports():
    chain = _core_chain()
    assert chain[:3] == ["errors", "devices", "data"] and "training" in chain
    for position, module in enumerate(chain):
        later = _module_level_imports(module) - set(chain[:position])
        assert not later & set(chain), f"{module} imports {later & set(chain)}, listed after it"


@pytest.mark.parametrize("name", [n for n in vae_helpers.__all__
                                  if callable(getattr(vae_helpers, n))])
def test_every_helper_names_the_chapter_that_teaches_it(name):
    doc = inspect.getdoc(getattr(vae_helpers, name)) or ""
    assert re.search(r"\b[Cc]hapters? \d+", doc), f"{name}'s docstring names no chapter"


@pytest.mark.parametrize("torch_version, vision_version, fine", [
    ("2.14.1", "0.29.1", True), ("2.14.1+cu126", "0.29.1+cu126", True), ("2.9.1", "0.24.1", True),
    ("2.14.1", "0.24.1", False), ("2.9.1+cpu", "0.29.0", False), ("3.0.0", "1.0.0", True),
])
def test_a_torch_and_torchvision_that_do_not_match_are_named_in_one_line(
        torch_version, vision_version, fine):
    versions = {"torch": torch_version, "torchvision": vision_version}
    if fine:
        vae_helpers.check_torch_pair(versions.__getitem__)
        return
    with pytest.raises(ImportError) as caught:
        vae_helpers.check_torch_pair(versions.__getitem__)
    message = str(caught.value)
    assert "\n" not in message and torch_version in message and vision_version in message
    assert "reinstall them together" in message


TIMING = re.compile(r"\bseconds\b|perf_counter|time\.time|\btimeit\b|\.seconds\b")


def test_no_checked_notebook_cell_compares_timings():
    """Timings flip on a busy machine (chapter 12's once failed nbval that way): they belong in
    benchmarks/, never in a cell whose output nbval compares."""
    offenders = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for index, cell in enumerate(json.loads(path.read_text())["cells"]):
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and source.lstrip().startswith("# NBVAL_CHECK_OUTPUT") \
                    and TIMING.search(source):
                offenders.append(f"{path.name} cell {index}")
    assert offenders == []
