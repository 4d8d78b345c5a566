"""Double backward: every layer's second-order pass, alone and chained, against finite
differences of the quantity it differentiates, S = sum(c * dx) with dx = backward(dy).

Step h = 1e-5 everywhere: S is smooth (Tanh, Sigmoid) or piecewise polynomial in every
input it is nudged along; the central difference's error O(h^2 S''') ~ 1e-10 and its
rounding ~ 1e-16 |S| / h ~ 1e-11 both sit far below the 1e-7 tolerance. For
(Leaky)ReLU, inputs keep |x| >= 0.1 so no nudge crosses the kink at 0, where S jumps.
"""

import itertools
import re

import numpy as np
import pytest

from minigan import nn
from minigan.gradcheck import check_double_backward

ACTIVATIONS = [nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid]


def away_from_zero(rng, shape):
    """|x| in [0.1, 3]: a nudge of 1e-5 never crosses a (Leaky)ReLU kink."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 3.0, size=shape)


def mlp64(rng, activation, sizes=(5, 7, 6, 1)):
    layers = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out, rng=rng, dtype=np.float64), activation()]
    return nn.Sequential(*layers[:-1])  # a critic: no activation after the last Linear


@pytest.mark.parametrize("batch", [1, 4])
def test_linear_double_backward_matches_finite_differences(rng, assert_gradients_match, batch):
    layer = nn.Linear(5, 3, rng=rng, dtype=np.float64)
    errors = check_double_backward(layer, rng.standard_normal((batch, 5)))
    assert set(errors) == {"grad_out", "input", "weight", "bias"}
    assert_gradients_match(errors)


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_double_backward_matches_finite_differences(
    rng, assert_gradients_match, activation, batch
):
    assert_gradients_match(check_double_backward(activation(), away_from_zero(rng, (batch, 6))))


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("activation", [nn.LeakyReLU, nn.Tanh, nn.Sigmoid])
def test_sequential_mlp_double_backward_matches_finite_differences(
    rng, assert_gradients_match, activation, batch
):
    """Linear -> f -> Linear -> f -> Linear: for Tanh and Sigmoid the f'' terms must go
    down through the ordinary backward pass to reach the first layer's parameters."""
    model = mlp64(rng, activation)
    errors = check_double_backward(model, rng.standard_normal((batch, 5)))
    assert set(errors) == {"grad_out", "input"} | {
        f"{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")
    }
    assert_gradients_match(errors)


def test_sequential_starting_and_ending_with_curved_layers(rng, assert_gradients_match):
    """gx of the very first layer is the Sequential's own dL/dx; the output f'' too."""
    model = nn.Sequential(
        nn.Tanh(), nn.Linear(4, 6, rng=rng, dtype=np.float64), nn.Sigmoid(),
        nn.Linear(6, 3, rng=rng, dtype=np.float64), nn.Tanh(),
    )  # fmt: skip
    assert_gradients_match(check_double_backward(model, rng.standard_normal((3, 4))))


def test_the_f_second_derivatives_are_the_documented_formulas():
    x = np.linspace(-3, 3, 13).reshape(1, -1)
    h = 1e-4  # f'' by central differences of f'; error O(h^2) ~ 1e-8 against O(1) values
    for layer, f_prime in [
        (nn.Tanh(), lambda x: 1 - np.tanh(x) ** 2),
        (nn.Sigmoid(), lambda x: nn.sigmoid(x) * (1 - nn.sigmoid(x))),
    ]:
        layer.forward(x)
        dy = np.ones_like(x)
        layer.backward(dy, create_graph=True)
        _, gx = layer.double_backward(np.ones_like(x))  # gg = dy = 1: gx = f''(x)
        numeric = (f_prime(x + h) - f_prime(x - h)) / (2 * h)
        np.testing.assert_allclose(gx, numeric, atol=1e-7)


def test_piecewise_linear_layers_return_no_input_gradient_and_skip_the_second_pass(rng):
    model = mlp64(rng, nn.LeakyReLU)
    x = rng.standard_normal((3, 5))
    model.forward(x)
    model.backward(np.ones((3, 1)), create_graph=True)
    grad_dy, grad_x = model.double_backward(rng.standard_normal((3, 5)))
    assert grad_x is None and grad_dy.shape == (3, 1)


