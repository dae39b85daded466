"""The plain Adam loop for the models ``fit`` does not train: a VQ-VAE (chapter 14) and the
beta-TC objective (chapter 13)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def adam_epochs(model: nn.Module, images: torch.Tensor,
                batch_loss: Callable[[torch.Tensor], torch.Tensor], epochs: int,
                batch_size: int, lr: float, generator: torch.Generator,
                per_image: bool = False, min_batch: int = 1) -> list[float]:
    """``epochs`` passes of Adam over shuffled batches of ``images`` (order from ``generator``),
    minimizing ``batch_loss(x)``, the batch's summed loss or, with ``per_image``, its mean.
    Batches smaller than ``min_batch`` are skipped. Returns each epoch's loss per image."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for indices in torch.randperm(len(images), generator=generator,
                                      device=images.device).split(batch_size):
            if len(indices) < min_batch:
                continue
            loss = batch_loss(images[indices])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * (len(indices) if per_image else 1)
        losses.append(total / len(images))
    return losses
