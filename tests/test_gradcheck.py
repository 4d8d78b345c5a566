"""The checker itself: it must catch a wrong backward pass, not only bless right ones."""

import numpy as np
import pytest

from minigan import nn
from minigan.gradcheck import check_loss, check_module, numerical_gradient, relative_error
from minigan.losses import BCELoss


class TanhWithWrongBackward(nn.Tanh):
    """A classic slip: dL/dx = dL/dy * (1 - y) instead of (1 - y**2)."""

    def backward(self, grad_out, input_grad=True, create_graph=False):
        return grad_out * (1 - self.saved(grad_out))


def test_check_module_catches_a_wrong_derivative(rng):
    errors = check_module(TanhWithWrongBackward(), rng.standard_normal((4, 3)))
    assert errors["input"] > 0.1


def test_numerical_gradient_of_a_known_function_and_restores_input(rng):
    x = rng.standard_normal((3, 2))
    original = x.copy()
    grad = numerical_gradient(lambda: (x**3).sum(), x)
    assert relative_error(3 * original**2, grad) < 1e-9
    np.testing.assert_array_equal(x, original)


def test_numerical_gradient_can_sample_entries(rng):
    x = rng.standard_normal((20, 20))
    grad = numerical_gradient(lambda: (x**2).sum(), x, num_checks=15)
    assert np.count_nonzero(~np.isnan(grad)) == 15
    assert relative_error(2 * x, grad) < 1e-9


def test_relative_error_is_zero_for_two_zero_gradients():
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0


def test_gradient_checks_refuse_float32(rng):
    with pytest.raises(TypeError, match=r"gradient checks need float64 \(the input is float32\)"):
        check_module(nn.Tanh(), rng.standard_normal((2, 2)).astype(np.float32))
    with pytest.raises(TypeError, match=r"parameter 'weight' is float32"):
        check_module(nn.Linear(2, 2), rng.standard_normal((2, 2)))


def test_frozen_parameters_are_not_checked(rng):
    layer = nn.Linear(2, 2, rng=rng, dtype=np.float64).requires_grad_(False)
    assert set(check_module(layer, rng.standard_normal((3, 2)))) == {"input"}


class LinearThatAssignsGrads(nn.Linear):
    """The slip of writing ``p.grad[...] = g`` for ``p.grad += g``: right after a
    zero_grad it gives the right numbers, so finite differences alone never see it."""

    def backward(self, grad_out, input_grad=True, create_graph=False):
        self.weight.grad[...] = grad_out.T @ self.saved(grad_out)
        self.bias.grad[...] = grad_out.sum(axis=0)
        return grad_out @ self.weight.data


def test_check_module_catches_a_backward_that_assigns_instead_of_adding(rng):
    layer = LinearThatAssignsGrads(3, 2, rng=rng, dtype=np.float64)
    with pytest.raises(
        ValueError,
        match=r"LinearThatAssignsGrads.backward replaced the gradient of parameter 'weight' "
        r"instead of adding to it: the contract is param.grad \+= dL/dparam",
    ):
        check_module(layer, rng.standard_normal((4, 3)))


def test_check_module_leaves_the_plain_gradient_in_grad(rng):
    layer = nn.Linear(3, 2, rng=rng, dtype=np.float64)
    x = rng.standard_normal((4, 3))
    check_module(layer, x)
    checked = layer.weight.grad.copy()
    layer.zero_grad()
    y = layer.forward(x)
    layer.backward(np.random.default_rng(0).standard_normal(y.shape))  # check_module's r
    np.testing.assert_array_equal(checked, layer.weight.grad)


class ScaleInPlace(nn.Module):
    """y = 2 x, computed by doubling the caller's array: the input changes under it."""

    def forward(self, x):
        x *= 2
        return x

    def backward(self, grad_out, input_grad=True, create_graph=False):
        return 2 * grad_out


def test_check_module_catches_a_layer_that_changes_its_input_in_place(rng):
    with pytest.raises(
        ValueError,
        match=r"ScaleInPlace changed its input x in place during forward or backward: .* "
        r"an input must stay unchanged until backward",
    ):
        check_module(ScaleInPlace(), rng.standard_normal((4, 3)))


def test_bce_near_0_and_1_needs_a_smaller_step(rng, assert_gradients_match):
    """The step h trades two errors. Truncation: the central difference is off by
    h**2 f'''/6; for L = -log p that is, relative to f' = -1/p, h**2 / (3 p**2), which
    grows fast as p nears 0 (or 1). Rounding: L is known to ~1e-16 |L|, divided by 2h.
    At p ~ 1e-3 the default h = 1e-5 leaves ~1e-5 of truncation error (a false alarm);
    h = 1e-7 gives ~1e-11 of truncation and ~1e-9 of rounding."""
    near_edges = np.concatenate(
        [rng.uniform(1e-3, 3e-3, (4, 1)), rng.uniform(1 - 3e-3, 1 - 1e-3, (4, 1))]
    )
    target = rng.uniform(size=(8, 1))
    assert check_loss(BCELoss(), near_edges, target) > 1e-6  # h = 1e-5: the false alarm
    assert_gradients_match(check_loss(BCELoss(), near_edges, target, h=1e-7))
