"""Conv2d and ConvTranspose2d: gradient checks, PyTorch parity, the conv/transpose
identities the code relies on, initialisation, shapes and error messages; Flatten/Unflatten
and Pack."""

import numpy as np
import pytest

from minigan import nn
from minigan.gradcheck import check_module
from minigan.nn.conv import conv2d, conv2d_input_grad, from_rows, to_rows

# (transposed, in_ch, out_ch, kernel, stride, padding, output_padding, batch, height, width, bias)
# A small grid that still covers every case the issue lists: stride 1 and 2, padding 0 and 1,
# kernels 3/4/5, odd and even sizes, output_padding, batch 1 and more, 1 and 3 channels, bias
# on and off.
CASES = [
    (False, 1, 2, 3, 1, 0, 0, 1, 5, 5, True),
    (False, 3, 2, 4, 2, 1, 0, 2, 8, 7, False),
    (False, 3, 1, 5, 2, 1, 0, 3, 7, 6, True),
    (False, 1, 3, 3, 2, 1, 0, 1, 6, 5, False),
    (False, 3, 2, 4, 1, 1, 0, 2, 5, 6, True),
    (True, 2, 1, 3, 1, 0, 0, 1, 3, 4, True),
    (True, 3, 2, 4, 2, 1, 0, 2, 3, 4, False),
    (True, 1, 3, 5, 2, 1, 1, 2, 3, 3, True),
    (True, 3, 1, 3, 2, 0, 1, 1, 4, 3, False),
    (True, 1, 3, 4, 1, 1, 0, 3, 4, 5, True),
    # im2col / col2im keep only the entries that read real pixels (conv.kept): padding
    # as wide as the kernel, outputs that see padding alone, stride 3.
    (False, 2, 3, 3, 2, 2, 0, 2, 3, 4, True),
    (False, 1, 2, 3, 1, 3, 0, 1, 2, 2, True),
    (True, 2, 2, 5, 3, 2, 1, 2, 3, 3, True),
]
IDS = [
    f"{'ConvT' if c[0] else 'Conv'}-c{c[1]}to{c[2]}-k{c[3]}s{c[4]}p{c[5]}op{c[6]}-"
    f"n{c[7]}-{c[8]}x{c[9]}-{'bias' if c[10] else 'nobias'}"
    for c in CASES
]


def make_layer(case, rng, dtype=np.float64):
    transposed, cin, cout, k, s, p, op, *_, bias = case
    if transposed:
        return nn.ConvTranspose2d(cin, cout, k, s, p, op, bias, rng=rng, dtype=dtype)
    return nn.Conv2d(cin, cout, k, s, p, bias, rng=rng, dtype=dtype)


def make_input(case, rng):
    _, cin, *_, n, h, w, _ = case
    return rng.standard_normal((n, cin, h, w))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conv_backward_matches_finite_differences(rng, assert_gradients_match, case):
    layer = make_layer(case, rng)
    # A convolution's output is linear in x and in W, so a central difference has no
    # truncation error at all (every third derivative is 0): only rounding, about
    # 1e-16 * |L| / h. A large step, h = 1e-3, makes that smaller than h = 1e-5 would.
    # num_checks caps the cost for the larger arrays (a random subset of entries).
    errors = check_module(layer, make_input(case, rng), h=1e-3, num_checks=150)
    expected = {"input", "weight"} | ({"bias"} if case[-1] else set())
    assert set(errors) == expected
    assert_gradients_match(errors)


