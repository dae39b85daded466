"""Every notebook opens with the same Colab setup cell, pointing at `repository.url`.

The Colab path is tested offline: a fresh virtual environment that sees the machine's torch but
not vae_helpers (as Colab does), a stand-in `google.colab` module, and the local checkout as the
install source.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TRAINING_NOTEBOOKS = {"05_training", "06_what_the_pixels_are", "07_latent_space",
                      "08_beta_vae_and_rate_distortion", "09_conditional_vae",
                      "10_convolutional_vae", "11_posterior_collapse",
                      "12_tighter_bounds_and_priors", "13_disentanglement",
                      "14_discrete_latents_and_what_came_after", "15_richer_posteriors",
                      "16_hierarchical_vaes_and_diffusion"}


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def setup_cell(path: Path) -> str:
    return "".join(next(c for c in _cells(path) if c["cell_type"] == "code")["source"])


def repository_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def test_every_chapter_is_in_the_table_of_contents_and_every_entry_exists():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = [entry["file"] for part in toc["parts"] for entry in part["chapters"]
              if entry["file"].startswith("notebooks/")]
    assert sorted(listed) == [f"notebooks/{p.stem}" for p in NOTEBOOKS]
    numbers = [int(p.stem[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(1, len(NOTEBOOKS) + 1))  # one file per number, none skipped


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_ends_with_exercises_and_hidden_solutions(path):
    cells = _cells(path)
    markdown = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "## Exercises" in markdown and ":class: dropdown" in markdown
    last_code = [c for c in cells if c["cell_type"] == "code"][-1]
    assert "hide-cell" in last_code["metadata"].get("tags", [])  # input and output
    assert "".join(last_code["source"]).startswith("# Solution")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell_installs_from_the_configured_repository(path):
    source = setup_cell(path)
    assert re.search(r'^REPOSITORY_URL = "(.*)"$', source, re.M).group(1) == repository_url()
    assert source == setup_cell(NOTEBOOKS[0]), "setup cells differ between notebooks"
    assert "--no-deps" in source  # never reinstall Colab's torch


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_import_helpers_in_one_line_and_ask_for_a_gpu_when_training(path):
    imports = [c for c in _cells(path) if c["cell_type"] == "code"
               and "from vae_helpers import" in "".join(c["source"])]
    assert len(imports) == 2  # the setup cell and the chapter's one import
    metadata = json.loads(path.read_text())["metadata"]
    assert (metadata.get("accelerator") == "GPU") == (path.stem in TRAINING_NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_kernel_is_stored_under_the_name_jupyterlab_gives_it(path):
    """JupyterLab rewrites any other display name on opening, which marks an untouched chapter
    as modified (and asks to save it on closing)."""
    kernelspec = json.loads(path.read_text())["metadata"]["kernelspec"]
    assert kernelspec == {"display_name": "Python 3 (ipykernel)", "language": "python",
                          "name": "python3"}


def _colab_like_environment(tmp_path: Path) -> Path:
    """A venv that sees this machine's packages (torch...) but has no vae_helpers."""
    env_dir = tmp_path / "colab-venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run([python, "-c", where], capture_output=True, text=True,
                          check=True).stdout.strip()
    # A plain path line: the machine's packages become importable, but the .pth files there
    # (among them the editable install of vae_helpers) are not processed.
    Path(site, "machine_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    stand_in = tmp_path / "stand_in" / "google" / "colab"
    stand_in.mkdir(parents=True)
    (stand_in.parent / "__init__.py").write_text("")
    (stand_in / "__init__.py").write_text('"""Stand-in for Colab\'s google.colab module."""\n')
    return python


def _run_setup(python: Path, tmp_path: Path, in_colab: bool) -> subprocess.CompletedProcess:
    harness = ("import google.colab\n" if in_colab else "") + setup_cell(NOTEBOOKS[0])
    source = tmp_path / "checkout"  # a copy, so the install leaves no build files in the repo
    if not source.exists():
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
            ".git", "_build", "build", "data", "checkpoints", "*.egg-info", "__pycache__",
            "node_modules", "browser_models"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(tmp_path / "stand_in"), VAE_HELPERS_SOURCE=str(source),
               PIP_DISABLE_PIP_VERSION_CHECK="1", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([python, "-c", harness], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)


def test_setup_cell_in_a_colab_like_environment(tmp_path):
    python = _colab_like_environment(tmp_path)
    missing = subprocess.run([python, "-c", "import importlib.util as u, torch;"
                              "print(u.find_spec('vae_helpers'))"],
                             capture_output=True, text=True, cwd=tmp_path)
    assert missing.stdout.strip() == "None", missing.stderr

    outside = _run_setup(python, tmp_path, in_colab=False)
    assert outside.returncode != 0
    assert "vae_helpers is missing: run `pip install -e .`" in outside.stderr

    inside = _run_setup(python, tmp_path, in_colab=True)
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.strip().startswith("device: cpu")
    listing = subprocess.run([python, "-m", "pip", "list", "--local", "--format=json"],
                             capture_output=True, text=True, check=True).stdout
    installed = {p["name"].lower() for p in json.loads(listing)}
    assert "vae-helpers" in installed
    assert "torch" not in installed, "the setup cell must leave the existing torch alone"

    again = _run_setup(python, tmp_path, in_colab=True)  # second run: nothing to install
    assert again.returncode == 0 and "device:" in again.stdout


def test_setup_cell_is_the_first_code_cell_and_hidden_in_the_book():
    for path in NOTEBOOKS:
        first = next(c for c in _cells(path) if c["cell_type"] == "code")
        assert "hide-input" in first["metadata"].get("tags", [])


CHECKED = "# NBVAL_CHECK_OUTPUT"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_only_the_cells_nbval_checks_carry_stored_outputs(path):
    """No figure, timing or number from another machine is stored in a chapter; the book shows
    its own build's outputs (``.ci/refresh_notebooks.py`` keeps exactly the checked ones)."""
    for cell in _cells(path):
        if cell["cell_type"] != "code":
            continue
        checked = "".join(cell["source"]).lstrip().startswith(CHECKED)
        assert bool(cell["outputs"]) == checked, "".join(cell["source"])[:80]


BRITISH = re.compile(r"\b(\w*(?:optimis|maximis|minimis|normalis|regularis|initialis|generalis|"
                     r"recognis|organis|summaris|visualis|parameteris|vectoris|synchronis)\w*|"
                     r"colour\w*|behaviour\w*|neighbour\w*|favour\w*|"
                     r"centre[sd]?|modelling|modelled|labelled|labelling|grey)\b", re.IGNORECASE)


def test_one_spelling_convention_american_as_in_pytorch():
    texts = {path.name: "".join("".join(c["source"]) for c in _cells(path))
             for path in NOTEBOOKS}
    for path in [*ROOT.glob("book/*.md"), ROOT / "README.md", *ROOT.glob("vae_helpers/*.py")]:
        texts[str(path.relative_to(ROOT))] = path.read_text()
    found = {name: sorted(set(BRITISH.findall(text))) for name, text in texts.items()}
    assert not {name: words for name, words in found.items() if words}
