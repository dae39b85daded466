"""The original tutorial's pipeline vs vae_helpers, same process, device and model: s/epoch.

Epochs alternate (tutorial, helpers, ...) so that drift in the machine's speed hits all paths alike.
On a CUDA device a third path replays each epoch as a recorded CUDA graph (``cuda_graph=True``
in ``fit``). The last line is ``speedup_vs_tutorial <ratio>``: median tutorial epoch / median
epoch of the fastest ``vae_helpers`` path; the lines above it give each path's ratio.

    python benchmarks/bench_training.py --device cpu --epochs 2
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tutorial_pipeline import TutorialVAE, tutorial_loader, tutorial_train_epoch  # noqa: E402

from vae_helpers import (  # noqa: E402
    VAE,
    CudaGraphEpoch,
    best_device,
    data_root,
    describe_device,
    load_mnist,
)
from vae_helpers.training import make_optimizer, train_epoch  # noqa: E402


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, run: Callable[[], float]) -> tuple[float, float]:
    """Wall seconds of ``run()`` (the device synchronised before and after) and its result."""
    _synchronize(device)
    start = time.perf_counter()
    result = run()
    _synchronize(device)
    return time.perf_counter() - start, result


def _fresh_model(device: torch.device) -> tuple[VAE, torch.optim.Optimizer, torch.Generator]:
    """The tutorial's model with the same seeded start for every path, its Adam and shuffles."""
    torch.manual_seed(0)
    model = VAE().to(device)
    return model, make_optimizer(model), torch.Generator(device=device).manual_seed(0)


def helpers_paths(device: torch.device, root: str) -> tuple[dict[str, Callable[[], float]],
                                                            dict[str, float]]:
    """The vae_helpers epoch functions to time (eager; CUDA graph on a GPU), each with its own
    seeded model, and the one-off costs (loading MNIST, recording the graph) in seconds."""
    once = {}
    once["load_seconds"], train = timed(device, lambda: load_mnist("train", root, device))
    model, optimizer, generator = _fresh_model(device)
    paths = {"helpers": lambda: float(
        train_epoch(model, optimizer, train, 128, generator).sum()) / len(train)}
    if device.type == "cuda":
        graph_model, graph_optimizer, graph_generator = _fresh_model(device)
        once["record_seconds"], graph = timed(
            device, partial(CudaGraphEpoch, graph_model, graph_optimizer, train))
        paths["cuda_graph"] = lambda: float(graph(graph_generator).sum()) / len(train)
    return paths, once


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default=best_device().type)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--record", default=None, metavar="JSON",
                        help="merge the figures into this results file (under the device type)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    root = str(data_root(args.data_dir))
    print(f"device: {describe_device(device)}; torch {torch.__version__}; epochs: {args.epochs}")

    torch.manual_seed(0)
    tutorial_model = TutorialVAE().to(device)
    tutorial_optimizer = torch.optim.Adam(tutorial_model.parameters())
    loader = tutorial_loader(root)
    paths = {"tutorial": lambda: tutorial_train_epoch(tutorial_model, tutorial_optimizer, loader,
                                                      device)}
    helpers, once = helpers_paths(device, root)
    paths.update(helpers)

    times = {name: [] for name in paths}
    losses = dict.fromkeys(paths, 0.0)
    for epoch in range(1, args.epochs + 1):
        for name, run in paths.items():
            seconds, losses[name] = timed(device, run)
            times[name].append(seconds)
        print(f"epoch {epoch}: " + "  ".join(
            f"{name} {times[name][-1]:.3f} s (loss {losses[name]:.2f})" for name in paths))
    medians = {name: statistics.median(seconds) for name, seconds in times.items()}
    for name in paths:
        print(f"{name:>10}: {medians[name]:.4f} s/epoch, final loss {losses[name]:.2f}, "
              f"speed-up {medians['tutorial'] / medians[name]:.2f}x")
    print("one-off: " + ", ".join(f"{key} {value:.2f} s" for key, value in once.items()))
    figures = {
        "device": describe_device(device), "torch": torch.__version__,
        "date": datetime.date.today().isoformat(), "epochs": args.epochs,
        "tutorial_s_per_epoch": round(medians["tutorial"], 4),
        "helpers_s_per_epoch": round(medians["helpers"], 4),
        "tutorial_final_loss": round(losses["tutorial"], 2),
        "helpers_final_loss": round(losses["helpers"], 2),
        "speedup": round(medians["tutorial"] / medians["helpers"], 2),
    }
    if "cuda_graph" in paths:
        figures.update({
            "graph_s_per_epoch": round(medians["cuda_graph"], 4),
            "graph_final_loss": round(losses["cuda_graph"], 2),
            "graph_speedup": round(medians["tutorial"] / medians["cuda_graph"], 2),
            "graph_record_seconds": round(once["record_seconds"], 2),
        })
    if args.record:
        record(Path(args.record), "training_" + device.type, figures)
    best = min((name for name in medians if name != "tutorial"), key=medians.get)
    print(f"speedup_vs_tutorial {medians['tutorial'] / medians[best]:.2f}")
    return figures


def record(path: Path, key: str, figures: dict) -> None:
    """Merge ``figures`` under ``key`` into the JSON results file (written atomically)."""
    results = json.loads(path.read_text()) if path.is_file() else {}
    results[key] = figures
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    temporary.replace(path)


if __name__ == "__main__":
    main()