def test_conv_stack_gradient_matches_finite_differences(rng, assert_gradients_match):
    """Conv -> LeakyReLU -> ConvT: layers fed with each other's (transposed-view) outputs."""
    model = nn.Sequential(
        nn.Conv2d(2, 3, 4, 2, 1, rng=rng, dtype=np.float64),
        nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(3, 2, 4, 2, 1, rng=rng, dtype=np.float64),
    )
    x = rng.standard_normal((2, 2, 6, 6))
    assert_gradients_match(check_module(model, x, num_checks=100))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conv_forward_and_every_gradient_match_pytorch(rng, case):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity skipped")
    transposed, cin, cout, k, s, p, op, *_, bias = case
    ours = make_layer(case, rng)
    if transposed:
        theirs = torch.nn.ConvTranspose2d(cin, cout, k, s, p, op, bias=bias).double()
    else:
        theirs = torch.nn.Conv2d(cin, cout, k, s, p, bias=bias).double()
    theirs.load_state_dict({name: torch.from_numpy(v) for name, v in ours.state_dict().items()})
    x = make_input(case, rng)
    y = ours(x)
    x_t = torch.from_numpy(x).requires_grad_(True)
    y_t = theirs(x_t)
    g = rng.standard_normal(y.shape)
    y_t.backward(torch.from_numpy(g))
    dx = ours.backward(g)
    tol = {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(y, y_t.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, x_t.grad.numpy(), **tol)
    grads = {name: q.grad.numpy() for name, q in theirs.named_parameters()}
    assert set(grads) == {name for name, _ in ours.named_parameters()}
    for name, param in ours.named_parameters():
        np.testing.assert_allclose(param.grad, grads[name], **tol, err_msg=name)


def test_transposed_convolution_is_the_convolutions_input_gradient_and_back(rng):
    """The identities the module docstring derives and ConvTranspose2d's code reuses."""
    conv = nn.Conv2d(2, 3, 4, 2, 1, bias=False, rng=rng, dtype=np.float64)
    convt = nn.ConvTranspose2d(3, 2, 4, 2, 1, bias=False, rng=rng, dtype=np.float64)
    convt.weight.data[...] = conv.weight.data  # the same W, (3, 2, 4, 4) for both
    x = rng.standard_normal((2, 2, 8, 8))
    g = rng.standard_normal(conv(x).shape)
    # ConvT forward on g == Conv2d's input gradient for g
    np.testing.assert_allclose(convt(g), conv.backward(g), rtol=1e-13, atol=1e-13)
    # ConvT backward of x == Conv2d's forward on x
    np.testing.assert_allclose(convt.backward(x), conv(x), rtol=1e-13, atol=1e-13)
    # <conv(x), g> == <x, convT(g)>: the two maps are each other's transposes
    np.testing.assert_allclose((conv(x) * g).sum(), (x * convt(g)).sum(), rtol=1e-12)


@pytest.mark.parametrize("k, p", [(3, 1), (3, 0), (4, 2), (5, 2)])
def test_a_stride_1_transposed_convolution_is_a_convolution_with_the_kernel_flipped(rng, k, p):
    """ConvTranspose2d(C, O, k, 1, p) == Conv2d(C, O, k, 1, k - 1 - p), W'[o, c] = W[c, o]
    rotated by 180 degrees: the identity DCGAN's G uses to draw its image cheaply."""
    convt = nn.ConvTranspose2d(4, 2, k, 1, p, rng=rng, dtype=np.float64)
    conv = nn.Conv2d(4, 2, k, 1, k - 1 - p, rng=rng, dtype=np.float64)
    conv.weight.data[...] = convt.weight.data.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
    conv.bias.data[...] = convt.bias.data
    x = rng.standard_normal((3, 4, 7, 6))
    np.testing.assert_allclose(convt(x), conv(x), rtol=1e-12, atol=1e-13)
    g = rng.standard_normal(conv(x).shape)
    np.testing.assert_allclose(convt.backward(g), conv.backward(g), rtol=1e-12, atol=1e-13)
    flipped = convt.weight.grad.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
    np.testing.assert_allclose(flipped, conv.weight.grad, rtol=1e-12, atol=1e-13)


def test_shared_conv_functions_give_the_layers_numbers(rng):
    conv = nn.Conv2d(3, 2, 3, 2, 1, bias=False, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 3, 5, 5))
    y_rows, _ = conv2d(x, conv.weight.data, 2, 1)
    np.testing.assert_array_equal(from_rows(y_rows, 2, 3, 3), conv(x))
    g = rng.standard_normal((2, 2, 3, 3))
    dx = conv2d_input_grad(to_rows(g), conv.weight.data, x.shape, 2, 1)
    np.testing.assert_array_equal(dx, conv.backward(g))


def test_rows_form_passes_between_layers_without_copies(rng):
    """Outputs are NCHW views of rows-form memory (C, H, W, N); elementwise layers and
    BatchNorm keep that order, so the next layer's to_rows is a view, not a copy."""
    x = rng.standard_normal((3, 2, 6, 5)).astype(np.float32)
    conv = nn.Conv2d(2, 4, 3, 2, 1, rng=rng)
    y = conv(x)
    assert y.shape == (3, 4, 3, 3)
    y_up = nn.ConvTranspose2d(2, 4, 4, 2, 1, rng=rng)(x)
    for z in (y, nn.LeakyReLU(0.2)(y), nn.BatchNorm2d(4)(y), y_up):
        rows = to_rows(z)
        assert rows.shape == (4, z.shape[2] * z.shape[3] * 3)
        assert np.shares_memory(rows, z), "to_rows copied a rows-form array"
    np.testing.assert_array_equal(to_rows(y), y.transpose(1, 2, 3, 0).reshape(4, -1))
    assert not np.shares_memory(to_rows(x), x)  # plain NCHW input: one copy


