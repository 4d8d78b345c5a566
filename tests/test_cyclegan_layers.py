"""CycleGAN's layers: InstanceNorm2d, ReflectionPad2d, Residual, L1Loss and Module.shared_copy.

Each: float64 central-difference gradient checks, the derivation checked piece by piece
(BatchNorm's staged backward, the reflection's index map, the adjoint identity), shapes,
edge cases and one-line errors, PyTorch parity, float32 in -> float32 out, and a training
step of a small ResNet-like stack through the strict CuPy stand-in with no host sync.
"""

import numpy as np
import pytest
from conftest import assert_network_matches_torch

from minigan import losses, nn, optim
from minigan.backend import get_backend, to_host
from minigan.gradcheck import check_double_backward, check_loss, check_module
from minigan.nn.batchnorm import batchnorm_backward_staged


def torch_or_skip():
    return pytest.importorskip("torch", reason="PyTorch is not installed: parity skipped")


def resnet_block(rng, channels, dtype=np.float64):
    """CycleGAN's residual block (its ResnetBlock without dropout): pad, conv, norm, ReLU,
    pad, conv, norm, inside y = x + f(x)."""
    return nn.Residual(
        nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, rng=rng, dtype=dtype),
            nn.InstanceNorm2d(channels),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, rng=rng, dtype=dtype),
            nn.InstanceNorm2d(channels),
        )
    )


def resnet_stack(rng, dtype=np.float64):
    """A tiny ResNet-like generator: 7x7 stem, one residual block, a 1x1 conv to an image."""
    return nn.Sequential(
        nn.ReflectionPad2d(3),
        nn.Conv2d(1, 4, 7, rng=rng, dtype=dtype),
        nn.InstanceNorm2d(4),
        nn.ReLU(),
        resnet_block(rng, 4, dtype),
        nn.Conv2d(4, 1, 1, rng=rng, dtype=dtype),
        nn.Tanh(),
    )


def maps(rng, shape):
    """Random maps whose means and scales differ from map to map (std 0.1 to 3)."""
    n, c = shape[:2]
    scale = rng.uniform(0.1, 3.0, (n, c, 1, 1))
    shift = rng.uniform(-2.0, 2.0, (n, c, 1, 1))
    return scale * rng.standard_normal(shape) + shift


# --- InstanceNorm2d -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 2, 3, 3), (3, 1, 2, 3)])
def test_instancenorm_backward_matches_finite_differences(rng, assert_gradients_match, shape):
    # Smooth but not linear in x (1/std): the step balances truncation, O(h^2 / std^2),
    # against rounding, O(1e-16 / h). With map scales down to 0.1, h = 1e-5 keeps the
    # truncation below 1e-8 and the rounding near 1e-11.
    layer = nn.InstanceNorm2d(shape[1])
    errors = check_module(layer, maps(rng, shape), h=1e-5)
    assert set(errors) == {"input"}  # no parameters
    assert_gradients_match(errors)


def test_instancenorm_normalises_every_map_on_its_own(rng):
    x = maps(rng, (3, 2, 5, 4))
    y = nn.InstanceNorm2d(2)(x)
    np.testing.assert_allclose(y.mean(axis=(2, 3)), 0, atol=1e-12)
    var = x.var(axis=(2, 3))  # biased, as the layer divides by it
    np.testing.assert_allclose(y.var(axis=(2, 3)), var / (var + 1e-5), rtol=1e-12)
    # A map's output depends on that map only: change map (1, 0), nothing else moves.
    x2 = x.copy()
    x2[1, 0] = 5 * x2[1, 0] + 7
    y2 = nn.InstanceNorm2d(2)(x2)
    changed = np.abs(y2 - y).max(axis=(2, 3)) > 1e-6
    assert changed.tolist() == [[False, False], [True, False], [False, False]]
    np.testing.assert_allclose(y2[1, 0], y[1, 0], atol=1e-5)  # an affine change: only eps sees it


def test_instancenorm_backward_is_batchnorms_staged_derivation_per_map(rng):
    """The compact form equals BatchNorm's step-by-step backward with the statistics taken
    over (H, W) for each (n, c) and gamma = 1."""
    layer = nn.InstanceNorm2d(3)
    x = maps(rng, (2, 3, 4, 5))
    g = rng.standard_normal(x.shape)
    layer(x)
    dx = layer.backward(g)
    gamma = np.ones((2, 3, 1, 1))  # one per map: m = x.size // gamma.size = H*W
    dx_staged, _, _ = batchnorm_backward_staged(g, x, gamma, layer.eps, (2, 3))
    np.testing.assert_allclose(dx, dx_staged, rtol=1e-10, atol=1e-13)


