"""BatchNorm1d / BatchNorm2d: gradient checks in both modes, the staged derivation,
PyTorch parity (outputs, gradients, running statistics, state_dict), train/eval, errors."""

import numpy as np
import pytest

from minigan import nn
from minigan.gradcheck import check_module
from minigan.nn.batchnorm import batchnorm_backward_staged, row_dots

SHAPES = {nn.BatchNorm1d: (5, 3), nn.BatchNorm2d: (2, 3, 3, 2)}


def make_bn(cls, rng, affine=True):
    """A float64 BatchNorm with non-trivial gamma, beta and running statistics."""
    bn = cls(3, affine=affine, dtype=np.float64)
    if affine:
        bn.weight.data[...] = rng.uniform(0.5, 2.0, 3)
        bn.bias.data[...] = rng.standard_normal(3)
    bn.running_mean[...] = rng.standard_normal(3)
    bn.running_var[...] = rng.uniform(0.5, 2.0, 3)
    return bn


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("cls", [nn.BatchNorm1d, nn.BatchNorm2d])
def test_batchnorm_backward_matches_finite_differences(
    rng, assert_gradients_match, cls, affine, training
):
    bn = make_bn(cls, rng, affine).train(training)
    x = 2 * rng.standard_normal(SHAPES[cls]) + 1
    # BatchNorm is smooth but not linear in x (1/std), so the step balances truncation
    # error, O(h^2), against rounding, O(1e-16 / h): the default h = 1e-5 sits near the
    # optimum, giving errors around 1e-10.
    errors = check_module(bn, x)
    assert set(errors) == {"input"} | ({"weight", "bias"} if affine else set())
    assert_gradients_match(errors)


@pytest.mark.parametrize("cls", [nn.BatchNorm1d, nn.BatchNorm2d])
def test_compact_backward_equals_the_staged_derivation(rng, cls):
    bn = make_bn(cls, rng)
    x = rng.standard_normal(SHAPES[cls])
    g = rng.standard_normal(x.shape)
    bn(x)
    dx = bn.backward(g)
    gamma = bn.weight.data.reshape((1, -1) + (1,) * (x.ndim - 2))  # broadcasts against x
    dx_staged, dgamma, dbeta = batchnorm_backward_staged(g, x, gamma, bn.eps, bn.axes)
    np.testing.assert_allclose(dx, dx_staged, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(bn.weight.grad, dgamma, rtol=1e-12)
    np.testing.assert_allclose(bn.bias.grad, dbeta, rtol=1e-12)


def test_batchnorm_normalises_each_channel_and_updates_running_stats(rng):
    bn = nn.BatchNorm2d(3, dtype=np.float64)
    x = rng.standard_normal((8, 3, 4, 4)) * np.array([1, 5, 0.1])[:, None, None] + 3
    y = bn(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)  # eps keeps it just below 1
    m = 8 * 16
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    unbiased = x.var(axis=(0, 2, 3)) * m / (m - 1)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * unbiased, rtol=1e-12)
    assert int(bn.num_batches_tracked) == 1
    bn.eval()
    before = bn.running_mean.copy()
    bn(x)
    np.testing.assert_array_equal(bn.running_mean, before)  # eval mode changes nothing
    assert int(bn.num_batches_tracked) == 1


@pytest.mark.parametrize("cls", [nn.BatchNorm1d, nn.BatchNorm2d])
def test_batchnorm_matches_pytorch_over_train_and_eval_steps(rng, cls):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity skipped")
    ours = make_bn(cls, rng)
    theirs = getattr(torch.nn, cls.__name__)(3).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    tol = {"rtol": 1e-10, "atol": 1e-12}
    for mode in ["train", "train", "eval", "train"]:
        getattr(ours, mode)()
        getattr(theirs, mode)()
        x = 2 * rng.standard_normal(SHAPES[cls]) + 1
        g = rng.standard_normal(x.shape)
        ours.zero_grad()
        theirs.zero_grad()
        y = ours(x)
        dx = ours.backward(g)
        x_t = torch.from_numpy(x).requires_grad_(True)
        y_t = theirs(x_t)
        y_t.backward(torch.from_numpy(g))
        np.testing.assert_allclose(y, y_t.detach().numpy(), **tol, err_msg=mode)
        np.testing.assert_allclose(dx, x_t.grad.numpy(), **tol, err_msg=mode)
        np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), **tol)
        np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), **tol)
        state, expected = ours.state_dict(), theirs.state_dict()
        assert set(state) == set(expected)
        for name in state:
            np.testing.assert_allclose(state[name], expected[name].numpy(), **tol, err_msg=name)


