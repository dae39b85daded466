"""Seed pipeline vs vae_helpers, same process, same device, same model: seconds per epoch.

Epochs alternate (seed, helpers, seed, helpers, ...) so that drift in the machine's speed hits
both alike. The last line is ``speedup_vs_seed <ratio>``: median seed epoch / median helpers epoch.

    python benchmarks/bench_training.py --device cpu --epochs 2
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from seed_pipeline import SeedVAE, seed_loader, seed_train_epoch  # noqa: E402

from vae_helpers import VAE, best_device, data_root, describe_device, load_mnist  # noqa: E402
from vae_helpers.training import make_optimizer, train_epoch  # noqa: E402


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, run) -> tuple[float, float]:
    _synchronize(device)
    start = time.perf_counter()
    loss = run()
    _synchronize(device)
    return time.perf_counter() - start, loss


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
    seed_model = SeedVAE().to(device)
    seed_optimizer = torch.optim.Adam(seed_model.parameters())
    loader = seed_loader(root)

    start = time.perf_counter()
    train = load_mnist("train", root, device)
    load_seconds = time.perf_counter() - start
    torch.manual_seed(0)
    model = VAE().to(device)
    optimizer = make_optimizer(model)
    generator = torch.Generator(device=device).manual_seed(0)

    def helpers_epoch() -> float:
        return float(train_epoch(model, optimizer, train, 128, generator).sum()) / len(train)

    seed_times, helper_times, seed_loss, helper_loss = [], [], 0.0, 0.0
    for epoch in range(1, args.epochs + 1):
        seconds, seed_loss = timed(device, lambda: seed_train_epoch(
            seed_model, seed_optimizer, loader, device))
        seed_times.append(seconds)
        seconds, helper_loss = timed(device, helpers_epoch)
        helper_times.append(seconds)
        print(f"epoch {epoch}: seed {seed_times[-1]:.3f} s (loss {seed_loss:.2f})  "
              f"helpers {helper_times[-1]:.3f} s (loss {helper_loss:.2f})")
    seed_median, helper_median = statistics.median(seed_times), statistics.median(helper_times)
    print(f"seed pipeline:    {seed_median:.3f} s/epoch, final loss {seed_loss:.2f}")
    print(f"vae_helpers path: {helper_median:.3f} s/epoch, final loss {helper_loss:.2f} "
          f"(+{load_seconds:.2f} s once to load MNIST onto the device)")
    ratio = seed_median / helper_median
    figures = {
        "device": describe_device(device), "torch": torch.__version__,
        "date": datetime.date.today().isoformat(), "epochs": args.epochs,
        "seed_s_per_epoch": round(seed_median, 4), "helpers_s_per_epoch": round(helper_median, 4),
        "seed_final_loss": round(seed_loss, 2), "helpers_final_loss": round(helper_loss, 2),
        "speedup": round(ratio, 2),
    }
    if args.record:
        record(Path(args.record), "training_" + device.type, figures)
    print(f"speedup_vs_seed {ratio:.2f}")
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
