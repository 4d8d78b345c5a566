"""Losses: gradient checks, saturation, 0-d results, bad input."""

import numpy as np
import pytest

from minigan.gradcheck import check_loss
from minigan.losses import BCELoss, BCEWithLogitsLoss

LOSSES = [BCELoss, BCEWithLogitsLoss]


def predictions(loss_class, rng, shape):
    if loss_class is BCELoss:
        return rng.uniform(
            0.05, 0.95, size=shape
        )  # probabilities, away from the clamps
    return rng.normal(scale=3.0, size=shape)  # logits


@pytest.mark.parametrize("shape", [(1, 1), (7, 1), (4, 3)])
@pytest.mark.parametrize("loss_class", LOSSES)
def test_loss_backward_matches_finite_differences(
    rng, assert_gradients_match, loss_class, shape
):
    pred = predictions(loss_class, rng, shape)
    for target in (
        rng.uniform(size=shape),
        rng.integers(0, 2, size=shape).astype(float),
        0.9,
    ):
        assert_gradients_match(check_loss(loss_class(), pred, target))


def test_bce_with_logits_equals_bce_of_sigmoid_where_both_are_accurate(rng):
    from minigan.nn import sigmoid

    logits = rng.normal(size=(10, 1))
    target = rng.uniform(size=(10, 1))
    a = BCEWithLogitsLoss()(logits, target)
    b = BCELoss()(sigmoid(logits), target)
    assert float(a) == pytest.approx(float(b), rel=1e-12)


@pytest.mark.parametrize("loss_class", LOSSES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_is_a_0d_array_in_the_input_dtype(loss_class, dtype):
    loss = loss_class()
    value = loss(np.full((3, 1), 0.5, dtype), np.ones((3, 1), dtype))
    assert isinstance(value, np.ndarray) and value.shape == () and value.dtype == dtype
    assert loss.backward().dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_at_probabilities_0_and_1_is_finite_and_clamped_like_pytorch(dtype):
    loss = BCELoss()
    p = np.array([0.0, 1.0, 0.0, 1.0], dtype)
    t = np.array([1.0, 0.0, 0.0, 1.0], dtype)
    value = loss(
        p, t
    )  # -log(0) clamps at 100 for the two wrong answers, 0 for the right ones
    assert float(value) == pytest.approx(50.0)
    assert np.isfinite(loss.backward()).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_is_exact_at_huge_logits(dtype):
    loss = BCEWithLogitsLoss()
    x = np.array([1e4, -1e4, 1e4, -1e4], dtype)
    t = np.array([1.0, 0.0, 0.0, 1.0], dtype)
    # right with confidence costs 0; wrong costs |x| = 1e4, averaged: (0 + 0 + 1e4 + 1e4) / 4
    assert float(loss(x, t)) == pytest.approx(5e3)
    np.testing.assert_array_equal(loss.backward(), np.array([0, 0, 0.25, -0.25], dtype))


def test_loss_rejects_mismatched_shapes_dtypes_and_targets():
    loss = BCEWithLogitsLoss()
    with pytest.raises(
        ValueError, match=r"BCEWithLogitsLoss\(\): expected target \(4, 1\), got \(4,\)"
    ):
        loss(np.zeros((4, 1), np.float32), np.zeros(4, np.float32))
    with pytest.raises(
        TypeError, match=r"target has dtype float64 but the layer computes in float32"
    ):
        loss(np.zeros((4, 1), np.float32), np.zeros((4, 1)))
    with pytest.raises(
        ValueError, match=r"a target number must lie in \[0, 1\], got 2"
    ):
        loss(np.zeros((4, 1), np.float32), 2)
    with pytest.raises(TypeError, match=r"pred must be a floating-point array"):
        loss(np.zeros((4, 1), np.int32), 1.0)


@pytest.mark.parametrize("loss_class", LOSSES)
def test_loss_backward_before_forward_says_so(loss_class):
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        loss_class().backward()