def test_train_and_eval_reach_every_module_inside_a_sequential(rng):
    model = nn.Sequential(
        nn.Linear(4, 6, rng=rng),
        nn.BatchNorm1d(6),
        nn.Sequential(nn.ReLU(), nn.BatchNorm1d(6)),
    )
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    assert sorted(name for name, _ in model.named_buffers()) == sorted(
        f"{prefix}.{b}"
        for prefix in ("1", "2.1")
        for b in ("running_mean", "running_var", "num_batches_tracked")
    )


def test_batchnorm_state_dict_round_trip_and_to_dtype(rng):
    bn = make_bn(nn.BatchNorm2d, rng)
    state = bn.state_dict()
    other = nn.BatchNorm2d(3, dtype=np.float64)
    other.load_state_dict(state)
    for name, value in other.state_dict().items():
        np.testing.assert_array_equal(value, state[name])
    bad = dict(state, running_var=np.ones(4))
    with pytest.raises(ValueError, match="'running_var' has shape"):
        other.load_state_dict(bad)
    np.testing.assert_array_equal(other.running_var, state["running_var"])  # unchanged
    other.to(dtype=np.float32)
    assert other.running_mean.dtype == np.float32 and other.weight.dtype == np.float32
    assert other.num_batches_tracked.dtype == np.int64  # a counter stays an integer


def test_batch_of_one_is_an_error_in_training_and_fine_in_eval(rng):
    bn = nn.BatchNorm1d(4)
    x = rng.standard_normal((1, 4)).astype(np.float32)
    with pytest.raises(
        ValueError,
        match=r"BatchNorm1d\(4\): expected more than 1 value per channel when training, got "
        r"input \(1, 4\); use a batch of 2 or more, or call .eval\(\)",
    ):
        bn(x)
    assert bn.eval()(x).shape == (1, 4)
    nn.BatchNorm2d(4)(rng.standard_normal((1, 4, 2, 1)).astype(np.float32))  # 2 values: fine
    with pytest.raises(ValueError, match="expected more than 1 value per channel"):
        nn.BatchNorm2d(4)(np.zeros((1, 4, 1, 1), np.float32))


def test_batchnorm_shape_errors_and_bad_settings():
    with pytest.raises(
        ValueError,
        match=r"BatchNorm2d\(3\): expected input \(batch, 3, height, width\), got \(4, 3\)",
    ):
        nn.BatchNorm2d(3)(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"expected input \(batch, 3\), got \(4, 5\)"):
        nn.BatchNorm1d(3)(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match="num_features must be an integer >= 1, got 0"):
        nn.BatchNorm1d(0)
    with pytest.raises(ValueError, match=r"momentum must lie in \[0, 1\], got 2"):
        nn.BatchNorm1d(3, momentum=2)
    with pytest.raises(ValueError, match="eps must be > 0, got 0"):
        nn.BatchNorm1d(3, eps=0)


def test_row_dots_fast_path_equals_the_plain_expression(rng):
    a, b = rng.standard_normal((2, 3, 50))
    np.testing.assert_allclose(row_dots(a, b), (a * b).sum(axis=1, keepdims=True), rtol=1e-13)
    at, bt = a.T.copy().T, b.T.copy().T  # not C-contiguous, as BatchNorm1d's channel rows
    np.testing.assert_allclose(row_dots(at, bt), (a * b).sum(axis=1, keepdims=True), rtol=1e-13)
    assert row_dots(a.astype(np.float32), b.astype(np.float32)).dtype == np.float32