def test_instancenorm_is_batchnorm_of_each_image_alone(rng):
    x = maps(rng, (3, 2, 4, 4))
    g = rng.standard_normal(x.shape)
    layer = nn.InstanceNorm2d(2)
    y, dx = layer(x), layer.backward(g)
    for n in range(3):
        bn = nn.BatchNorm2d(2, affine=False, dtype=np.float64)
        np.testing.assert_allclose(y[n : n + 1], bn(x[n : n + 1]), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(dx[n : n + 1], bn.backward(g[n : n + 1]), atol=1e-12)


def test_instancenorm_is_the_same_in_training_and_evaluation(rng):
    layer = nn.InstanceNorm2d(2)
    x = maps(rng, (2, 2, 3, 4))
    g = rng.standard_normal(x.shape)
    y_train, dx_train = layer.train()(x), layer.backward(g)
    y_eval, dx_eval = layer.eval()(x), layer.backward(g)
    np.testing.assert_array_equal(y_eval, y_train)
    np.testing.assert_array_equal(dx_eval, dx_train)
    assert layer.parameters() == [] and layer.state_dict() == {}


def test_instancenorm_errors_are_one_line():
    layer = nn.InstanceNorm2d(3)
    cases = [
        ((4, 3), r"InstanceNorm2d\(3\): expected input \(batch, 3, height, width\), got \(4, 3\)"),
        ((4, 2, 5, 5), r"expected input \(batch, 3, height, width\), got \(4, 2, 5, 5\)"),
        ((4, 3, 1, 1), r"expected more than 1 pixel per map, got input \(4, 3, 1, 1\)"),
    ]
    for shape, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            layer(np.zeros(shape, np.float32))
        assert "\n" not in str(info.value)
    with pytest.raises(TypeError, match="must be a floating-point array"):
        layer(np.zeros((1, 3, 2, 2), np.int64))
    with pytest.raises(ValueError, match="num_features must be an integer >= 1, got 0"):
        nn.InstanceNorm2d(0)
    with pytest.raises(ValueError, match="eps must be > 0, got 0"):
        nn.InstanceNorm2d(3, eps=0)
    with pytest.raises(NotImplementedError, match="no double_backward"):
        layer(np.ones((1, 3, 2, 2)))
        layer.backward(np.ones((1, 3, 2, 2)), create_graph=True)


# --- ReflectionPad2d ------------------------------------------------------------------------


def reflect_index(i, p, size):
    """r(i) of the padding module's docstring, written out: padded index -> source index."""
    r = abs(i - p)
    return r if r < size else 2 * (size - 1) - (i - p)


def reflection_pad_by_loops(x, p):
    """y[..., i, j] = x[..., r(i), s(j)] entry by entry, and its adjoint: the reference."""
    n, c, h, w = x.shape
    y = np.empty((n, c, h + 2 * p, w + 2 * p))
    for i in range(h + 2 * p):
        for j in range(w + 2 * p):
            y[:, :, i, j] = x[:, :, reflect_index(i, p, h), reflect_index(j, p, w)]
    return y


def reflection_fold_by_loops(g, p):
    n, c, hp, wp = g.shape
    h, w = hp - 2 * p, wp - 2 * p
    dx = np.zeros((n, c, h, w))
    for i in range(hp):
        for j in range(wp):
            dx[:, :, reflect_index(i, p, h), reflect_index(j, p, w)] += g[:, :, i, j]
    return dx


@pytest.mark.parametrize(
    "padding, shape", [(1, (2, 2, 3, 5)), (2, (1, 3, 4, 3)), (2, (2, 1, 3, 6))]
)
def test_reflection_pad_backward_matches_finite_differences(
    rng, assert_gradients_match, padding, shape
):
    # The padding is linear in x (copies), so central differences have no truncation
    # error at any step; a large step only shrinks the rounding error: h = 0.1.
    errors = check_module(nn.ReflectionPad2d(padding), rng.standard_normal(shape), h=0.1)
    assert_gradients_match(errors)


@pytest.mark.parametrize("padding", [0, 1, 2, 3])
def test_reflection_pad_follows_the_index_map_both_ways(rng, padding):
    x = rng.standard_normal((2, 2, 4, 5))
    layer = nn.ReflectionPad2d(padding)
    y = layer(x)
    np.testing.assert_array_equal(y, reflection_pad_by_loops(x, padding))
    widths = ((0, 0), (0, 0), (padding, padding), (padding, padding))
    np.testing.assert_array_equal(y, np.pad(x, widths, mode="reflect"))
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(layer.backward(g), reflection_fold_by_loops(g, padding), atol=1e-14)
    # adjoint: <pad(x), g> = <x, fold(g)>
    np.testing.assert_allclose((y * g).sum(), (x * layer.backward(g)).sum(), rtol=1e-12)


def test_reflection_pad_mirrors_without_repeating_the_edge_and_corners_on_both_axes():
    x = np.arange(1.0, 5.0).reshape(1, 1, 1, 4)  # a 1x4 row [1 2 3 4]: width only
    row = nn.ReflectionPad2d(2)(np.concatenate([x, x + 10, x + 20], axis=2))[0, 0, 2]
    np.testing.assert_array_equal(row, [3, 2, 1, 2, 3, 4, 3, 2])
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    y = nn.ReflectionPad2d(1)(x)[0, 0]
    np.testing.assert_array_equal(
        y,
        [[4, 3, 4, 5, 4],
         [1, 0, 1, 2, 1],
         [4, 3, 4, 5, 4],
         [7, 6, 7, 8, 7],
         [4, 3, 4, 5, 4]],
    )  # fmt: skip
    # Backward of ones counts each pixel's copies: padded rows 0, 2, 4 all read row 1
    # (and columns likewise), so the centre (4) appears 3 * 3 = 9 times, a corner once.
    layer = nn.ReflectionPad2d(1)
    layer(x)
    np.testing.assert_array_equal(
        layer.backward(np.ones((1, 1, 5, 5)))[0, 0], [[1, 3, 1], [3, 9, 3], [1, 3, 1]]
    )


def test_reflection_pad_double_backward_is_the_padding(rng, assert_gradients_match):
    # Backward is linear in dy and free of x: exact at any step, as above.
    errors = check_double_backward(nn.ReflectionPad2d(2), rng.standard_normal((2, 2, 3, 4)), h=0.1)
    assert_gradients_match(errors)


def test_reflection_pad_errors_are_one_line():
    with pytest.raises(
        ValueError,
        match=r"ReflectionPad2d\(3\): padding must be smaller than the input's height and "
        r"width \(a reflection does not repeat the edge pixel\), got input \(1, 2, 3, 8\)",
    ):
        nn.ReflectionPad2d(3)(np.zeros((1, 2, 3, 8)))
    with pytest.raises(ValueError, match=r"got input \(1, 2, 8, 2\)"):
        nn.ReflectionPad2d(2)(np.zeros((1, 2, 8, 2)))
    with pytest.raises(ValueError, match=r"expected input \(batch, channels, height, width\)"):
        nn.ReflectionPad2d(1)(np.zeros((2, 8)))
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="padding must be an integer >= 0"):
            nn.ReflectionPad2d(bad)
    nn.ReflectionPad2d(2)(np.zeros((1, 1, 3, 3)))  # padding = side - 1: the largest allowed


