"""The original tutorial's training pipeline, kept as the baseline the benchmarks compare against.

DataLoader over torchvision's MNIST with ``transforms.ToTensor`` (one PIL image at a time), a
per-batch copy to the device, a sigmoid output and ``binary_cross_entropy`` on probabilities,
and a ``loss.item()`` host sync every step. Only two of its defects are mended so it runs here:
``.to(device)`` instead of ``.cuda()``, and ``torch.sigmoid`` instead of the deprecated
``F.sigmoid``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import datasets, transforms


class TutorialVAE(nn.Module):
    def __init__(self, x_dim: int = 784, h_dim: int = 512, z_dim: int = 2) -> None:
        super().__init__()
        self.fc1 = nn.Linear(x_dim, h_dim)
        self.fc21 = nn.Linear(h_dim, z_dim)
        self.fc22 = nn.Linear(h_dim, z_dim)
        self.fc3 = nn.Linear(z_dim, h_dim)
        self.fc4 = nn.Linear(h_dim, x_dim)

    def forward(self, x: torch.Tensor):
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, log_var = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, log_var


def tutorial_loss(recon_x, x, mu, log_var):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())
    return bce + kld


def tutorial_loader(root: str, batch_size: int = 128) -> torch.utils.data.DataLoader:
    dataset = datasets.MNIST(root, train=True, transform=transforms.ToTensor(), download=False)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)


def tutorial_train_epoch(model, optimizer, loader, device) -> float:
    """One epoch exactly as the original tutorial runs it; returns the average loss per example."""
    model.train()
    train_loss = 0.0
    for data, _ in loader:
        data = data.to(device)
        optimizer.zero_grad()
        recon, mu, log_var = model(data)
        loss = tutorial_loss(recon, data, mu, log_var)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
    return train_loss / len(loader.dataset)


def main(argv: list[str] | None = None) -> None:
    """Train with the original tutorial's pipeline and print its lines:
    ``python benchmarks/tutorial_pipeline.py``."""
    import argparse

    from vae_helpers import best_device, data_root

    parser = argparse.ArgumentParser(description="the original tutorial's training, as a script")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    device = best_device()
    torch.manual_seed(0)
    model = TutorialVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters())
    loader = tutorial_loader(str(data_root(args.data_dir)))
    for epoch in range(1, args.epochs + 1):
        loss = tutorial_train_epoch(model, optimizer, loader, device)
        print(f"====> Epoch: {epoch} Average loss: {loss:.4f}")


if __name__ == "__main__":
    main()
