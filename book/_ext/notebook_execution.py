"""Notebook execution that cannot lie: a failed notebook fails every build until it is fixed.

myst-nb executes the notebooks (``execute_notebooks: cache``), but on its own:

- Sphinx re-reads only changed documents, so the next build of an unchanged failing notebook
  emits no warning and passes. Here every document whose last execution failed is read, hence
  executed, again (jupyter-cache never stores a failed run).
- nbclient replaces the outputs of the cells it runs only, so a page would show the outputs
  stored in the committed ``.ipynb`` after the failing cell. Here stored outputs are dropped
  before myst-nb sees the notebook (jupyter-cache matches on sources, so caching still works):
  a failed page shows this build's outputs up to the error and a warning at its top.
- At the end, the build names the failing notebooks, their reports and where the HTML is.

It also has the kernels write training progress into the build log, and only there
(``VAE_LOG_PROGRESS``), and encrypts their local connection, which silences ipykernel's TCP
warning.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

import nbformat
import zmq
from docutils import nodes
from jupyter_client.manager import KernelManager
from myst_nb.sphinx_ import NbMetadataCollector
from nbclient import NotebookClient
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

logger = logging.getLogger(__name__)

# vae_helpers.fit writes a line to the kernel process's own stderr after each epoch and every
# 30 s within one, when this is set; kernels inherit the build's environment.
PROGRESS_VARIABLE = "VAE_LOG_PROGRESS"
# ipykernel forwards what is written to its process's stdout and stderr into the notebook as
# well as echoing it; without that capture, those lines go to the build's log only, while
# print() and warnings still reach the page.
KERNEL_ARGUMENTS = ["--IPKernelApp.capture_fd_output=False"]


def execution_failed(env: BuildEnvironment, docname: str) -> bool:
    """Whether ``docname`` is a notebook whose last execution (in this or a past build) failed."""
    exec_data = NbMetadataCollector.get_exec_data(env, docname)
    return exec_data is not None and not exec_data["succeeded"]


def report_path(app: Sphinx, docname: str) -> Path:
    """Where myst-nb writes the traceback of ``docname``'s failed execution."""
    return Path(app.outdir, "reports", *f"{docname}.err.log".split("/"))


def reread_failed_notebooks(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    """``env-get-outdated``: read (hence execute) again every notebook that failed last time."""
    known = env.all_docs.keys() - changed - removed
    return sorted(docname for docname in known if execution_failed(env, docname))


def say_which_run_again(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    """``env-before-read-docs``: say in the log why a notebook runs again."""
    for docname in docnames:
        if execution_failed(env, docname):
            logger.info(f"{docname}: its last execution failed, so it is executed again")


def drop_stored_outputs(app: Sphinx, docname: str, source: list[str]) -> None:
    """``source-read``: empty every code cell's outputs before myst-nb parses the notebook, so
    that no output from another run can appear on the page."""
    is_notebook = str(app.env.doc2path(docname)).endswith(".ipynb")
    if not is_notebook or app.config.nb_execution_mode == "off":
        return
    notebook = nbformat.reads(source[0], as_version=nbformat.NO_CONVERT)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    source[0] = nbformat.writes(notebook, version=nbformat.NO_CONVERT)


def warn_on_failed_page(app: Sphinx, doctree: nodes.document) -> None:
    """``doctree-read``: put a warning under the title of a page whose notebook failed."""
    docname = app.env.docname
    if not execution_failed(app.env, docname):
        return
    report = report_path(app, docname).relative_to(app.outdir).as_posix()
    link = nodes.reference(
        "", "its traceback", refuri=posixpath.relpath(report, posixpath.dirname(docname) or ".")
    )
    banner = nodes.warning(
        "",
        nodes.paragraph(
            "",
            "",
            nodes.Text(
                "This notebook failed to execute when the book was built: the outputs below "
                "stop at the cell that raised the error. See "
            ),
            link,
            nodes.Text("."),
        ),
    )
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        doctree.insert(0, banner)
    else:
        section.insert(1 if isinstance(section[0], nodes.title) else 0, banner)


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def summarize_failures(app: Sphinx, exception: Exception | None) -> None:
    """``build-finished``: name each failed notebook, its report and where the HTML is."""
    if exception is not None or app.builder.format != "html":
        return
    failed = sorted(d for d in app.env.found_docs if execution_failed(app.env, d))
    if not failed:
        return
    lines = [f"{len(failed)} notebook(s) failed to execute, so the book is incomplete:"]
    lines += [
        f"  {_shown(app.env.doc2path(d))}: traceback in {_shown(report_path(app, d))}"
        for d in failed
    ]
    lines.append(
        f"The HTML is in {_shown(app.outdir)}; the failed pages show their outputs up to the "
        "error under a warning."
    )
    logger.warning("\n".join(lines), type="notebook_execution", subtype="failed")


def encrypt_kernel_connections() -> None:
    """Have the build's kernels use CurveZMQ keys provisioned by their kernel manager.

    ipykernel warns, once per notebook, that its TCP connection to the build is not encrypted.
    Provisioning keys is the fix it names that works on every platform (IPC sockets do not
    exist on Windows); ``auto`` applies it only to kernels whose kernelspec declares support.
    """
    trait = KernelManager.class_traits().get("transport_encryption")
    if trait is None or not zmq.has("curve"):
        logger.info(
            "This jupyter_client cannot encrypt kernel connections: the kernels' 'running over "
            "TCP without encryption' warning is about the local connection to this build."
        )
        return
    trait.default_value = "auto"


def setup(app: Sphinx) -> dict:
    os.environ[PROGRESS_VARIABLE] = "1"
    NotebookClient.extra_arguments.default_value = KERNEL_ARGUMENTS
    encrypt_kernel_connections()
    app.connect("env-get-outdated", reread_failed_notebooks)
    app.connect("env-before-read-docs", say_which_run_again)
    app.connect("source-read", drop_stored_outputs)
    app.connect("doctree-read", warn_on_failed_page)
    app.connect("build-finished", summarize_failures)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
