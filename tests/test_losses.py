"""Losses: gradient checks, saturation, 0-d results, bad input."""

import numpy as np
import pytest

from minigan.gradcheck import check_loss
from minigan.losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    GradientPenalty,
    MSELoss,
    WassersteinLoss,
    log_softmax,
)

LOSSES = [BCELoss, BCEWithLogitsLoss]


def predictions(loss_class, rng, shape):
    if loss_class is BCELoss:
        return rng.uniform(0.05, 0.95, size=shape)  # probabilities, away from the clamps
    return rng.normal(scale=3.0, size=shape)  # logits


@pytest.mark.parametrize("shape", [(1, 1), (7, 1), (4, 3)])
@pytest.mark.parametrize("loss_class", LOSSES)
def test_loss_backward_matches_finite_differences(rng, assert_gradients_match, loss_class, shape):
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
    value = loss(p, t)  # -log(0) clamps at 100 for the two wrong answers, 0 for the right ones
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
    with pytest.raises(ValueError, match=r"a target number must lie in \[0, 1\], got 2"):
        loss(np.zeros((4, 1), np.float32), 2)
    with pytest.raises(TypeError, match=r"pred must be a floating-point array"):
        loss(np.zeros((4, 1), np.int32), 1.0)


@pytest.mark.parametrize("loss_class", LOSSES)
def test_loss_backward_before_forward_says_so(loss_class):
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        loss_class().backward()


# --- CrossEntropyLoss ----------------------------------------------------------------


@pytest.mark.parametrize("n, classes", [(1, 2), (5, 3), (8, 10)])
def test_cross_entropy_backward_matches_finite_differences(rng, assert_gradients_match, n, classes):
    logits = rng.normal(scale=3.0, size=(n, classes))
    labels = rng.integers(0, classes, size=n)
    assert_gradients_match(check_loss(CrossEntropyLoss(), logits, labels))


def test_cross_entropy_is_minus_the_mean_log_softmax_at_the_labels(rng):
    logits, labels = rng.normal(size=(6, 4)), np.array([0, 3, 1, 1, 2, 0])
    loss = CrossEntropyLoss()
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)  # the naive softmax
    expected = -np.log(p[np.arange(6), labels]).mean()
    assert float(loss(logits, labels)) == pytest.approx(expected, rel=1e-13)
    grad = loss.backward()
    np.testing.assert_allclose(grad, (p - np.eye(4)[labels]) / 6, rtol=1e-12)
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-16)  # rows sum to zero
    # adding a constant to a row changes neither the loss nor the gradient
    assert float(loss(logits + 1e3, labels)) == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(loss.backward(), grad, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_a_0d_array_in_the_logits_dtype(dtype):
    loss = CrossEntropyLoss()
    value = loss(np.zeros((3, 4), dtype), np.array([0, 1, 3], np.uint8))
    assert isinstance(value, np.ndarray) and value.shape == () and value.dtype == dtype
    assert float(value) == pytest.approx(np.log(4))  # all classes equally likely
    assert loss.backward().dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_exact_at_huge_logits(dtype):
    loss = CrossEntropyLoss()
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype)
    # right with confidence costs 0; wrong costs the gap 2e4; averaged: (0 + 2e4) / 2
    assert float(loss(x, np.array([0, 0]))) == pytest.approx(1e4)
    np.testing.assert_array_equal(loss.backward(), np.array([[0, 0, 0], [-0.5, 0.5, 0]], dtype))
    np.testing.assert_array_equal(log_softmax(x)[:, 2], np.array([-1e4, -1e4], dtype))


def test_cross_entropy_rejects_bad_logits_and_labels():
    loss = CrossEntropyLoss()
    x = np.zeros((4, 3))
    with pytest.raises(
        ValueError,
        match=r"CrossEntropyLoss\(\): expected logits \(batch, classes\), got \(4,\)",
    ):
        loss(np.zeros(4), np.zeros(4, int))
    with pytest.raises(TypeError, match=r"logits must be a floating-point array"):
        loss(np.zeros((4, 3), int), np.zeros(4, int))
    with pytest.raises(
        TypeError,
        match=r"labels must be integer class indices, got dtype float64; convert with "
        r"labels.astype\('int64'\)",
    ):
        loss(x, np.zeros(4))
    with pytest.raises(TypeError, match=r"labels must be a NumPy or CuPy array .* got list"):
        loss(x, [0, 1, 2, 0])
    with pytest.raises(
        ValueError, match=r"expected labels \(4,\) for logits \(4, 3\), got \(4, 1\)"
    ):
        loss(x, np.zeros((4, 1), int))
    with pytest.raises(
        ValueError,
        match=r"labels must lie in \[0, 3\) for 3 classes, got values from 0 to 3",
    ):
        loss(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"got values from -1 to 2"):
        loss(x, np.array([0, -1, 2, 0]))
    with pytest.raises(ValueError, match=r"at least one example and one class, got \(0, 3\)"):
        loss(np.zeros((0, 3)), np.zeros(0, int))


