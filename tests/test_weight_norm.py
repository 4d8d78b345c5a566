"""WeightNormLinear: finite differences, the geometry of g and v, PyTorch parity."""

import numpy as np
import pytest

from minigan import nn
from minigan.gradcheck import check_module

TOL = {"rtol": 1e-10, "atol": 1e-12}  # float64 parity: the two differ by rounding only


def assert_forward_and_input_grad_match(torch, ours, theirs, x, g):
    """Run ``ours`` and its PyTorch twin forward on x and backward from dL/dy = g (which
    leaves the parameter gradients in both) and compare y and dL/dx."""
    y = ours(x)
    dx = ours.backward(g)
    x_t = torch.from_numpy(x).requires_grad_(True)
    y_t = theirs(x_t)
    y_t.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y, y_t.detach().numpy(), **TOL)
    np.testing.assert_allclose(dx, x_t.grad.numpy(), **TOL)


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
    assert_forward_and_input_grad_match(torch, ours, theirs, x, g)
    for i in (0, 2):
        twin = theirs[i].parametrizations.weight
        np.testing.assert_allclose(ours[i].weight_g.grad, twin.original0.grad.numpy()[:, 0], **TOL)
        np.testing.assert_allclose(ours[i].weight_v.grad, twin.original1.grad.numpy(), **TOL)
        np.testing.assert_allclose(ours[i].bias.grad, theirs[i].bias.grad.numpy(), **TOL)


def test_data_dependent_init_standardises_every_layer_on_the_batch(rng):
    from minigan.nn.weight_norm import data_dependent_init

    net = nn.Sequential(
        nn.WeightNormLinear(6, 8, rng=rng, dtype=np.float64), nn.ReLU(),
        nn.WeightNormLinear(8, 3, rng=rng, dtype=np.float64),
    )  # fmt: skip
    directions = [layer.weight_v.data.copy() for layer in (net[0], net[2])]
    x = 3.0 + 5.0 * rng.standard_normal((50, 6))  # far from mean 0, std 1
    out = data_dependent_init(net, x)
    np.testing.assert_allclose(out, net(x), rtol=1e-12, atol=1e-12)  # what forward gives now
    for layer, hidden in ((net[0], net[0](x)), (net[2], out)):
        np.testing.assert_allclose(hidden.mean(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(hidden.std(axis=0), 1, rtol=1e-12)
    for layer, v in zip((net[0], net[2]), directions, strict=True):
        np.testing.assert_array_equal(layer.weight_v.data, v)  # only g and b change


def test_init_from_data_writes_into_the_parameters_arrays_and_needs_two_rows(rng):
    layer = nn.WeightNormLinear(4, 2, rng=rng)
    g, b = layer.weight_g.data, layer.bias.data  # an optimizer may view these: kept in place
    layer.init_from_data(rng.standard_normal((5, 4)).astype(np.float32))
    assert layer.weight_g.data is g and layer.bias.data is b and g.dtype == np.float32
    constant = layer.init_from_data(np.ones((3, 4), np.float32))  # zero variance: floored
    assert np.isfinite(constant).all() and np.isfinite(layer.weight_g.data).all()
    with pytest.raises(
        ValueError,
        match=r"WeightNormLinear\(4 -> 2\): init_from_data needs a batch of 2 or more to "
        r"measure a variance, got 1",
    ):
        layer.init_from_data(np.ones((1, 4), np.float32))


def test_a_fixed_scale_is_a_buffer_and_the_rest_matches_finite_differences(
    rng, assert_gradients_match
):
    layer = nn.WeightNormLinear(5, 3, rng=rng, dtype=np.float64, train_scale=False)
    layer.weight_g *= rng.uniform(0.5, 2.0, 3)  # g != ||v||: a general point
    assert [name for name, _ in layer.named_parameters()] == ["weight_v", "bias"]
    assert set(layer.state_dict()) == {"weight_g", "weight_v", "bias"}  # saved, same name
    assert repr(layer) == "WeightNormLinear(5 -> 3, train_scale=False)"
    layer.requires_grad_(True)  # switches parameters only: g stays fixed
    errors = check_module(layer, rng.standard_normal((4, 5)))
    assert set(errors) == {"input", "weight_v", "bias"}
    assert_gradients_match(errors)


def test_a_fixed_scale_matches_pytorch_with_g_frozen(rng):
    torch = pytest.importorskip("torch")
    from minigan.testing.pytorch import to_torch

    ours = nn.WeightNormLinear(6, 4, rng=rng, dtype=np.float64, train_scale=False)
    ours.init_from_data(rng.standard_normal((10, 6)))
    theirs = to_torch(ours)
    theirs.parametrizations.weight.original0.requires_grad_(False)
    x, g = rng.standard_normal((3, 6)), rng.standard_normal((3, 4))
    assert_forward_and_input_grad_match(torch, ours, theirs, x, g)
    twin = theirs.parametrizations.weight
    np.testing.assert_allclose(ours.weight_v.grad, twin.original1.grad.numpy(), **TOL)
    np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), **TOL)


def test_v_std_draws_the_directions_from_a_normal_and_is_checked():
    layer = nn.WeightNormLinear(400, 50, rng=np.random.default_rng(0), v_std=0.1)
    v = layer.weight_v.data
    assert v.dtype == np.float32 and abs(v.std() - 0.1) < 0.002 and abs(v.mean()) < 0.002
    np.testing.assert_allclose(layer.weight_g.data, np.linalg.norm(v, axis=1), rtol=1e-6)
    with pytest.raises(ValueError, match=r"WeightNormLinear: v_std must be a number > 0, got 0"):
        nn.WeightNormLinear(3, 2, v_std=0)
