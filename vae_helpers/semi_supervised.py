"""Semi-supervised learning with a VAE: Kingma et al.'s (2014) M2 (chapter 9).

The model is the conditional VAE, p(y) p(z) p(x | y, z) with q(z | x, y), plus a classifier
q(y | x). A labeled pair (x, y) is scored by the conditional bound; an unlabeled image by the
same bound with the label enumerated out, each of the ten labels weighted by q(y | x), minus
the entropy of q(y | x); and the classifier also learns from the labeled pairs directly,
through a cross-entropy term weighted by alpha. ``SemiSupervisedVAE`` subclasses
``ConditionalVAE``, so whatever takes a conditional model (the latent explorer) takes it too.
The label prior p(y) is uniform: its -log p(y) = log 10 is a constant, left out of the losses.
"""

from __future__ import annotations

import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from .data import NX, ImageSet, draw_pixels
from .errors import TrainingDiverged, check_integers, check_numbers
from .losses import negative_elbo
from .model import N_CLASSES, ConditionalVAE

PAPER_ALPHA_SHARE = 0.1  # Kingma et al. (2014): alpha = 0.1 N, N the size of the training set


class SemiSupervisedVAE(ConditionalVAE):
    """M2 (chapter 9): the conditional VAE with a classifier q(y | x), an MLP with one hidden
    ReLU layer of ``classifier_nh`` units (``classifier``; ``classify`` gives its logits)."""

    def __init__(self, nx: int = NX, nh: int = 512, nz: int = 2, n_classes: int = N_CLASSES,
                 classifier_nh: int = 512, likelihood: str = "bernoulli",
                 sigma: float | str | None = 0.1) -> None:
        super().__init__(nx, nh, nz, n_classes, likelihood, sigma)
        check_integers(classifier_nh=classifier_nh)
        self.classifier_nh = classifier_nh
        self.classifier = make_classifier(nx, classifier_nh, n_classes)

    @property
    def sizes(self) -> dict[str, int]:
        return {**super().sizes, "classifier_nh": self.classifier_nh}

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of q(y | x), shape (batch, n_classes)."""
        self._check_x(x)
        return self.classifier(x)

    def encode_every_label(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x, y) for every label y at once: mu and log_var of shape (n_classes, batch, nz),
        equal to ``encode(x, y)`` for each y. The one-hot label only adds one column of the first
        layer's weights, so the image's part of that layer is computed once, not ten times."""
        self._check_x(x)
        weight, bias = self.encoder_hidden.weight, self.encoder_hidden.bias
        image_part = x @ weight[:, :self.nx].T + bias  # (batch, nh)
        label_part = weight[:, self.nx:].T  # (n_classes, nh): row y is what label y adds
        h = torch.relu(image_part + label_part.unsqueeze(1))  # (n_classes, batch, nh)
        return self.encoder_mu(h), self.encoder_log_var(h)


def make_classifier(nx: int = NX, nh: int = 512, n_classes: int = N_CLASSES) -> nn.Sequential:
    """q(y | x) as M2 has it (chapter 9): nx -> nh (ReLU) -> n_classes logits. The baseline
    trained on the labeled images alone uses the same architecture."""
    check_integers(nx=nx, nh=nh, n_classes=n_classes)
    return nn.Sequential(nn.Linear(nx, nh), nn.ReLU(), nn.Linear(nh, n_classes))


