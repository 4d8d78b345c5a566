"""Layers: gradient checks, shapes, edge cases, bad input, parameter bookkeeping."""

import numpy as np
import pytest

from minigan import nn
from minigan.backend import to_host
from minigan.gradcheck import check_module
from minigan.losses import BCELoss, BCEWithLogitsLoss

BATCH_SIZES = [1, 3, 8]
ACTIVATIONS = [nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid]


def away_from_zero(rng, shape):
    """Inputs with |x| in [0.1, 3]: finite differences must not straddle a ReLU kink."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 3.0, size=shape)


def linear64(rng, n_in, n_out):
    return nn.Linear(n_in, n_out, rng=rng, dtype=np.float64)


def every_layer_mlp64(rng):
    """A float64 MLP (6 -> 1) that uses every layer type once."""
    return nn.Sequential(
        linear64(rng, 6, 8), nn.LeakyReLU(0.2), linear64(rng, 8, 8), nn.ReLU(),
        linear64(rng, 8, 4), nn.Tanh(), linear64(rng, 4, 1), nn.Sigmoid(),
    )  # fmt: skip


# --- gradient checks ------------------------------------------------------------


@pytest.mark.parametrize("batch", BATCH_SIZES)
@pytest.mark.parametrize("n_in, n_out", [(1, 1), (5, 3), (7, 12)])
def test_linear_backward_matches_finite_differences(
    rng, assert_gradients_match, batch, n_in, n_out
):
    layer = linear64(rng, n_in, n_out)
    errors = check_module(layer, rng.standard_normal((batch, n_in)))
    assert set(errors) == {"input", "weight", "bias"}
    assert_gradients_match(errors)


@pytest.mark.parametrize("batch", BATCH_SIZES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_backward_matches_finite_differences(
    rng, assert_gradients_match, activation, batch
):
    assert_gradients_match(check_module(activation(), away_from_zero(rng, (batch, 6))))


def test_activations_accept_any_shape(rng, assert_gradients_match):
    for activation in ACTIVATIONS:
        assert_gradients_match(check_module(activation(), away_from_zero(rng, (2, 3, 4))))


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 1.5])
def test_leaky_relu_gradient_for_any_slope(rng, assert_gradients_match, slope):
    assert_gradients_match(check_module(nn.LeakyReLU(slope), away_from_zero(rng, (4, 5))))


@pytest.mark.parametrize("batch", BATCH_SIZES)
def test_sequential_mlp_backward_matches_finite_differences(rng, assert_gradients_match, batch):
    model = every_layer_mlp64(rng)
    x = rng.standard_normal((batch, 6))
    errors = check_module(model, x, loss=BCELoss(), target=rng.uniform(size=(batch, 1)))
    assert set(errors) == {"input"} | {f"{i}.{p}" for i in (0, 2, 4, 6) for p in ("weight", "bias")}
    assert_gradients_match(errors)


class GeneratorThroughDiscriminator(nn.Module):
    """The generator's training objective, L(D(G(z))), with D frozen.

    This is the heart of GAN backprop: dL/dG's parameters must pass backwards
    through D's layers, while D's own parameters collect nothing.
    """

    def __init__(self, generator, discriminator):
        self.generator = generator
        self.discriminator = discriminator.requires_grad_(False)

    def named_parameters(self):
        return self.generator.named_parameters()

    def forward(self, z):
        return self.discriminator.forward(self.generator.forward(z))

    def backward(self, grad_logits, input_grad=True, create_graph=False):
        grad_images = self.discriminator.backward(grad_logits)
        return self.generator.backward(grad_images)


@pytest.mark.parametrize("batch", [1, 5])
def test_generator_gradient_through_discriminator_matches_finite_differences(
    rng, assert_gradients_match, batch
):
    generator = nn.Sequential(
        linear64(rng, 3, 8), nn.LeakyReLU(0.2), linear64(rng, 8, 6), nn.Tanh()
    )
    discriminator = nn.Sequential(linear64(rng, 6, 8), nn.LeakyReLU(0.2), linear64(rng, 8, 1))
    composite = GeneratorThroughDiscriminator(generator, discriminator)
    z = rng.standard_normal((batch, 3))
    errors = check_module(composite, z, loss=BCEWithLogitsLoss(), target=1.0)
    assert_gradients_match(errors)
    for p in discriminator.parameters():  # frozen: D learned nothing from G's step
        assert not p.grad.any()


# --- the contract: accumulation, zero_grad, shapes, dtypes ------------------------


def test_backward_accumulates_until_zero_grad(rng):
    layer = nn.Linear(4, 3, rng=rng)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    g = rng.standard_normal((5, 3)).astype(np.float32)
    layer(x)
    layer.backward(g)
    once = layer.weight.grad.copy()
    layer.backward(g)
    np.testing.assert_allclose(layer.weight.grad, 2 * once, rtol=1e-6)
    layer.zero_grad()
    assert not layer.weight.grad.any() and not layer.bias.grad.any()


def test_linear_shapes_and_init_range(rng):
    layer = nn.Linear(784, 256, rng=rng)
    assert layer.weight.shape == (256, 784) and layer.bias.shape == (256,)
    bound = 1 / np.sqrt(784)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    # U(-k, k) has standard deviation k / sqrt(3)
    assert abs(layer.weight.data.std() - bound / np.sqrt(3)) < 0.01 * bound
    y = layer(np.zeros((10, 784), np.float32))
    assert y.shape == (10, 256)
    assert layer.backward(np.ones_like(y)).shape == (10, 784)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layers_compute_in_the_dtype_of_their_inputs(rng, dtype):
    model = nn.Sequential(
        nn.Linear(4, 5, rng=rng, dtype=dtype),
        nn.ReLU(),
        nn.Linear(5, 5, rng=rng, dtype=dtype),
        nn.LeakyReLU(0.2),
        nn.Tanh(),
        nn.Sigmoid(),
    )
    y = model(rng.standard_normal((3, 4)).astype(dtype))
    dx = model.backward(np.ones_like(y))
    assert y.dtype == dtype and dx.dtype == dtype
    assert all(p.grad.dtype == dtype for p in model.parameters())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", [None, 0.2, 0.01])  # None: ReLU
def test_relu_formulas_round_as_their_earlier_in_place_forms(rng, dtype, slope):
    """The mask product and the slope a + (1 - a) [x > 0] give, bit for bit (signed zeros
    included), what the in-place passes before them gave (greater into a float array,
    then *= (1 - a), += a, multiply)."""
    x = rng.standard_normal((6, 7)).astype(dtype)
    x[0, :3] = [0.0, -0.0, np.inf]
    g = rng.standard_normal(x.shape).astype(dtype)
    layer = nn.ReLU() if slope is None else nn.LeakyReLU(slope)
    f_prime = np.empty_like(x)
    np.greater(x, 0, out=f_prime)
    if slope is not None:
        f_prime *= 1 - slope
        f_prime += slope
    y, dx = layer.forward(x), layer.backward(g)
    assert y.dtype == dx.dtype == dtype
    assert y.tobytes() == np.multiply(x, f_prime).tobytes()
    assert dx.tobytes() == np.multiply(g, f_prime).tobytes()


def test_relu_and_leaky_relu_at_exactly_zero_follow_pytorch():
    x = np.array([[-1.0, 0.0, 1.0]])
    relu, leaky = nn.ReLU(), nn.LeakyReLU(0.2)
    np.testing.assert_array_equal(relu(x), [[0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(relu.backward(np.ones_like(x)), [[0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(leaky(x), [[-0.2, 0.0, 1.0]])
    np.testing.assert_array_equal(leaky.backward(np.ones_like(x)), [[0.2, 0.2, 1.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_saturate_without_nan_or_overflow(dtype):
    x = np.array([-1e3, -40.0, 0.0, 40.0, 1e3], dtype=dtype)
    for layer, expected in [
        (nn.Sigmoid(), [0, 0, 0.5, 1, 1]),
        (nn.Tanh(), [-1, -1, 0, 1, 1]),
    ]:
        y = layer(x)  # RuntimeWarnings are errors in this suite: overflow would fail here
        dx = layer.backward(np.ones_like(x))
        assert np.isfinite(y).all() and np.isfinite(dx).all()
        np.testing.assert_allclose(y, expected, atol=1e-12)
    assert nn.sigmoid(np.array(-40.0)) == pytest.approx(4.248354255291589e-18, rel=1e-12)


# --- bad input gets a clear error ---------------------------------------------------


def test_linear_rejects_wrong_shape_naming_layer_and_shapes(rng):
    layer = nn.Linear(784, 256, rng=rng)
    with pytest.raises(
        ValueError,
        match=r"Linear\(784 -> 256\): expected input \(batch, 784\), got \(100, 28, 28\)",
    ):
        layer(np.zeros((100, 28, 28), np.float32))


def test_linear_rejects_other_dtype_instead_of_casting(rng):
    layer = nn.Linear(3, 2, rng=rng)
    with pytest.raises(
        TypeError,
        match=r"Linear\(3 -> 2\): input has dtype float64 but the layer computes in float32",
    ):
        layer(np.zeros((1, 3)))


@pytest.mark.parametrize("layer", [nn.Linear(2, 2), nn.ReLU(), nn.Tanh()], ids=repr)
def test_layers_reject_integer_and_non_array_input(layer):
    with pytest.raises(TypeError, match=r"input must be a floating-point array, got dtype int64"):
        layer(np.zeros((1, 2), dtype=np.int64))
    with pytest.raises(TypeError, match=r"input must be a NumPy or CuPy array, got list"):
        layer([[0.0, 1.0]])


@pytest.mark.parametrize(
    "layer",
    [nn.Linear(2, 2), nn.ReLU(), nn.LeakyReLU(), nn.Tanh(), nn.Sigmoid()],
    ids=repr,
)
def test_backward_before_forward_says_so(layer):
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(np.zeros((1, 2), np.float32))


def test_backward_rejects_gradient_of_wrong_shape(rng):
    layer = nn.Linear(3, 2, rng=rng)
    layer(np.zeros((4, 3), np.float32))
    with pytest.raises(
        ValueError, match=r"Linear\(3 -> 2\): expected grad_out \(4, 2\), got \(4, 3\)"
    ):
        layer.backward(np.zeros((4, 3), np.float32))
    tanh = nn.Tanh()
    tanh(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"Tanh\(\): expected grad_out \(4, 3\), got \(3, 4\)"):
        tanh.backward(np.zeros((3, 4), np.float32))


def test_linear_rejects_bad_sizes():
    with pytest.raises(ValueError, match=r"sizes must be positive, got \(0 -> 3\)"):
        nn.Linear(0, 3)


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match=r"argument 1 is a ufunc, not a Module"):
        nn.Sequential(nn.ReLU(), np.tanh)


# --- parameters, state_dict, to ---------------------------------------------------------


def test_state_dict_uses_pytorch_names_and_round_trips(rng):
    def make(seed):
        r = np.random.default_rng(seed)
        return nn.Sequential(nn.Linear(4, 3, rng=r), nn.ReLU(), nn.Linear(3, 1, rng=r))

    a, b = make(0), make(1)
    state = a.state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    state["0.weight"][0, 0] = 123.0  # a copy: changing it leaves the model alone
    assert a[0].weight.data[0, 0] != 123.0
    b.load_state_dict(a.state_dict())
    x = rng.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_array_equal(a(x), b(x))


def test_load_state_dict_reports_mismatches_and_changes_nothing(rng):
    model = nn.Sequential(nn.Linear(4, 3, rng=rng), nn.ReLU(), nn.Linear(3, 1, rng=rng))
    before = model.state_dict()
    bad_shape = dict(before, **{"2.weight": np.zeros((1, 5), np.float32), "0.bias": np.ones(3)})
    with pytest.raises(
        ValueError, match=r"'2.weight' has shape \(1, 5\), this model expects \(1, 3\)"
    ):
        model.load_state_dict(bad_shape)
    renamed = {k.replace("2.", "4."): v for k, v in before.items()}
    with pytest.raises(
        KeyError,
        match=r"missing: \['2.bias', '2.weight'\]; unexpected: \['4.bias', '4.weight'\]",
    ):
        model.load_state_dict(renamed)
    # A wrong type anywhere (here after a good entry) is refused before anything changes.
    for bad_value in ("zeros", None, np.array(["a", "b", "c"]), [0.0, 0.0, 0.0]):
        wrong_type = dict(before, **{"0.weight": np.zeros((3, 4), np.float32), "2.bias": bad_value})
        with pytest.raises(TypeError, match=r"'2.bias' must be a numeric array, got"):
            model.load_state_dict(wrong_type)
    with pytest.raises(TypeError, match=r"expected a dict of arrays by name, got list"):
        model.load_state_dict([])
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_to_dtype_converts_parameters_and_gradients(rng):
    model = nn.Sequential(nn.Linear(2, 2, rng=rng))
    model.to(dtype="float64")
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in model.parameters())
    assert model(np.ones((1, 2))).dtype == np.float64


def test_requires_grad_false_skips_parameter_gradients_but_not_input_gradient(rng):
    layer = nn.Linear(3, 2, rng=rng).requires_grad_(False)
    layer(np.ones((1, 3), np.float32))
    dx = layer.backward(np.ones((1, 2), np.float32))
    np.testing.assert_allclose(dx, layer.weight.data.sum(axis=0, keepdims=True))
    assert not layer.weight.grad.any() and not layer.bias.grad.any()


@pytest.mark.gpu
def test_layers_on_cupy_match_numpy_in_float64(rng):
    from minigan.backend import get_backend

    cp_backend = get_backend("cupy")
    model = every_layer_mlp64(rng)
    twin = every_layer_mlp64(rng)
    twin.load_state_dict(model.state_dict())
    twin.to("cupy")
    x = rng.standard_normal((5, 6))
    g = rng.standard_normal((5, 1))
    y, y_gpu = model(x), twin(cp_backend.asarray(x))
    dx, dx_gpu = model.backward(g), twin.backward(cp_backend.asarray(g))
    np.testing.assert_allclose(to_host(y_gpu), y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_host(dx_gpu), dx, rtol=1e-12, atol=1e-12)
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        np.testing.assert_allclose(to_host(q.grad), p.grad, rtol=1e-12, atol=1e-12, err_msg=name)
    with pytest.raises(
        TypeError, match=r"input is a numpy array but the layer works on cupy arrays"
    ):
        twin(x)


def test_backward_without_input_gradient_still_fills_parameter_gradients(rng):
    def make():
        r = np.random.default_rng(5)
        return nn.Sequential(nn.Linear(3, 4, rng=r), nn.ReLU(), nn.Linear(4, 2, rng=r))

    full, lean = make(), make()
    x = rng.standard_normal((6, 3)).astype(np.float32)
    g = rng.standard_normal((6, 2)).astype(np.float32)
    full(x)
    lean(x)
    assert full.backward(g) is not None
    assert lean.backward(g, input_grad=False) is None
    for p, q in zip(full.parameters(), lean.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)
    for layer in ACTIVATIONS:  # one multiply is their whole backward: the hint changes nothing
        act = layer()
        act(x)
        np.testing.assert_array_equal(act.backward(x, input_grad=False), act.backward(x))


@pytest.mark.parametrize(
    "layer", [nn.Linear(2, 2), nn.ReLU(), nn.LeakyReLU(), nn.Tanh(), nn.Sigmoid()], ids=repr
)
def test_backward_rejects_a_gradient_of_another_dtype(layer):
    layer(np.zeros((1, 2), np.float32))
    with pytest.raises(
        TypeError, match=r"grad_out has dtype float64 but the layer computes in float32"
    ):
        layer.backward(np.zeros((1, 2)))
