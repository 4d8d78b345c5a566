"""The semi-supervised GAN's losses: finite differences, identities, extremes, PyTorch."""

import numpy as np
import pytest

from minigan.gradcheck import check_loss
from minigan.losses import CrossEntropyLoss
from minigan.models.sgan_losses import FeatureMatchingLoss, SGANUnsupervisedLoss, logsumexp

TOL = {"rtol": 1e-10, "atol": 1e-12}


@pytest.mark.parametrize("n, classes", [(1, 1), (5, 3), (8, 10)])
def test_sgan_unsupervised_loss_backward_matches_finite_differences(
    rng, assert_gradients_match, n, classes
):
    # Smooth in the logits, whose scale here is ~3: the default h = 1e-5 balances
    # truncation (~h^2 = 1e-10) against rounding (~1e-16 / h = 1e-11).
    logits = rng.normal(scale=3.0, size=(n, classes))
    for target in (1.0, 0.0, rng.uniform(size=n)):
        assert_gradients_match(check_loss(SGANUnsupervisedLoss(), logits, target))


def test_feature_matching_backward_matches_finite_differences(rng, assert_gradients_match):
    # L is quadratic in the fake features, so the central difference is exact up to
    # rounding (its O(h^2) error term is the third derivative, zero): h = 1.
    for n, m, features in [(1, 1, 1), (4, 6, 3), (7, 5, 9)]:
        fake, real = rng.standard_normal((n, features)), rng.standard_normal((m, features))
        assert_gradients_match(check_loss(FeatureMatchingLoss(), fake, real, h=1.0))


def test_sgan_loss_is_bce_of_d_equal_z_over_z_plus_1(rng):
    logits = rng.normal(size=(6, 4))
    Z = np.exp(logits).sum(axis=1)
    D = Z / (Z + 1)  # the naive formula: fine at these moderate logits
    loss = SGANUnsupervisedLoss()
    assert float(loss(logits, 1.0)) == pytest.approx(-np.log(D).mean(), rel=1e-13)
    p = np.exp(logits) / Z[:, None]
    np.testing.assert_allclose(loss.backward(), -((1 - D) / 6)[:, None] * p, rtol=1e-12)
    assert float(loss(logits, 0.0)) == pytest.approx(-np.log(1 - D).mean(), rel=1e-13)
    np.testing.assert_allclose(loss.backward(), (D / 6)[:, None] * p, rtol=1e-12)


def test_cross_entropy_over_k_plus_1_is_supervised_plus_unsupervised_real(rng):
    """-log p_{K+1}(y|x) with the fixed 0 logit appended = CE over K + the real loss."""
    logits, labels = rng.normal(scale=2, size=(5, 3)), np.array([0, 2, 2, 1, 0])
    with_fake_class = np.hstack([logits, np.zeros((5, 1))])
    k_plus_1 = CrossEntropyLoss()
    total = float(k_plus_1(with_fake_class, labels))
    supervised, unsupervised = CrossEntropyLoss(), SGANUnsupervisedLoss()
    assert total == pytest.approx(
        float(supervised(logits, labels)) + float(unsupervised(logits, 1.0)), rel=1e-13
    )
    np.testing.assert_allclose(
        k_plus_1.backward()[:, :3], supervised.backward() + unsupervised.backward(), **TOL
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgan_loss_is_exact_at_huge_logits(dtype):
    loss = SGANUnsupervisedLoss()
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype)
    # row 0: D = 1 (lse = 1e4); row 1: lse = -1e4 + log 3, so D ~ 0
    assert float(loss(x, np.array([1.0, 0.0], dtype))) == 0.0  # both judged right, exactly
    assert not loss.backward().any()
    value = float(loss(x, np.array([0.0, 1.0], dtype)))  # both judged wrong
    assert value == pytest.approx((1e4 + 1e4 - np.log(3)) / 2, rel=1e-6)
    grad = loss.backward()
    assert grad.dtype == dtype and np.isfinite(grad).all()
    # In float32, lse = -1e4 + log 3 is rounded to the spacing of floats near 1e4
    # (~1e-3), and softmax = exp(l - lse) inherits that relative error.
    rtol = 1e-3 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(grad, [[0.5, 0, 0], [-1 / 6, -1 / 6, -1 / 6]], rtol=rtol)
    np.testing.assert_allclose(logsumexp(x), [1e4, -1e4 + np.log(3)], rtol=1e-7)