# --- Residual -------------------------------------------------------------------------------


def test_residual_block_backward_matches_finite_differences(rng, assert_gradients_match):
    # Conv and norm are smooth; the ReLU's kink is met only where a pre-activation lies
    # within h of 0 (none here). h = 1e-5 as for InstanceNorm alone.
    block = resnet_block(rng, 2)
    biases = [block.body[i].bias for i in (1, 5)]
    for bias in biases:  # their gradient is 0: checked below, not by relative error
        bias.requires_grad = False
    x = maps(rng, (2, 2, 5, 4))
    errors = check_module(block, x)
    assert set(errors) == {"input", "body.1.weight", "body.5.weight"}
    assert_gradients_match(errors)


def test_a_conv_bias_before_instancenorm_gets_no_gradient(rng):
    """InstanceNorm subtracts each map's mean, so a per-channel constant added before it
    (a convolution's bias) changes nothing: its gradient is 0 (up to rounding)."""
    block = resnet_block(rng, 2)
    x = maps(rng, (2, 2, 5, 4))
    block(x)
    block.backward(rng.standard_normal(x.shape))
    for i in (1, 5):
        assert np.abs(block.body[i].bias.grad).max() < 1e-12
        assert np.abs(block.body[i].weight.grad).max() > 1e-3