def test_input_grad_false_skips_dx_and_still_fills_parameter_gradients(rng):
    for case in (CASES[1], CASES[7]):
        layer = make_layer(case, rng)
        x = make_input(case, rng)
        g = rng.standard_normal(layer(x).shape)
        layer.backward(g)
        full = {name: p.grad.copy() for name, p in layer.named_parameters()}
        layer.zero_grad()
        layer(x)
        assert layer.backward(g, input_grad=False) is None
        for name, p in layer.named_parameters():
            np.testing.assert_allclose(p.grad, full[name], rtol=1e-13, err_msg=name)


def test_conv_init_follows_pytorch_fan_in_for_each_weight_layout(rng):
    # Conv2d weight (out, in, k, k): fan_in = in*k*k; ConvTranspose2d weight
    # (in, out, k, k): PyTorch uses weight.shape[1]*k*k = out*k*k.
    for layer, fan_in in [
        (nn.Conv2d(8, 64, 4, rng=rng), 8 * 16),
        (nn.ConvTranspose2d(64, 8, 4, rng=rng), 8 * 16),
        (nn.ConvTranspose2d(8, 64, 4, rng=rng), 64 * 16),
    ]:
        bound = 1 / np.sqrt(fan_in)
        for param in (layer.weight, layer.bias):
            assert np.abs(param.data).max() <= bound
        assert abs(np.abs(layer.weight.data).max() - bound) < 0.01 * bound
        assert abs(layer.weight.data.std() - bound / np.sqrt(3)) < 0.03 * bound  # U(-k, k)
        assert layer.weight.dtype == np.float32


def test_conv_init_bounds_equal_pytorchs():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity skipped")
    fan_in_of = torch.nn.init._calculate_fan_in_and_fan_out  # what reset_parameters uses
    for ours, theirs in [
        (nn.Conv2d(3, 16, 5), torch.nn.Conv2d(3, 16, 5)),
        (nn.ConvTranspose2d(16, 3, 4), torch.nn.ConvTranspose2d(16, 3, 4)),
    ]:
        bound = 1 / np.sqrt(fan_in_of(theirs.weight)[0])
        assert ours.weight.shape == tuple(theirs.weight.shape)
        for param in (ours.weight, ours.bias):
            assert np.abs(param.data).max() <= bound
        for weight in (ours.weight.data, theirs.weight.detach().numpy()):
            assert abs(np.abs(weight).max() - bound) < 0.02 * bound  # both fill U(-b, b)


def test_conv_output_shapes_and_float32(rng):
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    conv = nn.Conv2d(1, 64, 4, 2, 1, rng=rng)
    convt = nn.ConvTranspose2d(64, 1, 4, 2, 1, rng=rng)
    y = conv(x)
    assert y.shape == (4, 64, 14, 14) and y.dtype == np.float32
    z = convt(y)
    assert z.shape == (4, 1, 28, 28) and z.dtype == np.float32
    dz = convt.backward(np.ones_like(z))
    assert dz.shape == y.shape and dz.dtype == np.float32
    assert conv.backward(dz).shape == x.shape
    odd = nn.ConvTranspose2d(1, 1, 3, 2, 1, output_padding=1, rng=rng)
    assert odd(np.zeros((1, 1, 7, 7), np.float32)).shape == (1, 1, 14, 14)


def test_conv_errors_name_the_layer_and_the_expected_shape(rng):
    conv = nn.Conv2d(3, 4, 3, rng=rng)
    expected = r"Conv2d\(3 -> 4, kernel_size=3, stride=1, padding=0\): expected input "
    with pytest.raises(
        ValueError, match=expected + r"\(batch, 3, height, width\), got \(2, 3, 5\)"
    ):
        conv(np.zeros((2, 3, 5), np.float32))
    with pytest.raises(
        ValueError, match=expected + r"\(batch, 3, height, width\), got \(2, 1, 5, 5\)"
    ):
        conv(np.zeros((2, 1, 5, 5), np.float32))
    padded = nn.Conv2d(1, 1, 5, padding=1, rng=rng)
    with pytest.raises(
        ValueError,
        match=r"Conv2d\(1 -> 1, kernel_size=5, stride=1, padding=1\): kernel 5x5 is larger than "
        r"the padded input 4x6 \(input 2x4 plus padding 1 on each side\)",
    ):
        padded(np.zeros((1, 1, 2, 4), np.float32))
    convt = nn.ConvTranspose2d(2, 1, 3, padding=2, bias=False, rng=rng)
    with pytest.raises(
        ValueError,
        match=r"ConvTranspose2d\(2 -> 1, kernel_size=3, stride=1, padding=2, bias=False\): "
        r"input 1x1 is too small: the output would be -1x-1",
    ):
        convt(np.zeros((1, 2, 1, 1), np.float32))
    with pytest.raises(ValueError, match=r"expected input \(batch, 2, height, width\)"):
        convt(np.zeros((1, 3, 4, 4), np.float32))
    with pytest.raises(TypeError, match="has dtype float64 but the layer computes in float32"):
        conv(np.zeros((1, 3, 5, 5)))