def test_feature_matching_value_and_gradient_are_the_mean_difference(rng):
    fake, real = rng.standard_normal((4, 3)), rng.standard_normal((9, 3))
    loss = FeatureMatchingLoss()
    d = fake.mean(axis=0) - real.mean(axis=0)
    value = loss(fake, real)
    assert value.shape == () and float(value) == pytest.approx((d**2).sum(), rel=1e-14)
    np.testing.assert_allclose(loss.backward(), np.tile(2 * d / 4, (4, 1)), rtol=1e-14)
    assert float(loss(real, real)) == 0.0 and not loss.backward().any()


def test_sgan_losses_reject_bad_input_with_clear_messages():
    loss = SGANUnsupervisedLoss()
    with pytest.raises(
        ValueError,
        match=r"SGANUnsupervisedLoss\(\): expected logits \(batch, classes\), got \(4,\)",
    ):
        loss(np.zeros(4), 1.0)
    with pytest.raises(ValueError, match=r"at least one example and one class, got \(4, 0\)"):
        loss(np.zeros((4, 0)), 1.0)
    with pytest.raises(
        ValueError, match=r"SGANUnsupervisedLoss\(\): expected target \(4,\), got \(4, 1\)"
    ):
        loss(np.zeros((4, 3)), np.ones((4, 1)))
    with pytest.raises(ValueError, match=r"a target number must lie in \[0, 1\], got 2"):
        loss(np.zeros((4, 3)), 2)
    with pytest.raises(TypeError, match=r"logits must be a floating-point array"):
        loss(np.zeros((4, 3), int), 1.0)
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        SGANUnsupervisedLoss().backward()
    fm = FeatureMatchingLoss()
    with pytest.raises(
        ValueError,
        match=r"FeatureMatchingLoss\(\): expected real features \(batch, 3\), got \(5, 4\)",
    ):
        fm(np.zeros((2, 3)), np.zeros((5, 4)))
    with pytest.raises(TypeError, match=r"real features has dtype float32 but the layer computes"):
        fm(np.zeros((2, 3)), np.zeros((5, 3), np.float32))
    with pytest.raises(ValueError, match=r"expected at least one fake example, got 0"):
        fm(np.zeros((0, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"expected at least one real example, got 0"):
        fm(np.zeros((2, 3)), np.zeros((0, 3)))


def test_sgan_losses_match_pytorch_including_extremes(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    logits = np.concatenate([rng.normal(scale=4, size=(6, 5)), [[1e4, -1e4, 0, 50, -50]] * 2])
    target = np.concatenate([rng.uniform(size=6), [1.0, 0.0]])
    l_t = torch.from_numpy(logits).requires_grad_(True)
    lse = torch.logsumexp(l_t, dim=1)
    value_t = (F.softplus(lse) - torch.from_numpy(target) * lse).mean()  # the same formula
    value_t.backward()
    ours = SGANUnsupervisedLoss()
    np.testing.assert_allclose(ours(logits, target), value_t.item(), **TOL)
    np.testing.assert_allclose(ours.backward(), l_t.grad.numpy(), **TOL)

    fake, real = rng.standard_normal((5, 4)), rng.standard_normal((8, 4))
    fake_t = torch.from_numpy(fake).requires_grad_(True)
    value_t = ((fake_t.mean(0) - torch.from_numpy(real).mean(0)) ** 2).sum()
    value_t.backward()
    fm = FeatureMatchingLoss()
    np.testing.assert_allclose(fm(fake, real), value_t.item(), **TOL)
    np.testing.assert_allclose(fm.backward(), fake_t.grad.numpy(), **TOL)
