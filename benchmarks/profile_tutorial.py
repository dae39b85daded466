"""Where one epoch of the original tutorial's pipeline spends its time, stage by stage.

    python benchmarks/profile_tutorial.py --device cpu --record benchmarks/results.json

Stages: drawing a batch from the DataLoader (PIL images through ``ToTensor``, then collation),
the copy to the device, forward pass and loss, backward pass, ``loss.item()`` and the Adam step.
On a GPU each stage is closed by a synchronisation so that its time is its own.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import record  # noqa: E402
from tutorial_pipeline import TutorialVAE, tutorial_loader, tutorial_loss  # noqa: E402

from vae_helpers import best_device, data_root, describe_device  # noqa: E402

STAGES = ("data loading", "copy to device", "forward and loss", "backward", "loss.item()",
          "optimizer step")


def profile_epoch(device: torch.device, root: str) -> dict[str, float]:
    torch.manual_seed(0)
    model = TutorialVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters())
    seconds = dict.fromkeys(STAGES, 0.0)
    clock = time.perf_counter

    def lap(stage: str, start: float) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        now = clock()
        seconds[stage] += now - start
        return now

    batches = iter(tutorial_loader(root))
    start = clock()
    for data, _ in batches:
        start = lap("data loading", start)
        data = data.to(device)
        start = lap("copy to device", start)
        optimizer.zero_grad()
        recon, mu, log_var = model(data)
        loss = tutorial_loss(recon, data, mu, log_var)
        start = lap("forward and loss", start)
        loss.backward()
        start = lap("backward", start)
        loss.item()
        start = lap("loss.item()", start)
        optimizer.step()
        start = lap("optimizer step", start)
    return {stage: round(value, 4) for stage, value in seconds.items()}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default=best_device().type)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--record", default=None, metavar="JSON")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    profile_epoch(device, str(data_root(args.data_dir)))  # warm-up epoch
    seconds = profile_epoch(device, str(data_root(args.data_dir)))
    total = sum(seconds.values())
    print(f"original tutorial's pipeline, one epoch on {describe_device(device)}: {total:.2f} s")
    for stage, value in seconds.items():
        print(f"  {stage:18s} {value:7.3f} s  {100 * value / total:5.1f} %")
    if args.record:
        record(Path(args.record), "tutorial_profile_" + device.type,
               {"device": describe_device(device), "torch": torch.__version__, **seconds})
    return seconds


if __name__ == "__main__":
    main()