def test_cross_entropy_backward_before_forward_says_so():
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        CrossEntropyLoss().backward()


# --- the GAN family's losses ----------------------------------------------------
# Step h = 1e-5 (check_loss's default): each loss is a polynomial or a smooth norm of
# O(1) inputs, so truncation O(h^2) and rounding O(1e-16 / h) are both below 1e-10.


@pytest.mark.parametrize("shape", [(1, 1), (7, 1), (4, 3)])
def test_mse_backward_matches_finite_differences(rng, assert_gradients_match, shape):
    pred = rng.standard_normal(shape)
    for target in (rng.standard_normal(shape), 1.0, 0.0):
        assert_gradients_match(check_loss(MSELoss(), pred, target))


def test_mse_by_hand():
    loss = MSELoss()
    assert float(loss(np.array([[1.0], [3.0]]), np.array([[0.0], [1.0]]))) == 2.5  # (1 + 4) / 2
    np.testing.assert_array_equal(loss.backward(), [[1.0], [2.0]])  # 2 (p - t) / 2


@pytest.mark.parametrize("target", [1, -1])
@pytest.mark.parametrize("shape", [(1, 1), (6, 1)])
def test_wasserstein_backward_matches_finite_differences(
    rng, assert_gradients_match, target, shape
):
    assert_gradients_match(check_loss(WassersteinLoss(), rng.standard_normal(shape), target))


def test_wasserstein_critic_loss_is_mean_fake_minus_mean_real():
    loss = WassersteinLoss()
    real, fake = np.array([[2.0], [4.0]]), np.array([[1.0], [-1.0], [3.0]])
    critic = float(loss(fake, -1)) + float(loss(real, 1))
    assert critic == pytest.approx(1.0 - 3.0)
    assert float(loss(fake, 1)) == pytest.approx(-1.0)  # the generator's: -mean D(G(z))
    np.testing.assert_array_equal(loss.backward(), np.full((3, 1), -1 / 3))


@pytest.mark.parametrize("batch", [1, 5])
def test_gradient_penalty_backward_matches_finite_differences(rng, assert_gradients_match, batch):
    assert_gradients_match(check_loss(GradientPenalty(), rng.standard_normal((batch, 7)), 1.0))


def test_gradient_penalty_by_hand_and_at_zero():
    penalty = GradientPenalty()
    g = np.array([[3.0, 4.0], [0.0, 0.0]])  # norms 5 and 0
    assert float(penalty(g, 1.0)) == pytest.approx((16 + 1) / 2)
    # row 1: 2 (5 - 1) / 2 * g / 5; row 2 has no direction: 0, not nan
    np.testing.assert_allclose(penalty.backward(), [[2.4, 3.2], [0.0, 0.0]])
    np.testing.assert_array_equal(penalty.norms, [[5.0], [0.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gan_family_losses_are_0d_in_the_input_dtype(dtype):
    pred = np.ones((4, 3), dtype)
    for loss, target in [(MSELoss(), 0.5), (WassersteinLoss(), -1), (GradientPenalty(), 1.0)]:
        value = loss(pred, target)
        assert value.shape == () and value.dtype == dtype, loss
        assert loss.backward().dtype == dtype, loss


def test_gan_family_losses_reject_bad_targets():
    with pytest.raises(ValueError, match=r"target is \+1 \(score high: real\) or -1"):
        WassersteinLoss()(np.ones((2, 1)), 0.5)
    with pytest.raises(ValueError, match=r"target is \+1"):
        WassersteinLoss()(np.ones((2, 1)), np.ones((2, 1)))
    with pytest.raises(ValueError, match=r"MSELoss\(\): expected target \(2, 1\), got \(3, 1\)"):
        MSELoss()(np.ones((2, 1)), np.ones((3, 1)))
    with pytest.raises(
        ValueError, match=r"GradientPenalty\(\): expected gradient \(batch, features\)"
    ):
        GradientPenalty()(np.ones(3), 1.0)
