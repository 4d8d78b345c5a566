"""DiffAugment: fixed-draw gradient checks, what each step does, the draws' ranges, modes."""

import numpy as np
import pytest
from conftest import AFFINE_STEP, SameDraw

from minigan import nn
from minigan.gradcheck import check_module
from minigan.nn.augment import POLICIES, augment, augment_transposed, translate


@pytest.mark.parametrize(
    "policy", [("color",), ("translation",), ("cutout",), POLICIES], ids=lambda p: "+".join(p)
)
@pytest.mark.parametrize("shape", [(3, 1, 8, 8), (2, 3, 7, 9), (1, 3, 5, 5)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_backward_with_fixed_draws_matches_finite_differences(
    rng, assert_gradients_match, policy, shape, seed
):
    x = rng.standard_normal(shape)
    layer = SameDraw(nn.DiffAugment(policy), seed=seed)
    assert_gradients_match(check_module(layer, x, h=AFFINE_STEP))


def test_backward_is_the_transpose_of_the_linear_part(rng):
    """<A x, g> = <x, A^T g> for the whole policy (brightness, the only constant, removed
    by subtracting the image of 0)."""
    layer = nn.DiffAugment(rng=np.random.default_rng(5))
    x, g = rng.standard_normal((4, 3, 8, 8)), rng.standard_normal((4, 3, 8, 8))
    draws = layer.draw(x)
    linear = augment(x, draws) - augment(np.zeros_like(x), draws)
    np.testing.assert_allclose(
        np.vdot(linear, g), np.vdot(x, augment_transposed(g, draws)), rtol=1e-12
    )


def test_translate_moves_pixels_and_fills_with_zeros():
    x = np.arange(2 * 1 * 3 * 4, dtype=np.float64).reshape(2, 1, 3, 4) + 1
    y = translate(x, np.array([1, 0]), np.array([0, -2]))
    np.testing.assert_array_equal(y[0, 0, :2], x[0, 0, 1:])  # row i reads row i + 1 ...
    np.testing.assert_array_equal(y[0, 0, 2], 0)  # ... and the last row reads nothing
    np.testing.assert_array_equal(y[1, 0, :, 2:], x[1, 0, :, :2])  # columns, by -2
    np.testing.assert_array_equal(y[1, 0, :, :2], 0)


def reference(x, draws):
    """Zhao et al.'s DiffAugment_pytorch.py (rand_brightness, rand_saturation, rand_contrast,
    rand_translation, rand_cutout), ported line by line to NumPy, with our draws."""
    n, _, h, w = x.shape
    x = x + draws["brightness"]
    x_mean = x.mean(axis=1, keepdims=True)
    x = (x - x_mean) * draws["saturation"] + x_mean
    x_mean = x.mean(axis=(1, 2, 3), keepdims=True)
    x = (x - x_mean) * draws["contrast"] + x_mean
    ti, tj = (t[:, None, None] for t in draws["shift"])
    grid_n, grid_i, grid_j = np.meshgrid(np.arange(n), np.arange(h), np.arange(w), indexing="ij")
    grid_i = np.clip(grid_i + ti + 1, 0, h + 1)
    grid_j = np.clip(grid_j + tj + 1, 0, w + 1)
    x_pad = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
    x = x_pad.transpose(0, 2, 3, 1)[grid_n, grid_i, grid_j].transpose(0, 3, 1, 2)
    return x * draws["mask"]


@pytest.mark.parametrize("shape", [(6, 3, 8, 8), (5, 1, 7, 9)])
def test_augment_matches_the_authors_code(rng, shape):
    layer = nn.DiffAugment(rng=np.random.default_rng(3))
    x = rng.standard_normal(shape)
    draws = layer.draw(x)
    np.testing.assert_allclose(augment(x, draws), reference(x, draws), rtol=1e-12, atol=1e-12)


def test_cutout_squares_reach_both_far_corners():
    """Centres run over [0, H - ch % 2], as in the authors' code: clipped 4x4 squares in
    the top-left and the bottom-right corners of a 16x16 picture (side 8)."""
    layer = nn.DiffAugment(("cutout",), rng=np.random.default_rng(0))
    zeros = layer(np.ones((2000, 1, 16, 16)))[:, 0] == 0
    corner = np.zeros((16, 16), bool)
    corner[:4, :4] = True
    assert (zeros == corner).all(axis=(1, 2)).any()
    assert (zeros == corner[::-1, ::-1]).all(axis=(1, 2)).any()


def test_a_policy_may_be_one_comma_separated_string():
    assert nn.DiffAugment("translation, color").policy == ("color", "translation")


def test_cutout_zeroes_one_square_of_half_the_side_at_most():
    layer = nn.DiffAugment(("cutout",), rng=np.random.default_rng(0))
    x = np.ones((500, 2, 16, 16))
    y = layer(x)
    zeros = (y == 0).all(axis=1)  # both channels zeroed alike
    assert ((y == 0) | (y == 1)).all() and (zeros == (y[:, 0] == 0)).all()
    counts = zeros.sum(axis=(1, 2))
    assert counts.max() == 8 * 8 and counts.min() > 0  # whole squares, and cut-off ones
    rows, cols = zeros.any(axis=2), zeros.any(axis=1)
    for r, c, k in zip(rows, cols, counts):  # one rectangle: its rows times its columns
        assert r.sum() * c.sum() == k and np.ptp(np.flatnonzero(r)) == r.sum() - 1
    assert zeros[:, 0, 0].any() and zeros[:, 15, 15].any()  # reaching every corner


def test_draws_cover_their_ranges():
    layer = nn.DiffAugment(rng=np.random.default_rng(0))
    draws = layer.draw(np.zeros((2000, 3, 32, 32), np.float32))
    di, dj = draws["shift"]
    assert set(np.unique(di)) == set(range(-4, 5)) == set(np.unique(dj))  # 1/8 of 32
    for name, low, high in [
        ("brightness", -0.5, 0.5),
        ("saturation", 0, 2),
        ("contrast", 0.5, 1.5),
    ]:
        value = draws[name]
        assert value.dtype == np.float32 and low <= value.min() < low + 0.01
        assert high - 0.01 < value.max() < high


def test_color_changes_brightness_saturation_and_contrast_per_picture():
    layer = nn.DiffAugment(("color",), rng=np.random.default_rng(0))
    grey = np.full((50, 3, 4, 4), 0.25)  # equal channels, no contrast: only brightness acts
    y = layer(grey)
    np.testing.assert_allclose(y - grey, np.broadcast_to(layer.saved(y)[1]["brightness"], y.shape))


def test_evaluation_mode_is_the_identity_both_ways(rng):
    layer = nn.DiffAugment(rng=np.random.default_rng(0)).eval()
    x = rng.standard_normal((2, 3, 8, 8))
    assert layer(x) is x and layer.backward(x) is x


def test_float32_stays_float32_and_input_grad_false_returns_none(rng):
    layer = nn.DiffAugment(rng=np.random.default_rng(0))
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    y = layer(x)
    assert y.dtype == np.float32 and layer.backward(y, input_grad=True).dtype == np.float32
    layer(x)
    assert layer.backward(y, input_grad=False) is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"policy": ("colour",)},
            r"policy must name one or more of color, translation, cutout; got 'colour'",
        ),
        ({"policy": ()}, r"got none"),
        ({"translation": 1.5}, r"translation must lie in \[0, 1\], got 1.5"),
        ({"cutout": -0.1}, r"cutout must lie in \[0, 1\], got -0.1"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nn.DiffAugment(**kwargs)


def test_a_non_image_input_names_the_expected_shape():
    with pytest.raises(ValueError, match=r"DiffAugment.*\(batch, channels, height, width\)"):
        nn.DiffAugment(rng=np.random.default_rng(0))(np.zeros((4, 10)))