def labeled_loss(model: SemiSupervisedVAE, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L(x, y) per example: the conditional negative ELBO, -log p(x | z, y) + KL(q(z | x, y) ||
    p(z)) with one draw of z (chapter 9)."""
    return negative_elbo(x, *model(x, y), reduction="none", likelihood=model.likelihood)


def every_label_loss(model: SemiSupervisedVAE, x: torch.Tensor) -> torch.Tensor:
    """L(x, y) for every label y, shape (n_classes, batch), one draw of z for each pair; the
    draws are those of ``labeled_loss`` on the batch repeated label after label (chapter 9)."""
    mu, log_var = model.encode_every_label(x)
    labels = torch.arange(model.n_classes, device=x.device).unsqueeze(1).expand(mu.shape[:2])
    logits = model.decode(model.reparameterize(mu, log_var), labels)
    return negative_elbo(x, logits, mu, log_var, reduction="none", likelihood=model.likelihood)


def unlabeled_loss(model: SemiSupervisedVAE, x: torch.Tensor) -> torch.Tensor:
    """U(x) per example: sum over y of q(y | x) L(x, y), minus the entropy of q(y | x): the
    negative bound on log p(x) with the label enumerated out (chapter 9)."""
    log_q = F.log_softmax(model.classify(x), dim=-1)  # (batch, n_classes)
    q = log_q.exp()
    return (q * every_label_loss(model, x).T).sum(-1) + (q * log_q).sum(-1)


def classification_loss(model: SemiSupervisedVAE, x: torch.Tensor,
                        y: torch.Tensor) -> torch.Tensor:
    """-log q(y | x) per labeled example: the term that alpha weighs (chapter 9)."""
    return F.cross_entropy(model.classify(x), y, reduction="none")


def m2_loss(model: SemiSupervisedVAE, x_labeled: torch.Tensor, y_labeled: torch.Tensor,
            x_unlabeled: torch.Tensor, n_labeled: int, n_unlabeled: int,
            alpha: float | None = None) -> torch.Tensor:
    """Kingma et al.'s J^alpha = sum_labeled L + sum_unlabeled U + alpha E_labeled[-log q(y|x)]
    (chapter 9), with every labeled pair counted n_unlabeled / n_labeled times (as often as a
    step's batches use it when they are of one size), divided by n_unlabeled and estimated from
    one batch of each: mean L + mean U + alpha / n_labeled * mean -log q(y | x). ``alpha``
    defaults to the paper's 0.1 N, N = n_labeled + n_unlabeled."""
    check_integers(n_labeled=n_labeled, n_unlabeled=n_unlabeled)
    alpha = PAPER_ALPHA_SHARE * (n_labeled + n_unlabeled) if alpha is None else alpha
    check_numbers(low=0.0, strict=False, alpha=alpha)
    return (labeled_loss(model, x_labeled, y_labeled).mean()
            + unlabeled_loss(model, x_unlabeled).mean()
            + alpha / n_labeled * classification_loss(model, x_labeled, y_labeled).mean())


def split_labels(train: ImageSet, per_class: int = 10, seed: int = 0,
                 n_classes: int = N_CLASSES) -> tuple[ImageSet, ImageSet]:
    """(labeled, unlabeled): ``per_class`` images of each digit drawn with ``seed``, and all the
    others (their labels stay in the set, for checks only; training never reads them).
    Chapter 9."""
    check_integers(per_class=per_class, n_classes=n_classes)
    check_integers(low=0, seed=seed)
    if train.labels.ndim != 1:
        raise ValueError(f"split_labels needs one digit label per image, not labels of shape "
                         f"{tuple(train.labels.shape)}.")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(train), generator=generator).to(train.device)
    chosen = [order[train.labels[order] == digit][:per_class] for digit in range(n_classes)]
    short = [digit for digit, indices in enumerate(chosen) if len(indices) < per_class]
    if short:
        raise ValueError(f"the set has fewer than {per_class} images of digit(s) {short}.")
    labeled = torch.cat(chosen)
    rest = torch.ones(len(train), dtype=torch.bool, device=train.device)
    rest[labeled] = False
    return train[labeled], train[rest]


@torch.no_grad()
def classifier_accuracy(classifier: nn.Module, data: ImageSet, batch_size: int = 2000) -> float:
    """The share of ``data`` whose label is the classifier's most probable one; ``classifier``
    is a ``SemiSupervisedVAE`` (its q(y | x)) or any module that maps images to logits.
    Chapter 9."""
    classify = classifier.classify if hasattr(classifier, "classify") else classifier
    was_training = classifier.training
    classifier.eval()
    correct = sum(int((classify(data.images[i:i + batch_size]).argmax(-1)
                       == data.labels[i:i + batch_size]).sum())
                  for i in range(0, len(data), batch_size))
    classifier.train(was_training)
    return correct / len(data)


def fit_m2(model: SemiSupervisedVAE, labeled: ImageSet, unlabeled: ImageSet, epochs: int = 1,
           batch_size: int = 100, labeled_batch_size: int = 100, lr: float = 1e-3,
           alpha: float | None = None, pixels: str = "binarized", seed: int = 0,
           max_steps: int | None = None, test: ImageSet | None = None,
           progress: bool = False) -> list[float]:
    """Train M2 with Adam (chapter 9): each step takes the next ``batch_size`` unlabeled images
    and the next ``labeled_batch_size`` labeled ones (both shuffled, the labeled set cycled, so
    each labeled pair is used about as often as ``m2_loss`` counts it), with pixels drawn afresh
    (``draw_pixels``), and lowers ``m2_loss``. An epoch is one pass over the unlabeled set, or
    ``max_steps`` steps when fewer. ``seed`` fixes the batches and pixels, and seeds torch's
    global generator (the draws of z). Returns each step's loss; with
    ``progress``, prints each epoch's mean loss (and the accuracy on ``test``, when given)."""
    check_integers(epochs=epochs, batch_size=batch_size, labeled_batch_size=labeled_batch_size)
    if max_steps is not None:
        check_integers(max_steps=max_steps)
    check_numbers(lr=lr)
    generator = torch.Generator(device=unlabeled.device).manual_seed(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[torch.Tensor] = []
    labeled_order = torch.empty(0, dtype=torch.long, device=labeled.device)
    model.train()
    for epoch in range(1, epochs + 1):
        start, first = time.perf_counter(), len(losses)
        batches = torch.randperm(len(unlabeled), generator=generator,
                                 device=unlabeled.device).split(batch_size)
        for step, indices in enumerate(batches[:max_steps]):
            while len(labeled_order) < labeled_batch_size:  # cycle the labeled set
                more = torch.randperm(len(labeled), generator=generator, device=labeled.device)
                labeled_order = torch.cat([labeled_order, more])
            chosen, labeled_order = (labeled_order[:labeled_batch_size],
                                     labeled_order[labeled_batch_size:])
            x_l = draw_pixels(labeled.images[chosen], pixels, generator)
            x_u = draw_pixels(unlabeled.images[indices], pixels, generator)
            loss = m2_loss(model, x_l, labeled.labels[chosen], x_u, len(labeled),
                           len(unlabeled), alpha)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"the M2 loss became {loss.item()} at step {step} of "
                                       f"epoch {epoch}.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        if progress:
            mean = torch.stack(losses[first:]).mean().item()
            shown = ("" if test is None
                     else f", test accuracy {classifier_accuracy(model, test):.1%}")
            print(f"epoch {epoch}: loss {mean:.2f}{shown} "
                  f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    model.eval()
    return torch.stack(losses).tolist()


def fit_classifier(classifier: nn.Module, labeled: ImageSet, steps: int = 500, lr: float = 1e-3,
                   pixels: str = "binarized", seed: int = 0) -> list[float]:
    """The baseline of chapter 9: ``classifier`` trained on the labeled images alone, one Adam
    step on the whole labeled set (pixels drawn afresh) per step, lowering the mean of
    -log q(y | x); returns each step's loss."""
    check_integers(steps=steps)
    check_numbers(lr=lr)
    generator = torch.Generator(device=labeled.device).manual_seed(seed)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
    classifier.train()
    losses = []
    for _ in range(steps):
        x = draw_pixels(labeled.images, pixels, generator)
        loss = F.cross_entropy(classifier(x), labeled.labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    classifier.eval()
    return torch.stack(losses).tolist()
