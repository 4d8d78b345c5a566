"""The checker itself: it must catch a wrong backward pass, not only bless right ones."""

import numpy as np
import pytest

from minigan import nn
from minigan.gradcheck import check_module, numerical_gradient, relative_error


class TanhWithWrongBackward(nn.Tanh):
    """A classic slip: dL/dx = dL/dy * (1 - y) instead of (1 - y**2)."""

    def backward(self, grad_out, input_grad=True):
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
