import math

import pytest
import torch

from vae_helpers import VQVAE, VectorQuantizer, codebook_perplexity, fit_vqvae, vqvae_loss


def test_each_vector_goes_to_its_nearest_code_and_forward_returns_that_code():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(codes=10, dim=3)
    z_e = torch.randn(4, 5, 3)
    distances = (z_e[..., None, :] - quantizer.codebook.weight).pow(2).sum(-1)
    z_q, indices, codebook_loss, commitment_loss = quantizer(z_e)
    assert torch.equal(indices, distances.argmin(-1))
    assert torch.allclose(z_q, quantizer.codebook.weight[indices])
    expected = distances.min(-1).values.sum() / 4
    assert torch.allclose(codebook_loss, expected) and torch.allclose(commitment_loss, expected)


def test_gradients_pass_straight_through_and_each_loss_trains_its_own_side():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(codes=6, dim=2)
    z_e = torch.randn(8, 2, requires_grad=True)
    z_q, _, codebook_loss, commitment_loss = quantizer(z_e)
    weights = torch.randn(8, 2)
    (z_q * weights).sum().backward()
    assert torch.equal(z_e.grad, weights)  # the identity from z_q to z_e
    assert quantizer.codebook.weight.grad is None  # the straight-through term skips the codebook
    z_e.grad = None
    codebook_loss.backward(retain_graph=True)
    assert z_e.grad is None and quantizer.codebook.weight.grad is not None
    quantizer.codebook.weight.grad = None
    commitment_loss.backward()
    assert z_e.grad is not None and quantizer.codebook.weight.grad is None


def test_initialize_puts_the_codes_on_encoder_outputs():
    quantizer = VectorQuantizer(codes=4, dim=2)
    z_e = torch.arange(20.0).reshape(10, 2)
    quantizer.initialize(z_e, torch.Generator().manual_seed(0))
    rows = {tuple(row) for row in z_e.tolist()}
    assert all(tuple(code) in rows for code in quantizer.codebook.weight.tolist())
    with pytest.raises(ValueError, match="fewer than the 4 codes"):
        quantizer.initialize(z_e[:3])


def test_perplexity_counts_equally_used_codes():
    assert codebook_perplexity(torch.tensor([0, 1, 2, 3]), codes=8) == pytest.approx(4.0)
    assert codebook_perplexity(torch.zeros(10, dtype=torch.long), codes=8) == pytest.approx(1.0)
    uneven = torch.tensor([0, 0, 0, 1])
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert codebook_perplexity(uneven, codes=2) == pytest.approx(math.exp(entropy))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="codes must be a positive integer"):
        VectorQuantizer(codes=0)
    with pytest.raises(ValueError, match="z_e must be a tensor of shape"):
        VectorQuantizer(codes=4, dim=3)(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="indices must lie in"):
        codebook_perplexity(torch.tensor([0, 9]), codes=4)
    with pytest.raises(ValueError, match="non-empty integer"):
        codebook_perplexity(torch.tensor([0.0, 1.0]), codes=4)
    with pytest.raises(ValueError, match="x must have shape"):
        VQVAE().encode(torch.zeros(2, 100))
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        fit_vqvae(VQVAE(), None, epochs=0)


def test_vqvae_shapes_and_a_short_training_lowers_the_loss():
    torch.manual_seed(0)
    model = VQVAE(codes=16, dim=4, channels=8)
    x = torch.rand(256, 784).round()
    logits, indices, codebook_loss, commitment_loss = model(x)
    assert logits.shape == (256, 784) and indices.shape == (256, 7, 7)
    assert model.decode_indices(indices).shape == (256, 784)
    assert vqvae_loss(x, logits, codebook_loss, commitment_loss).ndim == 0

    class Data:
        images = x
        device = x.device

        def __len__(self):
            return len(x)

    losses = fit_vqvae(model, Data(), epochs=4, batch_size=64)
    assert losses[-1] < losses[0]