def test_conv_rejects_bad_settings():
    with pytest.raises(ValueError, match="Conv2d: kernel_size must be an integer >= 1, got 0"):
        nn.Conv2d(1, 1, 0)
    with pytest.raises(ValueError, match="Conv2d: padding must be an integer >= 0, got -1"):
        nn.Conv2d(1, 1, 3, padding=-1)
    with pytest.raises(ValueError, match="ConvTranspose2d: stride must be an integer >= 1"):
        nn.ConvTranspose2d(1, 1, 3, stride=0)
    with pytest.raises(
        ValueError, match=r"output_padding must be an integer in \[0, stride\) = \[0, 2\), got 2"
    ):
        nn.ConvTranspose2d(1, 1, 3, stride=2, output_padding=2)


def test_conv_backward_rejects_a_gradient_of_the_wrong_shape(rng):
    conv = nn.Conv2d(1, 2, 3, rng=rng)
    conv(np.zeros((1, 1, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"expected grad_out \(1, 2, 3, 3\), got \(1, 2, 5, 5\)"):
        conv.backward(np.zeros((1, 2, 5, 5), np.float32))


# --- Flatten / Unflatten -----------------------------------------------------------


def test_flatten_and_unflatten_round_trip_with_gradients(rng, assert_gradients_match):
    x = rng.standard_normal((2, 3, 4, 5))
    flat = nn.Flatten()
    y = flat(x)
    assert y.shape == (2, 60)
    assert flat.backward(y).shape == x.shape
    unflat = nn.Unflatten(1, (3, 4, 5))
    np.testing.assert_array_equal(unflat(y), x)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Flatten(-2)(x).shape == (2, 3, 20)
    assert_gradients_match(check_module(nn.Sequential(nn.Flatten(), nn.Unflatten(1, (3, 20))), x))


def test_flatten_and_unflatten_errors():
    with pytest.raises(ValueError, match=r"Unflatten\(dim=1, unflattened_size=\(3, 7, 7\)\): "
                       r"expected dimension 1 of size 147, got input of shape \(2, 100\)"):  # fmt: skip
        nn.Unflatten(1, (3, 7, 7))(np.zeros((2, 100)))
    with pytest.raises(ValueError, match=r"cannot flatten dimensions 2..-1 of an input of shape"):
        nn.Flatten(2)(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="unflattened_size must be positive sizes"):
        nn.Unflatten(1, ())


# --- Pack (PacGAN) -------------------------------------------------------------------


def test_pack_joins_consecutive_examples_side_by_side(rng, assert_gradients_match):
    x = rng.standard_normal((6, 5))
    y = nn.Pack(3)(x)
    assert y.shape == (2, 15)
    np.testing.assert_array_equal(y[1], np.concatenate([x[3], x[4], x[5]]))
    assert_gradients_match(check_module(nn.Pack(3), x))


def test_pack_joins_images_as_channels(rng, assert_gradients_match):
    x = rng.standard_normal((4, 3, 5, 5))
    y = nn.Pack(2)(x)
    assert y.shape == (2, 6, 5, 5)
    np.testing.assert_array_equal(y[1, 3:], x[3])  # the 4th image: pack 1's second half
    assert_gradients_match(check_module(nn.Pack(2), x))


def test_pack_of_one_is_the_identity_and_bad_packs_are_refused(rng):
    x = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(nn.Pack(1)(x), x)
    with pytest.raises(ValueError, match=r"Pack\(2\): expected input \(batch, features\.\.\.\) "
                       r"with batch a multiple of 2, got shape \(3, 4\); choose a batch size"):  # fmt: skip
        nn.Pack(2)(x)
    with pytest.raises(ValueError, match="Pack: m must be a positive number of examples, got 0"):
        nn.Pack(0)


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: nn.Pack(2), (4, 3, 2, 2)),
        (nn.Flatten, (4, 3, 2)),
        (lambda: nn.Unflatten(1, (3, 1)), (4, 3)),
    ],
    ids=["Pack", "Flatten", "Unflatten"],
)
def test_the_reshapes_keep_only_the_input_shape_and_still_check_the_gradient(make, shape, rng):
    layer = make()
    y = layer(rng.standard_normal(shape))
    assert layer._saved == (shape,)  # not the input array
    assert layer.backward(np.ones_like(y)).shape == shape
    with pytest.raises(TypeError, match=r"grad_out has dtype float32 but the layer computes"):
        layer.backward(y.astype(np.float32))
    with pytest.raises(ValueError, match=r"expected grad_out \("):
        layer.backward(np.ones((len(y), 1)))