def test_residual_adds_the_identity_path(rng):
    body = nn.Sequential(nn.Linear(3, 3, rng=rng, dtype=np.float64), nn.Tanh())
    block = nn.Residual(body)
    x, g = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    y = block(x)
    np.testing.assert_array_equal(y, x + body(x))
    block(x)
    dx = block.backward(g)
    body(x)
    np.testing.assert_array_equal(dx, g + body.backward(g))
    zero = nn.Residual(nn.Sequential(nn.Linear(3, 3, rng=rng, dtype=np.float64)))
    for p in zero.parameters():
        p.data[...] = 0
    np.testing.assert_array_equal(zero(x), x)  # f = 0: the block is the identity
    np.testing.assert_array_equal(zero.backward(g), g)


def test_residual_double_backward_matches_finite_differences(rng, assert_gradients_match):
    body = nn.Sequential(
        nn.Linear(4, 5, rng=rng, dtype=np.float64),
        nn.Tanh(),
        nn.Linear(5, 4, rng=rng, dtype=np.float64),
    )
    assert_gradients_match(check_double_backward(nn.Residual(body), rng.standard_normal((3, 4))))


def test_residual_takes_parameters_modes_and_state_from_its_body(rng):
    block = resnet_block(rng, 2)
    names = [name for name, _ in block.named_parameters()]
    assert names == ["body.1.weight", "body.1.bias", "body.5.weight", "body.5.bias"]
    assert block.parameters() == block.body.parameters()
    block.eval()
    assert not any(m.training for m in block.modules())
    state = block.state_dict()
    other = resnet_block(np.random.default_rng(99), 2)
    other.load_state_dict(state)
    x = maps(rng, (1, 2, 4, 4))
    np.testing.assert_array_equal(other(x), block(x))
    other.to(dtype=np.float32)
    assert all(p.dtype == np.float32 for p in other.parameters())
    x, g = rng.standard_normal((2, 2, 4, 4)), rng.standard_normal((2, 2, 4, 4))
    block.zero_grad()
    block(x)
    assert block.backward(g, input_grad=False) is None  # the hint, yet dW is there
    assert all(p.grad.any() for p in block.parameters())


def test_residual_errors_are_one_line(rng):
    with pytest.raises(
        ValueError,
        match=r"Residual: y = x \+ body\(x\) needs the body to keep the input's shape; it "
        r"maps \(2, 2, 5, 5\) to \(2, 3, 5, 5\)",
    ):
        nn.Residual(nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, rng=rng)))(
            np.zeros((2, 2, 5, 5), np.float32)
        )
    with pytest.raises(ValueError, match=r"maps \(2, 2, 5, 5\) to \(2, 2, 3, 3\)"):
        nn.Residual(nn.Conv2d(2, 2, 3, rng=rng))(np.zeros((2, 2, 5, 5), np.float32))
    with pytest.raises(TypeError, match="Residual: body must be a Module, got function"):
        nn.Residual(lambda x: x)
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward\\(\\)"):
        nn.Residual(nn.Tanh()).backward(np.zeros(3))


# --- L1Loss ---------------------------------------------------------------------------------


def test_l1_loss_gradient_matches_finite_differences_away_from_ties(rng, assert_gradients_match):
    # |d| is linear on each side of its kink, so central differences are exact (up to
    # rounding) while the step stays on one side: |pred - target| >= 0.1 here, and
    # h = 1e-3 is far inside that, and large enough to keep rounding small.
    pred = rng.standard_normal((4, 3))
    offset = rng.choice([-1.0, 1.0], size=pred.shape) * rng.uniform(0.1, 2.0, size=pred.shape)
    assert_gradients_match(check_loss(losses.L1Loss(), pred, pred - offset, h=1e-3))
    scalar_pred = 0.5 + offset  # every |pred - 0.5| >= 0.1
    assert_gradients_match(check_loss(losses.L1Loss(), scalar_pred, 0.5, h=1e-3))


def test_l1_loss_value_and_subgradient_zero_at_ties():
    loss = losses.L1Loss()
    pred = np.array([[1.0, -2.0], [0.5, 3.0]])
    target = np.array([[0.0, -2.0], [1.5, 3.0]])  # two ties
    assert float(loss(pred, target)) == pytest.approx((1 + 0 + 1 + 0) / 4)
    np.testing.assert_array_equal(loss.backward(), [[0.25, 0.0], [-0.25, 0.0]])
    loss(pred, 0.5)
    np.testing.assert_array_equal(loss.backward(), [[0.25, -0.25], [0.0, 0.25]])


