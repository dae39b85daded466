"""The models and the training schedule of Burda, Grosse and Salakhutdinov (2016), for
``literature_table.py``, which reproduces their MNIST table for the appendix "How close to the
literature" (book/literature.md). Not part of ``vae_helpers``: no chapter trains these models.

* ``BurdaVAE``, one stochastic layer: 784-200-200-50 encoder and 50-200-200-784 decoder with
  tanh hidden units, a Gaussian q(z|x) and Bernoulli pixels.
* ``burda_two_layer_vae``: the two-stochastic-layer model (100 and 50 latents) of chapter 16's
  ``TwoLayerVAE``, with tanh in place of its ReLU.

Both start as their released code starts (github.com/yburda/iwae): weights uniform in
±sqrt(6 / (n_in + n_out)) (Glorot and Bengio's initialization for tanh), biases zero, and the
output bias at the logit of the mean training pixel, so that the untrained decoder already draws
the average digit. Training: Adam (``burda_optimizer``) on batches of 20 for 3^i passes at the
learning rate 10^-3 · 10^(-i/7), i = 0, ..., 7: 3,280 passes in all (``burda_learning_rate``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from vae_helpers.data import NX, check_images
from vae_helpers.deep_mlp import DeepVAE
from vae_helpers.errors import check_integers

STAGES = 8  # i = 0, ..., 7
PASSES = sum(3**i for i in range(STAGES))  # 3,280
BATCH_SIZE = 20


def burda_learning_rate(epoch: int) -> float:
    """The learning rate of pass ``epoch`` (from 1) of the schedule: stage i covers 3^i passes
    at 10^-3 · 10^(-i/7); after pass 3,280 the last rate, 10^-4, stays."""
    check_integers(epoch=epoch)
    stage, end = 0, 1
    while epoch > end and stage < STAGES - 1:
        stage += 1
        end += 3**stage
    return 1e-3 * 10 ** (-stage / 7)


def stage_ends(epochs: int = PASSES) -> list[int]:
    """The passes at which a stage of the schedule ends, up to ``epochs``: 1, 4, 13, 40, ...,
    3,280 (where the learning rate drops next)."""
    check_integers(epochs=epochs)
    ends = [sum(3**j for j in range(i + 1)) for i in range(STAGES)]
    return [end for end in ends if end <= epochs]


def burda_optimizer(model: nn.Module, lr: float = 1e-3) -> torch.optim.Adam:
    """Adam with beta1 = 0.9, beta2 = 0.999 and eps = 1e-4 (the released code's own Adam uses
    beta1 = 0.99 and starts the second moments at one); PyTorch's fused kernel when the model
    is on a GPU. Build it after moving the model."""
    fused = all(p.is_cuda for p in model.parameters())
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-4,
                            fused=fused or None)


def learning_rate_schedule(optimizer: torch.optim.Optimizer,
                           rate: Callable[[int], float] = burda_learning_rate
                           ) -> Callable[[object], None]:
    """An ``on_epoch`` for ``fit``: after each pass, set the rate of the next one,
    ``rate(passes done + 1)``. Build the optimizer with ``rate(1)``."""

    def on_epoch(history) -> None:
        for group in optimizer.param_groups:
            group["lr"] = rate(len(history.train_loss) + 1)

    return on_epoch


def glorot_uniform_(model: nn.Module) -> None:
    """Every linear layer of ``model``: weights uniform in ±sqrt(6 / (n_in + n_out)), biases
    zero (what torch's ``xavier_uniform_`` draws)."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)


@torch.no_grad()
def set_output_bias(layer: nn.Linear, images: torch.Tensor) -> None:
    """The output layer's bias at logit(mean pixel of ``images``), the mean clipped to
    [0.001, 0.999]: before training, the decoder gives every pixel its average probability."""
    check_images(images, layer.out_features, "images")
    mean = images.mean(0).clamp(0.001, 0.999)
    layer.bias.copy_(torch.log(mean) - torch.log1p(-mean))


class BurdaVAE(DeepVAE):
    """Burda et al.'s one-stochastic-layer VAE (also their IWAE: the model is the same, the
    objective differs): chapter 10's ``DeepVAE`` with tanh in place of ReLU, ``depth`` layers of
    ``nh`` units in each network, Glorot-uniform weights. Call
    ``set_output_bias(model.decoder_logits, train.images)`` before training, as they did."""

    def __init__(self, nx: int = NX, nh: int = 200, nz: int = 50, depth: int = 2) -> None:
        super().__init__(nx, nh, nz, depth)
        for layers in (self.encoder_hidden, self.decoder_hidden):
            for i, layer in enumerate(layers):
                if isinstance(layer, nn.ReLU):
                    layers[i] = nn.Tanh()
        glorot_uniform_(self)


def burda_two_layer_vae(**sizes: int) -> nn.Module:
    """Burda et al.'s two-stochastic-layer model: chapter 16's ``TwoLayerVAE`` (784-200-200-100
    and 100-100-100-50, bottom-up inference) with each ReLU replaced by tanh, Glorot-uniform
    weights and zero biases. Call ``set_output_bias(model.decoder_x[-1], train.images)`` before
    training. Train it with ``hierarchical_loss`` and score it with
    ``hierarchical_log_likelihood``."""
    from vae_helpers.hierarchical import TwoLayerVAE  # chapter 16's module, imported when needed

    model = TwoLayerVAE(**sizes)
    replaced = 0
    for module in model.modules():
        for name, child in module.named_children():
            if isinstance(child, nn.ReLU):
                setattr(module, name, nn.Tanh())
                replaced += 1
    if replaced != 8 or any(isinstance(m, nn.ReLU) for m in model.modules()):
        raise RuntimeError(f"TwoLayerVAE changed: expected 8 ReLU modules to replace, found "
                           f"{replaced}; update burda_two_layer_vae.")
    glorot_uniform_(model)
    return model