def test_input_grad_false_still_reaches_every_parameter(rng):
    """The critic step's call: nobody needs dL/dx, the first layer's f'' terms still count."""
    grads = []
    for input_grad in (True, False):
        model = nn.Sequential(nn.Tanh(), nn.Linear(4, 2, rng=np.random.default_rng(0)))
        model.to(dtype="float64")
        x = np.random.default_rng(1).standard_normal((3, 4))
        model.forward(x)
        model.backward(np.ones((3, 2)), create_graph=True)
        model.zero_grad()
        _, grad_x = model.double_backward(np.ones((3, 4)), input_grad=input_grad)
        assert (grad_x is None) == (not input_grad)
        grads.append([p.grad.copy() for p in model.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)


def test_ordinary_backward_keeps_nothing_extra(rng):
    """The training step's backward pays nothing for double backward: no dy is kept."""
    model = mlp64(rng, nn.Tanh)
    model.forward(rng.standard_normal((2, 5)))
    model.backward(np.ones((2, 1)))
    assert all(layer._saved_grad_out is None for layer in model)


def test_double_backward_without_create_graph_says_what_to_do(rng):
    layer = nn.Linear(3, 2, rng=rng, dtype=np.float64)
    layer.forward(rng.standard_normal((4, 3)))
    layer.backward(np.ones((4, 2)))
    message = (
        r"Linear\(3 -> 2\): double_backward\(\) needs the backward pass it differentiates "
        r"to keep its grad_out: run forward, then backward\(grad_out, create_graph=True\)"
    )
    with pytest.raises(RuntimeError, match=message):
        layer.double_backward(np.ones((4, 3)))
    layer.backward(np.ones((4, 2)), create_graph=True)
    layer.forward(rng.standard_normal((4, 3)))  # a new forward makes the kept dy stale
    with pytest.raises(RuntimeError, match="needs the backward pass it differentiates"):
        layer.double_backward(np.ones((4, 3)))


def test_double_backward_checks_the_shape_of_its_argument(rng):
    layer = nn.Tanh()
    layer.forward(rng.standard_normal((4, 3)))
    layer.backward(np.ones((4, 3)), create_graph=True)
    with pytest.raises(ValueError, match=r"Tanh\(\): expected grad_grad_in \(4, 3\), got \(4, 2\)"):
        layer.double_backward(np.ones((4, 2)))
    linear = nn.Linear(3, 2, rng=rng, dtype=np.float64)
    linear.forward(rng.standard_normal((4, 3)))
    linear.backward(np.ones((4, 2)), create_graph=True)
    with pytest.raises(
        ValueError, match=r"Linear\(3 -> 2\): expected grad_grad_in \(4, 3\), got \(4, 2\)"
    ):
        linear.double_backward(np.ones((4, 2)))


def test_float32_double_backward_stays_float32(rng):
    model = mlp64(rng, nn.Sigmoid).to(dtype="float32")
    model.forward(rng.standard_normal((3, 5)).astype(np.float32))
    model.backward(np.ones((3, 1), np.float32), create_graph=True)
    grad_dy, grad_x = model.double_backward(np.ones((3, 5), np.float32))
    assert grad_dy.dtype == grad_x.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


# --- one backward signature; layers without a double backward refuse create_graph --------

# Every layer and the forward input it takes (float64, small), for layers that have no
# double backward.
FIRST_ORDER_LAYERS = {
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(2, 3, 4, 2, 1, dtype=np.float64), (2, 2, 3, 3)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(3, dtype=np.float64), (4, 3)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(2, dtype=np.float64), (2, 2, 3, 3)),
    "Dropout": (lambda: nn.Dropout(0.5, rng=np.random.default_rng(0)), (4, 3)),
    "GaussianNoise": (lambda: nn.GaussianNoise(0.1, rng=np.random.default_rng(0)), (4, 3)),
    "DiffAugment": (lambda: nn.DiffAugment(rng=np.random.default_rng(0)), (2, 1, 8, 8)),
    "MinibatchStdDev": (lambda: nn.MinibatchStdDev(2), (4, 3)),
    "WeightNormLinear": (lambda: nn.WeightNormLinear(3, 2, dtype=np.float64), (4, 3)),
}


@pytest.mark.parametrize("name", sorted(FIRST_ORDER_LAYERS))
def test_a_layer_without_double_backward_refuses_create_graph_by_name(name, rng):
    make, shape = FIRST_ORDER_LAYERS[name]
    layer = make()
    y = layer.forward(rng.standard_normal(shape))
    dx = layer.backward(np.ones_like(y), input_grad=True, create_graph=False)  # the one shape
    assert dx.shape == shape
    message = (
        rf"^{re.escape(repr(layer))}: backward\(create_graph=True\) is not supported: "
        r"it has no double_backward$"
    )
    with pytest.raises(NotImplementedError, match=message):
        layer.backward(np.ones_like(y), create_graph=True)


def test_embedding_and_concat_take_the_one_backward_shape_too(rng):
    embed, concat = nn.Embedding(3, 2, dtype=np.float64), nn.Concat()
    e = embed.forward(np.array([0, 2]))
    assert embed.backward(np.ones_like(e), input_grad=False, create_graph=False) is None
    with pytest.raises(NotImplementedError, match=r"Embedding\(3, 2\): backward\(create_graph"):
        embed.backward(np.ones_like(e), create_graph=True)
    y = concat.forward([np.ones((2, 1)), e])
    assert [g.shape for g in concat.backward(np.ones_like(y), True, False)] == [(2, 1), (2, 2)]
    with pytest.raises(NotImplementedError, match=r"Concat\(\): backward\(create_graph=True\)"):
        concat.backward(np.ones_like(y), create_graph=True)


def test_sequential_hands_create_graph_to_every_layer(rng):
    """No compatibility branch: the flag reaches each layer, set or not, and a layer with
    no double backward stops a create_graph pass with its own name."""
    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            self.save_for_backward(x)
            return x

        def backward(self, grad_out, input_grad=True, create_graph=False):
            seen.append(create_graph)
            return grad_out

    model = nn.Sequential(Spy(), nn.Linear(3, 2, rng=rng, dtype=np.float64), Spy())
    model.forward(rng.standard_normal((4, 3)))
    model.backward(np.ones((4, 2)))
    model.backward(np.ones((4, 2)), create_graph=True)
    assert seen == [False, False, True, True]
    conv = nn.Sequential(nn.Conv2d(1, 1, 3, dtype=np.float64), nn.BatchNorm2d(1, dtype=np.float64))
    conv.forward(rng.standard_normal((2, 1, 4, 4)))
    with pytest.raises(NotImplementedError, match=r"^BatchNorm2d\(1\): "):
        conv.backward(np.ones((2, 1, 2, 2)), create_graph=True)