def test_l1_loss_errors():
    loss = losses.L1Loss()
    with pytest.raises(ValueError, match=r"L1Loss\(\): expected target \(2, 3\), got \(3, 2\)"):
        loss(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(TypeError, match="pred must be a floating-point array"):
        loss(np.zeros((2, 3), np.int64), 0.0)
    with pytest.raises(TypeError, match="target has dtype float32"):
        loss(np.zeros((2, 3)), np.zeros((2, 3), np.float32))
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward\\(\\)"):
        losses.L1Loss().backward()


# --- float32 in, float32 out ------------------------------------------------------------------


def test_float32_in_float32_out(rng):
    x = rng.standard_normal((2, 2, 5, 4)).astype(np.float32)
    for layer in (nn.InstanceNorm2d(2), nn.ReflectionPad2d(2), resnet_block(rng, 2, np.float32)):
        y = layer(x)
        dx = layer.backward(rng.standard_normal(y.shape).astype(np.float32))
        assert (y.dtype, dx.dtype) == (np.float32, np.float32), layer
    loss = losses.L1Loss()
    for target in (x[::-1].copy(), 0.5):
        assert loss(x, target).dtype == np.float32 and loss.backward().dtype == np.float32
    with pytest.raises(TypeError, match="grad_out has dtype float64"):
        layer = nn.InstanceNorm2d(2)
        layer(x)
        layer.backward(np.zeros(x.shape))


# --- PyTorch parity -----------------------------------------------------------------------------


@pytest.mark.parametrize("padding", [1, 2, 3])
def test_reflection_pad_and_instancenorm_match_pytorch(rng, padding):
    torch = torch_or_skip()
    from minigan.testing.pytorch import to_torch

    x = maps(rng, (2, 3, 4, 7))
    for ours in (nn.ReflectionPad2d(padding), nn.InstanceNorm2d(3)):
        for mode in ("train", "eval"):
            getattr(ours, mode)()
            theirs = to_torch(ours)
            y = ours(x)
            g = rng.standard_normal(y.shape)
            x_t = torch.from_numpy(x).requires_grad_(True)
            y_t = theirs(x_t)
            y_t.backward(torch.from_numpy(g))
            np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(ours.backward(g), x_t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_resnet_stack_matches_pytorch(rng):
    assert_network_matches_torch(resnet_stack(rng), maps(rng, (3, 1, 8, 6)), rng)


def test_l1_loss_matches_pytorch_including_ties(rng):
    torch = torch_or_skip()
    pred = rng.standard_normal((5, 4))
    target = rng.standard_normal((5, 4))
    target[0] = pred[0]
    for t in (target, 0.25, float(pred[1, 1])):
        ours = losses.L1Loss()
        value = ours(pred, t)
        p_t = torch.from_numpy(pred).requires_grad_(True)
        t_t = torch.from_numpy(t) if isinstance(t, np.ndarray) else torch.full_like(p_t, t)
        v_t = torch.nn.L1Loss()(p_t, t_t)
        v_t.backward()
        assert float(value) == pytest.approx(v_t.item(), rel=1e-14)
        np.testing.assert_array_equal(ours.backward(), p_t.grad.numpy())


# --- shared_copy ------------------------------------------------------------------------------


def test_shared_copy_shares_parameters_and_keeps_its_own_cache(rng):
    net = resnet_stack(rng)
    twin = net.shared_copy()
    assert twin is not net
    assert all(a is b for a, b in zip(net.parameters(), twin.parameters(), strict=True))
    a, b = maps(rng, (2, 1, 6, 6)), maps(rng, (3, 1, 6, 6))
    ga, gb = rng.standard_normal(a.shape), rng.standard_normal(b.shape)

    def grads_of(x, g):
        net.zero_grad()
        net(x)
        dx = net.backward(g)
        return dx, [p.grad.copy() for p in net.parameters()]

    dx_a, grads_a = grads_of(a, ga)
    dx_b, grads_b = grads_of(b, gb)
    # Two forwards, then two backwards: each copy reads its own cache...
    net.zero_grad()
    net(a)
    twin(b)
    np.testing.assert_allclose(twin.backward(gb), dx_b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.backward(ga), dx_a, rtol=1e-12, atol=1e-14)
    # ... and both add into the one .grad of each shared parameter.
    for p, one, other in zip(net.parameters(), grads_a, grads_b, strict=True):
        np.testing.assert_allclose(p.grad, one + other, rtol=1e-12, atol=1e-14)


def test_shared_copy_moves_with_the_optimizer_built_before_or_after_it(rng):
    for copy_first in (True, False):
        net = resnet_stack(np.random.default_rng(5))
        twin = net.shared_copy() if copy_first else None
        adam = optim.Adam(net.parameters(), lr=0.01)  # packs the shared parameters' arrays
        twin = twin if copy_first else net.shared_copy()
        before = net.state_dict()
        loss = losses.L1Loss()
        adam.zero_grad()
        loss(twin(maps(rng, (2, 1, 6, 6))), 0.0)
        twin.backward(loss.backward(), input_grad=False)
        adam.step()
        after = twin.state_dict()
        assert after.keys() == before.keys()
        assert all(not np.array_equal(after[k], before[k]) for k in before)  # all moved
        for name, value in net.state_dict().items():
            np.testing.assert_array_equal(value, after[name])
    with pytest.raises(ValueError, match="a parameter appears more than once"):
        optim.Adam(net.parameters() + twin.parameters())  # the same objects: list one copy's


def test_shared_copy_copies_buffers_flags_and_starts_without_a_cache(rng):
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, rng=rng, dtype=np.float64),
        nn.BatchNorm2d(2, dtype=np.float64),
        nn.Dropout(0.2, rng=np.random.default_rng(0)),
    )
    x = maps(rng, (2, 1, 5, 5))
    net(x)  # a cache, and running statistics away from their start
    twin = net.shared_copy()
    state = net.state_dict()
    assert twin.state_dict().keys() == state.keys()
    for name, value in twin.state_dict().items():
        np.testing.assert_array_equal(value, state[name])
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward\\(\\)"):
        twin.backward(np.zeros((2, 2, 3, 3)))  # the copy has no cache of its own yet
    net.backward(np.ones((2, 2, 3, 3)))  # the original's cache is where it was
    twin(x)  # the copy's running statistics move, not the original's
    assert not np.array_equal(twin[1].running_mean, net[1].running_mean)
    np.testing.assert_array_equal(net[1].running_mean, state["1.running_mean"])
    assert twin[2].rng is net[2].rng  # one random stream for both applications
    twin.eval()
    assert net.training and all(m.training for m in net.modules())


