"""WeightNormLinear: finite differences, the geometry of g and v, PyTorch parity."""

import numpy as np
import pytest

from minigan import nn
from minigan.gradcheck import check_module


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("n_in, n_out", [(1, 1), (5, 3), (8, 12)])
def test_weight_norm_linear_backward_matches_finite_differences(
    rng, assert_gradients_match, batch, n_in, n_out
):
    # W = g v / ||v|| is smooth, not linear, in v: the default h = 1e-5 balances the
    # O(h^2) truncation (~1e-10) against rounding (~1e-16 / h = 1e-11).
    layer = nn.WeightNormLinear(n_in, n_out, rng=rng, dtype=np.float64)
    layer.weight_g.data *= rng.uniform(0.5, 2.0, n_out)  # g != ||v||: a general point
    errors = check_module(layer, rng.standard_normal((batch, n_in)))
    assert set(errors) == {"input", "weight_g", "weight_v", "bias"}
    assert_gradients_match(errors)


def test_weight_norm_starts_as_linear_and_rows_have_length_g(rng):
    plain = nn.Linear(6, 4, rng=np.random.default_rng(0))
    normed = nn.WeightNormLinear(6, 4, rng=np.random.default_rng(0))
    x = rng.standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_allclose(normed(x), plain(x), rtol=1e-5, atol=1e-6)  # W = v at the start
    assert normed.weight_g.dtype == np.float32
    normed.weight_g.data[...] = [1.0, 2.0, 0.5, 3.0]
    normed.weight_v.data *= 7.0  # only v's direction matters
    normed(x)
    W = normed._saved[1]
    np.testing.assert_allclose(np.linalg.norm(W, axis=1), [1.0, 2.0, 0.5, 3.0], rtol=1e-6)


def test_weight_norm_gradient_on_v_is_perpendicular_to_v(rng):
    layer = nn.WeightNormLinear(5, 3, rng=rng, dtype=np.float64)
    y = layer(rng.standard_normal((4, 5)))
    assert layer.backward(rng.standard_normal(y.shape), input_grad=False) is None
    v, dv = layer.weight_v.data, layer.weight_v.grad
    np.testing.assert_allclose((v * dv).sum(axis=1), 0, atol=1e-14)  # scaling v changes nothing


def test_weight_norm_respects_requires_grad_and_rejects_bad_input(rng):
    layer = nn.WeightNormLinear(3, 2, rng=rng)
    layer.weight_v.requires_grad = False
    layer(np.ones((1, 3), np.float32))
    layer.backward(np.ones((1, 2), np.float32))
    assert not layer.weight_v.grad.any() and layer.weight_g.grad.any()
    with pytest.raises(
        ValueError, match=r"WeightNormLinear\(3 -> 2\): expected input \(batch, 3\), got \(1, 4\)"
    ):
        layer(np.ones((1, 4), np.float32))
    with pytest.raises(ValueError, match=r"Linear: sizes must be positive, got \(0 -> 2\)"):
        nn.WeightNormLinear(0, 2)


def test_weight_norm_linear_matches_pytorch_parametrization(rng):
    torch = pytest.importorskip("torch")
    from minigan.testing.pytorch import to_torch

    ours = nn.Sequential(
        nn.WeightNormLinear(7, 5, rng=rng, dtype=np.float64), nn.LeakyReLU(0.2),
        nn.WeightNormLinear(5, 3, rng=rng, dtype=np.float64),
    )  # fmt: skip
    for layer in (ours[0], ours[2]):
        layer.weight_g.data *= rng.uniform(0.5, 2.0, layer.out_features)
    theirs = to_torch(ours)
    x, g = rng.standard_normal((4, 7)), rng.standard_normal((4, 3))
    y = ours(x)
    dx = ours.backward(g)
    x_t = torch.from_numpy(x).requires_grad_(True)
    y_t = theirs(x_t)
    y_t.backward(torch.from_numpy(g))
    tol = {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(y, y_t.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, x_t.grad.numpy(), **tol)
    for i in (0, 2):
        twin = theirs[i].parametrizations.weight
        np.testing.assert_allclose(ours[i].weight_g.grad, twin.original0.grad.numpy()[:, 0], **tol)
        np.testing.assert_allclose(ours[i].weight_v.grad, twin.original1.grad.numpy(), **tol)
        np.testing.assert_allclose(ours[i].bias.grad, theirs[i].bias.grad.numpy(), **tol)
