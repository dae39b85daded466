import pytest
import torch

from vae_helpers import FACTOR_SIZES, FACTORS, Shapes, factor_values, make_shapes, render_shapes


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(3000, seed=0)


def test_images_and_factors_have_the_documented_shapes_and_ranges(shapes):
    assert shapes.images.shape == (3000, 32 * 32) and shapes.images.dtype == torch.float32
    assert float(shapes.images.min()) == 0.0 and float(shapes.images.max()) == 1.0
    assert shapes.factors.shape == (3000, len(FACTORS)) and shapes.factors.dtype == torch.long
    for k, size in enumerate(FACTOR_SIZES):
        assert set(shapes.factors[:, k].tolist()) == set(range(size)), FACTORS[k]
    assert torch.equal(shapes.labels, shapes.factors)


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(shapes):
    again = make_shapes(3000, seed=0)
    assert torch.equal(again.images, shapes.images) and torch.equal(again.factors, shapes.factors)
    assert not torch.equal(make_shapes(3000, seed=1).factors, shapes.factors)


def test_images_are_the_rendering_of_their_factors(shapes):
    assert torch.equal(render_shapes(shapes.factors[:200]), shapes.images[:200])


def test_every_shape_stays_inside_the_canvas_and_is_not_empty(shapes):
    canvas = shapes.images.reshape(-1, 32, 32)
    assert float(canvas[:, [0, -1], :].max()) == 0.0 and float(canvas[:, :, [0, -1]].max()) == 0.0
    assert bool((shapes.images.sum(1) > 10).all())


@pytest.fixture(scope="module")
def grid():
    """Every combination of factor levels (in row-major order) and its image."""
    factors = torch.cartesian_prod(*[torch.arange(size) for size in FACTOR_SIZES])
    return factors, render_shapes(factors)


@pytest.mark.parametrize("k", range(len(FACTORS)), ids=FACTORS)
def test_changing_any_one_factor_by_one_level_changes_the_image(grid, k):
    factors, images = grid
    stride = int(torch.tensor(FACTOR_SIZES[k + 1:]).prod())  # row-major position of level + 1
    below = (factors[:, k] < FACTOR_SIZES[k] - 1).nonzero().squeeze(1)
    assert torch.equal(factors[below + stride, k], factors[below, k] + 1)
    difference = (images[below] - images[below + stride]).abs().sum(1)
    assert bool((difference > 0.5).all()), f"{int((difference <= 0.5).sum())} pairs look alike"


def test_scale_grows_the_area_and_x_moves_the_center():
    base = torch.tensor([[0, 0, 0, 0, 3]])
    bigger, right = base.clone(), base.clone()
    bigger[0, 1], right[0, 3] = 3, 7
    area = render_shapes(torch.cat([base, bigger])).sum(1)
    assert float(area[1]) > 2 * float(area[0])
    columns = torch.arange(32.0)
    images = render_shapes(torch.cat([base, right])).reshape(2, 32, 32)
    center = (images.sum(1) * columns).sum(1) / images.sum((1, 2))
    expected = factor_values()["x"][[0, 7]] - 0.5  # pixel i covers [i, i + 1)
    assert torch.allclose(center, expected, atol=0.25)


def test_slicing_and_moving_keep_images_and_factors_together(shapes):
    part = shapes[10:20]
    assert isinstance(part, Shapes) and len(part) == 10
    assert torch.equal(part.factors, shapes.factors[10:20])
    assert part.to("cpu").device.type == "cpu"


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n must be a positive integer"):
        make_shapes(0)
    with pytest.raises(ValueError, match="seed must be an integer"):
        make_shapes(10, seed=1.5)
    with pytest.raises(ValueError, match="side must be an integer of at least 16"):
        make_shapes(10, side=8)
    with pytest.raises(ValueError, match="factors out of range"):
        render_shapes(torch.tensor([[3, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="integer \\(N, 5\\)"):
        render_shapes(torch.zeros(4, 5))
    with pytest.raises(TypeError, match="factors must be a torch.Tensor"):
        render_shapes([[0, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match="Shapes needs factors \\(N, 5\\)"):
        Shapes(torch.zeros(3, 1024), torch.zeros(3, 4, dtype=torch.long))


def test_shapes_go_to_image_grids_at_their_own_size(shapes):
    from vae_helpers.plots import as_image_batch

    assert as_image_batch(shapes.images[:3]).shape == (3, 1, 32, 32)
    with pytest.raises(ValueError, match="square images"):
        as_image_batch(torch.zeros(2, 1000))
