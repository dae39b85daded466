"""M2 (chapter 9): its losses against hand computations, the label split, and training."""

import math

import pytest
import torch
import torch.nn.functional as F

from vae_helpers import (
    ConditionalVAE,
    ImageSet,
    SemiSupervisedVAE,
    classifier_accuracy,
    fit_classifier,
    fit_m2,
    labeled_loss,
    m2_loss,
    make_classifier,
    negative_elbo,
    split_labels,
    unlabeled_loss,
)

NX, NH, NZ, CLASSES = 6, 5, 2, 3


def tiny_model(seed: int = 0) -> SemiSupervisedVAE:
    torch.manual_seed(seed)
    return SemiSupervisedVAE(nx=NX, nh=NH, nz=NZ, n_classes=CLASSES, classifier_nh=4)


def binary_batch(n: int = 4, seed: int = 1) -> torch.Tensor:
    return (torch.rand(n, NX, generator=torch.Generator().manual_seed(seed)) < 0.5).float()


def hand_negative_elbo(model, x, y, eps):
    """-log p(x | z, y) + KL(q(z | x, y) || N(0, I)) written out, with the noise ``eps``."""
    one_hot = F.one_hot(y, CLASSES).float()
    h = torch.relu(torch.cat([x, one_hot], -1) @ model.encoder_hidden.weight.T
                   + model.encoder_hidden.bias)
    mu, log_var = model.encoder_mu(h), model.encoder_log_var(h)
    z = mu + torch.exp(0.5 * log_var) * eps
    logits = model.decoder_logits(torch.relu(model.decoder_hidden(torch.cat([z, one_hot], -1))))
    log_px = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    kl = 0.5 * (log_var.exp() + mu ** 2 - 1 - log_var).sum(-1)
    return -log_px + kl


def test_the_labeled_loss_is_the_conditional_negative_elbo():
    model, x, y = tiny_model(), binary_batch(), torch.tensor([0, 2, 1, 2])
    torch.manual_seed(5)
    loss = labeled_loss(model, x, y)
    torch.manual_seed(5)
    eps = torch.randn(len(x), NZ)
    assert torch.allclose(loss, hand_negative_elbo(model, x, y, eps), atol=1e-5)
    conditional = ConditionalVAE(nx=NX, nh=NH, nz=NZ, n_classes=CLASSES)
    conditional.load_state_dict({k: v for k, v in model.state_dict().items()
                                 if not k.startswith("classifier")})
    torch.manual_seed(5)
    helper = negative_elbo(x, *conditional(x, y), reduction="none")
    assert torch.allclose(loss, helper, atol=1e-5)


def test_the_unlabeled_loss_enumerates_the_labels_weighted_by_q_minus_the_entropy():
    model, x = tiny_model(), binary_batch()
    torch.manual_seed(7)
    loss = unlabeled_loss(model, x)
    torch.manual_seed(7)
    eps = torch.randn(CLASSES, len(x), NZ)  # the draws, label after label
    q = torch.softmax(model.classifier(x), -1)
    expected = torch.zeros(len(x))
    for label in range(CLASSES):
        y = torch.full((len(x),), label)
        expected += q[:, label] * hand_negative_elbo(model, x, y, eps[label])
    entropy = -(q * q.log()).sum(-1)
    assert torch.allclose(loss, expected - entropy, atol=1e-5)
    assert entropy.min() > 0  # the entropy term is not vanishing here: the check can see it


def test_every_label_is_encoded_as_encode_would():
    model, x = tiny_model(), binary_batch()
    mu, log_var = model.encode_every_label(x)
    for label in range(CLASSES):
        one_mu, one_log_var = model.encode(x, torch.full((len(x),), label))
        assert torch.allclose(mu[label], one_mu, atol=1e-6)
        assert torch.allclose(log_var[label], one_log_var, atol=1e-6)


def test_m2_loss_weighs_its_three_terms_per_training_image():
    model, x_l, x_u = tiny_model(), binary_batch(3, seed=2), binary_batch(4, seed=3)
    y_l = torch.tensor([0, 1, 2])
    torch.manual_seed(3)
    total = m2_loss(model, x_l, y_l, x_u, n_labeled=30, n_unlabeled=570)
    torch.manual_seed(3)
    labeled, unlabeled = labeled_loss(model, x_l, y_l), unlabeled_loss(model, x_u)
    cross_entropy = F.cross_entropy(model.classify(x_l), y_l)
    # J^alpha with the labeled pairs counted 570 / 30 times, per unlabeled image
    expected = (570 / 30 * (labeled.sum() / 3 * 30 + 0.1 * 600 * cross_entropy)
                + unlabeled.sum() / 4 * 570) / 570
    assert torch.allclose(total, expected, atol=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        m2_loss(model, x_l, y_l, x_u, 30, 570, alpha=-1.0)


def labeled_set(per_digit: int = 13, classes: int = CLASSES) -> ImageSet:
    labels = torch.arange(classes).repeat(per_digit)
    images = torch.rand(len(labels), NX, generator=torch.Generator().manual_seed(0))
    return ImageSet(images=images, labels=labels)


def test_split_labels_gives_per_class_disjoint_reproducible_sets():
    data = labeled_set(per_digit=13, classes=10)
    labeled, unlabeled = split_labels(data, per_class=10, seed=4)
    assert torch.bincount(labeled.labels, minlength=10).tolist() == [10] * 10
    assert len(labeled) + len(unlabeled) == len(data)
    rows = {tuple(row.tolist()) for row in labeled.images}
    assert len(rows) == 100 and not rows & {tuple(row.tolist()) for row in unlabeled.images}
    again, _ = split_labels(data, per_class=10, seed=4)
    other, _ = split_labels(data, per_class=10, seed=5)
    assert torch.equal(again.images, labeled.images)
    assert not torch.equal(other.images, labeled.images)


def test_split_labels_names_bad_input():
    data = labeled_set(per_digit=13, classes=10)
    with pytest.raises(ValueError, match="per_class"):
        split_labels(data, per_class=0)
    with pytest.raises(ValueError, match="seed"):
        split_labels(data, seed=-1)
    with pytest.raises(ValueError, match="fewer than 14 images"):
        split_labels(data, per_class=14)
    with pytest.raises(ValueError, match="one digit label per image"):
        split_labels(ImageSet(images=data.images, labels=data.labels[:, None]))


@pytest.mark.slow
def test_a_few_steps_of_m2_lower_its_loss():
    data = labeled_set(per_digit=40)
    labeled, unlabeled = split_labels(data, per_class=5, n_classes=CLASSES)
    model = tiny_model()
    losses = fit_m2(model, labeled, unlabeled, epochs=15, batch_size=20, labeled_batch_size=15,
                    lr=1e-2)
    assert len(losses) == 15 * math.ceil(len(unlabeled) / 20)
    assert sum(losses[-10:]) < sum(losses[:10])
    assert not model.training


def test_the_baseline_classifier_learns_its_labels():
    data = labeled_set(per_digit=10)
    data = ImageSet(images=(data.images + F.one_hot(data.labels, NX)) / 2, labels=data.labels)
    classifier = make_classifier(NX, 8, CLASSES)
    before = classifier_accuracy(classifier, data)
    losses = fit_classifier(classifier, data, steps=200, lr=1e-2, pixels="gray")
    assert losses[-1] < losses[0] / 4
    assert classifier_accuracy(classifier, data) == 1.0 > before