# --- the strict CuPy stand-in -------------------------------------------------------------------


def stand_in_steps(backend):
    """A CycleGAN-like step, twice, on a tiny ResNet stack: G applied twice (a shared copy),
    an L1 cycle loss and an L1 pull towards 0.5, one Adam step. Returns the network and
    the losses, on the backend (nothing read back)."""
    be = get_backend(backend)
    rng = np.random.default_rng(3)
    g = resnet_stack(rng, np.float32).to(be)
    g_again = g.shared_copy()
    adam = optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    a = be.asarray(np.tanh(rng.standard_normal((2, 1, 8, 8))).astype(np.float32))
    cycle, other = losses.L1Loss(), losses.L1Loss()
    values = []
    for _ in range(2):
        adam.zero_grad()
        fake = g(a)
        rec = g_again(fake)  # the same weights applied a second time
        values += [cycle(rec, a), other(fake, 0.5)]
        d_fake = g_again.backward(cycle.backward())
        g.backward(d_fake + other.backward(), input_grad=False)
        adam.step()
    return g, be.xp.stack(values)


def test_a_resnet_stack_step_through_the_cupy_stand_in_reads_nothing_back(fake_cupy):
    g_numpy, expected = stand_in_steps("numpy")
    g_cupy, got = stand_in_steps("cupy")
    assert fake_cupy.reads == []  # two training steps, no sync
    np.testing.assert_array_equal(to_host(got), expected)
    state = g_numpy.state_dict()
    for name, value in g_cupy.state_dict().items():
        np.testing.assert_array_equal(value, state[name], err_msg=name)


def test_shared_copy_on_the_stand_in_copies_device_buffers_and_reads_nothing(fake_cupy, rng):
    be = get_backend("cupy")
    net = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.BatchNorm2d(2)).to(be)
    x = be.asarray(rng.standard_normal((2, 1, 5, 5)).astype(np.float32))
    net(x)
    twin = net.shared_copy()
    assert twin[0].weight is net[0].weight
    assert isinstance(twin[1].running_mean, fake_cupy.ndarray)
    assert twin[1].running_mean is not net[1].running_mean
    twin.backward(twin(x))
    assert fake_cupy.reads == []
