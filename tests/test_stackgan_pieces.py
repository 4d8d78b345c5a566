"""StackGAN's new pieces: Upsample, ConditioningAugmentation, and the captions workshop.

Layers: float64 central-difference gradient checks (the KL term included, eps held
fixed by reseeding the noise stream), the derivations checked piece by piece, shapes,
edge cases and one-line errors, PyTorch parity, float32 in -> float32 out, and a small
two-stage step through the strict CuPy stand-in with no host sync. Captions: the
measures on images whose answer is known, the bins, caption <-> parse round trips, the
one-line errors naming the known words, and the fixed text encoder.
"""

import numpy as np
import pytest
from conftest import assert_network_matches_torch

from minigan import captions, losses, nn, optim
from minigan.backend import get_backend, to_host
from minigan.gradcheck import (
    check_double_backward,
    check_module,
    numerical_gradient,
    relative_error,
)


def torch_or_skip():
    return pytest.importorskip("torch", reason="PyTorch is not installed: parity skipped")


# --- Upsample -------------------------------------------------------------------------------


def upsample_by_loops(x, s):
    n, c, h, w = x.shape
    y = np.empty((n, c, h * s, w * s))
    for i in range(h * s):
        for j in range(w * s):
            y[:, :, i, j] = x[:, :, i // s, j // s]
    return y


def block_sums_by_loops(g, s):
    n, c, hs, ws = g.shape
    dx = np.zeros((n, c, hs // s, ws // s))
    for i in range(hs):
        for j in range(ws):
            dx[:, :, i // s, j // s] += g[:, :, i, j]
    return dx


@pytest.mark.parametrize("scale, shape", [(1, (2, 2, 3, 4)), (2, (2, 3, 3, 2)), (3, (1, 2, 2, 3))])
def test_upsample_backward_matches_finite_differences(rng, assert_gradients_match, scale, shape):
    # Up-sampling is linear in x (copies), so central differences carry no truncation
    # error at any step; a large step only shrinks the rounding error: h = 0.1.
    errors = check_module(nn.Upsample(scale), rng.standard_normal(shape), h=0.1)
    assert set(errors) == {"input"}
    assert_gradients_match(errors)


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_upsample_copies_each_pixel_into_a_block_and_backward_sums_the_block(rng, scale):
    x = rng.standard_normal((2, 3, 4, 5))
    layer = nn.Upsample(scale)
    y = layer(x)
    assert y.shape == (2, 3, 4 * scale, 5 * scale)
    np.testing.assert_array_equal(y, upsample_by_loops(x, scale))
    np.testing.assert_array_equal(y, x.repeat(scale, axis=2).repeat(scale, axis=3))
    g = rng.standard_normal(y.shape)
    dx = layer.backward(g)
    np.testing.assert_allclose(dx, block_sums_by_loops(g, scale), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose((y * g).sum(), (x * dx).sum(), rtol=1e-12)  # <Ux, g> = <x, U^T g>
    np.testing.assert_array_equal(layer.backward(np.ones(y.shape)), np.full(x.shape, scale**2))


def test_upsample_by_one_is_the_identity_and_a_1x1_map_becomes_a_flat_block(rng):
    x = rng.standard_normal((2, 2, 3, 3))
    layer = nn.Upsample(1)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer.backward(x), x)
    y = nn.Upsample(4)(np.array([[[[7.0]]]]))
    np.testing.assert_array_equal(y, np.full((1, 1, 4, 4), 7.0))


def test_upsample_double_backward_is_the_upsampling(rng, assert_gradients_match):
    # Backward is linear in dy and free of x: exact at any step, as above.
    errors = check_double_backward(nn.Upsample(2), rng.standard_normal((2, 2, 3, 2)), h=0.1)
    assert_gradients_match(errors)
    layer = nn.Upsample(3)
    layer(rng.standard_normal((1, 1, 2, 2)))
    layer.backward(rng.standard_normal((1, 1, 6, 6)), create_graph=True)
    gg = rng.standard_normal((1, 1, 2, 2))
    gg_out, gx = layer.double_backward(gg)
    np.testing.assert_array_equal(gg_out, upsample_by_loops(gg, 3))
    assert gx is None


def test_upsample_errors_are_one_line():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=r"Upsample: scale must be an integer >= 1") as info:
            nn.Upsample(bad)
        assert "\n" not in str(info.value)
    layer = nn.Upsample(2)
    with pytest.raises(
        ValueError,
        match=r"Upsample\(scale=2\): expected input \(batch, channels, height, width\), got \(4, 6\)",
    ):
        layer(np.zeros((4, 6), np.float32))
    with pytest.raises(TypeError, match="must be a floating-point array"):
        layer(np.zeros((1, 1, 2, 2), np.int64))
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        nn.Upsample(2).backward(np.zeros((1, 1, 4, 4)))
    layer(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="grad_out"):
        layer.backward(np.zeros((1, 1, 2, 2)))  # the input's shape, not the output's


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_upsample_matches_pytorch(rng, scale):
    torch = torch_or_skip()
    from minigan.testing.pytorch import to_torch

    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-6)):
        ours = nn.Upsample(scale)
        theirs = to_torch(ours)
        assert isinstance(theirs, torch.nn.Upsample)
        x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
        y = ours(x)
        g = rng.standard_normal(y.shape).astype(dtype)
        x_t = torch.from_numpy(x).requires_grad_(True)
        y_t = theirs(x_t)
        y_t.backward(torch.from_numpy(g))
        np.testing.assert_array_equal(y, y_t.detach().numpy())
        np.testing.assert_allclose(ours.backward(g), x_t.grad.numpy(), rtol=tol, atol=tol)


def test_upsample_conv_block_matches_pytorch(rng):
    """StackGAN's up-sampling block (its ``upBlock``): Upsample(2), 3x3 conv, BN, ReLU."""
    ours = nn.Sequential(
        nn.Upsample(2),
        nn.Conv2d(3, 2, 3, padding=1, rng=rng, dtype=np.float64),
        nn.BatchNorm2d(2, dtype=np.float64),
        nn.ReLU(),
    )
    assert_network_matches_torch(ours, rng.standard_normal((3, 3, 4, 4)), rng)


# --- ConditioningAugmentation -------------------------------------------------------------


def make_ca(embed_dim=5, c_dim=3, *, relu=True, seed=0, kl_weight=2.0, dtype=np.float64):
    ca = nn.ConditioningAugmentation(
        embed_dim, c_dim, init_rng=np.random.default_rng(seed), dtype=dtype,
        kl_weight=kl_weight, relu=relu,
    )  # fmt: skip
    # Larger weights than the default init: logvar then spans a few units (exp curves).
    ca.fc.weight.data *= 3
    return ca


def pass_with_kl(ca, e, r, weight, seed=3):
    """L = sum(c * r) + weight * KL, eps drawn afresh from a reseeded stream: the same eps
    at every call (as tests/conftest.py's SameDraw does)."""
    ca.rng = np.random.default_rng(seed)
    return (ca(e) * r).sum() + weight * ca.kl()


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("weight", [0.0, 2.0, 50.0])
def test_ca_backward_with_kl_matches_finite_differences(rng, assert_gradients_match, relu, weight):
    # With eps fixed, L is smooth in e and the weights except at the ReLU's kink (no
    # pre-activation lies within h of 0: checked) and curves through exp(logvar / 2) and
    # exp(logvar) on a scale of about 1: h = 1e-5 leaves truncation ~1e-10, rounding ~1e-11.
    ca = make_ca(relu=relu)
    e = rng.standard_normal((4, 5))
    r = rng.standard_normal((4, 3))
    h_pre = e @ ca.fc.weight.data.T + ca.fc.bias.data
    assert np.abs(h_pre).min() > 1e-3
    if relu:
        assert (h_pre > 0).any() and (h_pre < 0).any()  # both sides of the kink are used
    ca.zero_grad()
    pass_with_kl(ca, e, r, weight)
    analytic = {"input": ca.backward(r, kl_weight=weight)}
    analytic |= {name: p.grad.copy() for name, p in ca.named_parameters()}
    arrays = {"input": e, **{name: p.data for name, p in ca.named_parameters()}}
    errors = {
        name: relative_error(
            analytic[name], numerical_gradient(lambda: pass_with_kl(ca, e, r, weight), a)
        )
        for name, a in arrays.items()
    }
    assert set(errors) == {"input", "fc.weight", "fc.bias"}
    assert_gradients_match(errors)


def test_ca_kl_is_the_papers_code_mean_over_every_element(rng):
    ca = make_ca(relu=False)
    e = rng.standard_normal((6, 5))
    ca(e)
    mu, logvar, std, _ = ca._saved
    per_element = 0.5 * (mu**2 + np.exp(logvar) - logvar - 1)
    assert ca.kl().shape == ()
    assert float(ca.kl()) == pytest.approx(per_element.mean(), rel=1e-14)
    # = the batch mean of the per-example KL (a sum over j), divided by c_dim
    per_example = 0.5 * (mu**2 + np.exp(logvar) - logvar - 1).sum(axis=1)
    assert float(ca.kl()) == pytest.approx(per_example.mean() / 3, rel=1e-14)
    np.testing.assert_allclose(std, np.exp(logvar / 2), rtol=1e-15)
    # KL = 0 exactly at mu = 0, log sigma^2 = 0, and then c = eps
    for p in ca.parameters():
        p.data[...] = 0
    ca.rng = np.random.default_rng(9)
    c = ca(e)
    assert float(ca.kl()) == 0.0
    np.testing.assert_array_equal(c, np.random.default_rng(9).standard_normal((6, 3)))


def test_ca_backward_is_the_derivation_piece_by_piece(rng):
    """dc/dmu = 1, dc/dlogvar = exp(logvar/2) eps / 2, dKL/dmu = mu / M, dKL/dlogvar =
    (exp(logvar) - 1) / (2M), joined at (mu, logvar), through the ReLU's mask and fc."""
    ca = make_ca(relu=True)
    e, g = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    w = 1.7
    ca.rng = np.random.default_rng(1)
    c = ca(e)
    mu, logvar, _, eps = ca._saved
    np.testing.assert_allclose(c, mu + np.exp(logvar / 2) * eps, rtol=1e-14)
    m = mu.size
    dmu = g + w * mu / m
    dlogvar = g * np.exp(logvar / 2) * eps / 2 + w * (np.exp(logvar) - 1) / (2 * m)
    h_pre = e @ ca.fc.weight.data.T + ca.fc.bias.data
    dh = np.concatenate([dmu, dlogvar], axis=1) * (h_pre > 0)
    ca.zero_grad()
    de = ca.backward(g, kl_weight=w)
    np.testing.assert_allclose(de, dh @ ca.fc.weight.data, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ca.fc.weight.grad, dh.T @ e, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ca.fc.bias.grad, dh.sum(axis=0), rtol=1e-12, atol=1e-14)


def test_ca_kl_weight_defaults_to_the_layers_and_zero_is_the_sample_path_alone(rng):
    e, g = rng.standard_normal((3, 5)), rng.standard_normal((3, 3))

    def de(ca, **kwargs):
        ca.rng = np.random.default_rng(2)
        ca(e)
        return ca.backward(g, **kwargs)

    assert nn.ConditioningAugmentation(5, 3).kl_weight == 2.0  # the paper code's COEFF.KL
    ca = make_ca(kl_weight=0.5)
    np.testing.assert_array_equal(de(ca), de(ca, kl_weight=0.5))
    assert not np.allclose(de(ca, kl_weight=0.0), de(ca))
    # Inside a Sequential (which passes no kl_weight) the layer's own weight is used.
    seq = nn.Sequential(ca, nn.Tanh())
    ca.rng = np.random.default_rng(2)
    y = seq(e)
    d_seq = seq.backward(g / (1 - y**2))  # Tanh's backward multiplies by 1 - y^2: dc = g
    np.testing.assert_allclose(d_seq, de(ca), rtol=1e-10, atol=1e-13)


def test_ca_samples_around_mu_with_std_sigma(rng):
    ca = make_ca(relu=False)
    e = np.repeat(rng.standard_normal((1, 5)), 20000, axis=0)
    ca.rng = np.random.default_rng(0)
    c = ca(e)
    mu, logvar, _, _ = ca._saved
    np.testing.assert_allclose(c.mean(axis=0), mu[0], atol=4 * np.exp(logvar[0] / 2).max() / 141)
    np.testing.assert_allclose(c.std(axis=0), np.exp(logvar[0] / 2), rtol=0.03)
    np.testing.assert_array_equal(ca.mean(e[:2]), mu[:2])


def test_ca_draws_from_its_stream_in_both_modes_and_mean_keeps_the_cache(rng):
    ca = make_ca()
    e, g = rng.standard_normal((3, 5)), rng.standard_normal((3, 3))
    ca.rng = np.random.default_rng(4)
    c_train = ca(e)
    de_train = ca.backward(g)
    ca.eval()
    ca.rng = np.random.default_rng(4)
    np.testing.assert_array_equal(ca(e), c_train)  # evaluation samples too (the paper's code)
    ca.mean(rng.standard_normal((7, 5)))  # another batch's means: the cache is untouched
    np.testing.assert_array_equal(ca.backward(g), de_train)
    assert not np.array_equal(ca(e), c_train)  # the stream moved on: a fresh eps
    # A shared copy draws from the same stream; parameters and state_dict are fc's.
    assert ca.shared_copy().rng is ca.rng
    assert [n for n, _ in ca.named_parameters()] == ["fc.weight", "fc.bias"]
    assert ca.state_dict().keys() == {"fc.weight", "fc.bias"}
    assert ca.fc.weight.shape == (6, 5) and ca.fc.bias.shape == (6,)
    assert ca.backward(g, input_grad=False) is None
    assert repr(make_ca(relu=False)) == "ConditioningAugmentation(5 -> 3, relu=False)"


def test_ca_errors_are_one_line(rng):
    cases = [
        (lambda: nn.ConditioningAugmentation(0, 3), ValueError, r"sizes must be positive"),
        (lambda: nn.ConditioningAugmentation(4, 2.5), ValueError, r"sizes must be integers"),
        (lambda: nn.ConditioningAugmentation(4, 2, kl_weight=-1), ValueError,
         r"kl_weight must be a finite number >= 0, got -1"),
        (lambda: nn.ConditioningAugmentation(4, 2, kl_weight=float("nan")), ValueError,
         r"kl_weight must be a finite number >= 0"),
        (lambda: nn.ConditioningAugmentation(4, 2, kl_weight="2"), TypeError,
         r"kl_weight must be a number, got str"),
        (lambda: nn.ConditioningAugmentation(4, 2, rng=7), TypeError, r"rng must be a random"),
        (lambda: nn.ConditioningAugmentation(4, 2)(np.zeros((3, 5), np.float32)), ValueError,
         r"ConditioningAugmentation\(4 -> 2\): expected input \(batch, 4\), got \(3, 5\)"),
        (lambda: nn.ConditioningAugmentation(4, 2)(np.zeros((3, 4))), TypeError,
         r"input has dtype float64 but the layer computes in float32"),
        (lambda: nn.ConditioningAugmentation(4, 2).kl(), RuntimeError,
         r"backward\(\) called before forward\(\)"),
        (lambda: nn.ConditioningAugmentation(4, 2).backward(np.zeros((3, 2))), RuntimeError,
         r"backward\(\) called before forward\(\)"),
    ]  # fmt: skip
    for make, error, message in cases:
        with pytest.raises(error, match=message) as info:
            make()
        assert "\n" not in str(info.value)
    ca = make_ca()
    ca(rng.standard_normal((3, 5)))
    with pytest.raises(ValueError, match="kl_weight must be a finite number >= 0, got -0.5"):
        ca.backward(np.zeros((3, 3)), kl_weight=-0.5)
    with pytest.raises(NotImplementedError, match="no double_backward"):
        ca.backward(np.zeros((3, 3)), create_graph=True)


def test_ca_matches_pytorch_ca_net_and_kl_loss(rng):
    """The paper code's CA_NET (fc, ReLU, split, eps * std + mu) and KL_loss (mean over
    every element), written in torch; autograd's gradients of sum(c * g) + w * KL."""
    torch = torch_or_skip()
    for relu in (True, False):
        ours = make_ca(embed_dim=6, c_dim=4, relu=relu, seed=5)
        fc = torch.nn.Linear(6, 8).double()
        fc.load_state_dict({k.removeprefix("fc."): torch.from_numpy(v.copy())
                            for k, v in ours.state_dict().items()})  # fmt: skip
        e, g, w = rng.standard_normal((5, 6)), rng.standard_normal((5, 4)), 2.0
        ours.rng = np.random.default_rng(8)
        c = ours(e)
        eps = torch.from_numpy(np.random.default_rng(8).standard_normal((5, 4)))
        e_t = torch.from_numpy(e).requires_grad_(True)
        x = fc(e_t)
        x = torch.relu(x) if relu else x
        mu, logvar = x[:, :4], x[:, 4:]
        c_t = eps * logvar.mul(0.5).exp() + mu
        kld = -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())
        (c_t * torch.from_numpy(g)).sum().add(w * kld).backward()
        np.testing.assert_allclose(c, c_t.detach().numpy(), rtol=1e-12, atol=1e-14)
        assert float(ours.kl()) == pytest.approx(kld.item(), rel=1e-12)
        ours.zero_grad()
        np.testing.assert_allclose(ours.backward(g, kl_weight=w), e_t.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(ours.fc.weight.grad, fc.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(ours.fc.bias.grad, fc.bias.grad.numpy(), rtol=1e-10, atol=1e-14)
        # and torch's own KL between the two Gaussians, element by element
        normal = torch.distributions.Normal
        kl_each = torch.distributions.kl_divergence(
            normal(mu, logvar.mul(0.5).exp()), normal(torch.zeros_like(mu), torch.ones_like(mu))
        )
        assert float(ours.kl()) == pytest.approx(kl_each.mean().item(), rel=1e-12)


# --- float32 in, float32 out ----------------------------------------------------------------


def test_float32_in_float32_out(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    up = nn.Upsample(2)
    y = up(x)
    assert y.dtype == np.float32
    assert up.backward(rng.standard_normal(y.shape).astype(np.float32)).dtype == np.float32
    ca = nn.ConditioningAugmentation(5, 3, rng=np.random.default_rng(0))
    c = ca(rng.standard_normal((4, 5)).astype(np.float32))
    assert c.dtype == np.float32 and ca.kl().dtype == np.float32
    de = ca.backward(rng.standard_normal((4, 3)).astype(np.float32), kl_weight=2.0)
    assert de.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in ca.parameters())
    with pytest.raises(TypeError, match="grad_out has dtype float64"):
        up.backward(np.zeros(y.shape))


# --- the strict CuPy stand-in -------------------------------------------------------------------


def two_stage_steps(backend):
    """A StackGAN-like generator step, twice: CA on a text embedding, a Stage-I map
    (Linear, Unflatten) at 4x4, Upsample(2) and a conv to an 8x8 image; an L1 pull
    towards a target plus the KL; one Adam step. Returns the losses (on the backend)."""
    be = get_backend(backend)
    rng = np.random.default_rng(3)
    ca = nn.ConditioningAugmentation(6, 3, init_rng=rng)
    g = nn.Sequential(
        nn.Linear(3, 2 * 4 * 4, rng=rng),
        nn.Unflatten(1, (2, 4, 4)),
        nn.Upsample(2),
        nn.Conv2d(2, 1, 3, padding=1, rng=rng),
        nn.Tanh(),
    )
    ca.to(be)
    g.to(be)
    ca.rng = be.default_rng(11)  # the model's noise stream, on the device
    adam = optim.Adam(ca.parameters() + g.parameters(), lr=2e-3, betas=(0.5, 0.999))
    e = be.asarray(rng.standard_normal((4, 6)).astype(np.float32))
    target = be.asarray(np.tanh(rng.standard_normal((4, 1, 8, 8))).astype(np.float32))
    l1 = losses.L1Loss()
    values = []
    for _ in range(2):
        adam.zero_grad()
        image = g(ca(e))
        values += [l1(image, target), ca.kl()]
        dc = g.backward(l1.backward())
        ca.backward(dc, input_grad=False, kl_weight=2.0)
        adam.step()
    return ca, g, be.xp.stack(values)


def test_a_two_stage_step_through_the_cupy_stand_in_reads_nothing_back(fake_cupy):
    ca_numpy, g_numpy, expected = two_stage_steps("numpy")
    ca_cupy, g_cupy, got = two_stage_steps("cupy")
    assert fake_cupy.reads == []  # two training steps, eps drawn on the device, no sync
    np.testing.assert_array_equal(to_host(got), expected)
    for ours, theirs in ((ca_cupy, ca_numpy), (g_cupy, g_numpy)):
        state = theirs.state_dict()
        for name, value in ours.state_dict().items():
            np.testing.assert_array_equal(value, state[name], err_msg=name)


def test_ca_refuses_a_generator_of_the_other_backend(fake_cupy):
    be = get_backend("cupy")
    ca = nn.ConditioningAugmentation(4, 2, rng=np.random.default_rng(0)).to(be)
    with pytest.raises(TypeError, match="rng draws numpy arrays but the input is a cupy array"):
        ca(be.asarray(np.zeros((2, 4), np.float32)))


# --- captions: measures -----------------------------------------------------------------------


def bar(width, length=20, size=28):
    """An upright bar, ``width`` pixels wide and ``length`` long, in a size x size image."""
    x = np.zeros((size, size))
    top, left = (size - length) // 2, (size - width) // 2
    x[top : top + length, left : left + width] = 1.0
    return x


def diagonal_line(slope_sign, size=28):
    """A one-pixel line through the centre whose column moves by slope_sign per row upwards."""
    x = np.zeros((size, size))
    for r in range(4, 24):
        x[r, 14 + slope_sign * (14 - r)] = 1.0
    return x


def test_stroke_width_is_ink_over_half_the_boundary():
    # A w x L bar: ink w L, boundary 2 (w + L) less 2 - sqrt(2) (the forward differences
    # meet one corner diagonally: sqrt(1 + 1) where the other corners count 1 + 1), so
    # 2 ink / boundary is about w L / (w + L): the width, less the ends' share.
    for w in (1, 2, 3, 5):
        thickness, _ = captions.measure(bar(w)[None])
        boundary = 2 * (w + 20) - (2 - np.sqrt(2))
        assert thickness[0] == pytest.approx(2 * w * 20 / boundary, rel=1e-12)
    widths = captions.measure(np.stack([bar(w) for w in (1, 2, 3, 4)]))[0]
    assert np.all(np.diff(widths) > 0)
    # Soft edges do not change it much: a bar whose edge columns are half-covered.
    soft = bar(3)
    soft[4:24, 11] = soft[4:24, 15] = 0.5  # beside columns 12-14
    assert captions.measure(soft[None])[0][0] == pytest.approx(4 * 20 / 24, rel=0.15)


def test_slant_is_the_shear_of_the_second_moments():
    x = np.stack([diagonal_line(+1), diagonal_line(-1), bar(3), np.zeros((28, 28))])
    _, slant = captions.measure(x)
    np.testing.assert_allclose(slant, [1.0, -1.0, 0.0, 0.0], atol=1e-12)  # blank: 0, no NaN
    # A bar sheared right by 1/4 column per row (upwards) reads about 1/4.
    sheared = np.zeros((28, 28))
    for r in range(4, 24):
        c = 12 + (24 - r) // 4
        sheared[r, c : c + 3] = 1.0
    assert captions.measure(sheared[None])[1][0] == pytest.approx(0.25, abs=0.03)


def test_measure_takes_uint8_unit_and_gan_range_images_in_every_layout(rng):
    u8 = (rng.uniform(0, 1, (5, 28, 28)) ** 4 * 255).astype(np.uint8)
    unit = u8.astype(np.float32) / 255
    expected = captions.measure(u8)
    for images, gan in ((unit, False), (unit * 2 - 1, True), (unit[:, None], False),
                        (unit.reshape(5, 784), False)):  # fmt: skip
        for got, want in zip(captions.measure(images, gan_range=gan), expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"pass gan_range=True for a generator's output"):
        captions.measure(unit * 2 - 1)
    with pytest.raises(ValueError, match=r"expected images \(N, H, W\)"):
        captions.measure(unit.reshape(5, 28 * 4, 7)[:, :, :, None])
    with pytest.raises(TypeError, match="uint8 or floating-point"):
        captions.measure(u8.astype(np.int32))


# --- captions: bins, captions, parsing ----------------------------------------------------------


def digit_like_images(rng, n=300):
    """Bars of varied width and shear, standing in for digits (the bins are fitted on them)."""
    images = np.zeros((n, 28, 28))
    widths = rng.integers(1, 6, n)
    shifts = rng.uniform(-0.5, 0.5, n)
    for i in range(n):
        for r in range(4, 24):
            c = round(12 + shifts[i] * (14 - r))
            images[i, r, c : c + widths[i]] = 1.0
    return images


def test_bins_cut_the_training_set_into_thirds_and_travel_with_a_dict(rng):
    images = digit_like_images(rng)
    scheme = captions.CaptionScheme.fit("mnist", images)
    bins = scheme.bins(images)
    assert bins.shape == (300, 2) and bins.dtype == np.int64
    for a in range(2):
        shares = np.bincount(bins[:, a], minlength=3) / 300
        assert shares.min() > 0.2 and shares.max() < 0.45, shares  # ties between equal bars
    np.testing.assert_array_equal(scheme.thickness_bin(images), bins[:, 0])
    again = captions.CaptionScheme.from_dict(scheme.to_dict())
    assert again == scheme
    np.testing.assert_array_equal(again.bins(images * 2 - 1, gan_range=True), bins)
    # Thicker bars fall in higher thickness bins; right-leaning ones in higher slant bins.
    thickness, slant = scheme.measure(images)
    order = np.argsort(thickness)
    assert np.all(np.diff(bins[order, 0]) >= 0)
    assert np.all(np.diff(bins[np.argsort(slant), 1]) >= 0)


def test_every_caption_parses_back_to_its_label_and_bins():
    mnist = captions.CaptionScheme.from_dict({"name": "mnist", "cuts": [[2.0, 2.6], [0.0, 0.2]]})
    seen = set()
    for label in range(10):
        for t in range(3):
            for s in range(3):
                text = mnist.caption(label, t, s)
                assert mnist.parse(text) == (label, t, s)
                seen.add(text)
    assert len(seen) == 90
    assert mnist.caption(7, 2, 0) == "a thick left-slanted seven"
    assert mnist.caption(2, 0, 1) == "a thin upright two"
    assert mnist.caption(8) == "an eight"
    assert mnist.caption(7, None, 1) == "an upright seven"
    assert mnist.parse("a thin seven") == (7, 0, None)
    assert mnist.parse("Seven  THICK") == (7, 2, None)  # any order, any case, no article
    fashion = captions.CaptionScheme.from_dict({"name": "fashion", "cuts": [[0.5, 0.7]]})
    assert fashion.caption(9, 0) == "a dark ankle boot"
    assert fashion.caption(0, 2) == "a light t-shirt"
    assert fashion.caption(8) == "a bag"
    for label in range(10):
        for t in range(3):
            assert fashion.parse(fashion.caption(label, t)) == (label, t, None)
    assert fashion.parse("an ankle boot") == (9, None, None)


def test_captions_for_images_name_the_label_and_the_measured_bins(rng):
    images = digit_like_images(rng, 30)
    scheme = captions.CaptionScheme.fit("mnist", images)
    labels = rng.integers(0, 10, 30)
    texts = scheme.captions_for(images, labels)
    bins = scheme.bins(images)
    assert [scheme.parse(t) for t in texts] == [
        (int(k), int(b[0]), int(b[1])) for k, b in zip(labels, bins, strict=True)
    ]


def test_caption_errors_are_one_line_and_name_the_known_words():
    mnist = captions.CaptionScheme.from_dict({"name": "mnist", "cuts": [[2.0, 2.6], [0.0, 0.2]]})
    known = "known words: a, an, thin, medium, thick, left-slanted, upright, right-slanted, zero,"
    cases = [
        ("", "empty caption"),
        ("   \n ", "empty caption"),
        ("a blue seven", "unknown word 'blue' for mnist captions"),
        ("a dark seven", "unknown word 'dark' for mnist captions"),  # a Fashion word
        ("a thick", "caption 'a thick' names no class"),
        ("a seven eight", "names two classes"),
        ("a thin thick seven", "names its thickness twice"),
    ]
    for text, message in cases:
        with pytest.raises(ValueError) as info:
            mnist.parse(text)
        assert message in str(info.value) and known in str(info.value)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="unknown word 'ankle'"):  # half a two-word name
        captions.CaptionScheme.from_dict({"name": "fashion", "cuts": [[0.5, 0.7]]}).parse(
            "an ankle"
        )
    with pytest.raises(ValueError, match="unknown caption scheme 'cifar'; known: mnist, fashion"):
        captions.CaptionScheme.fit("cifar", np.zeros((3, 28, 28)))
    with pytest.raises(ValueError, match=r"label must lie in \[0, 10\), got 10"):
        mnist.caption(10, 0, 0)
    with pytest.raises(ValueError, match=r"bin must lie in \[0, 3\), got 3"):
        mnist.caption(1, 3, 0)
    with pytest.raises(ValueError, match="fashion captions have 1 attribute"):
        captions.CaptionScheme.from_dict({"name": "fashion", "cuts": [[0.5, 0.7]]}).caption(1, 0, 2)
    for bad in ("", "a zebra"):
        with pytest.raises(ValueError, match="known words: a, an, zero") as info:
            captions.tokens(bad)
        assert "\n" not in str(info.value)


# --- captions: the fixed text encoder ----------------------------------------------------------


def test_encode_is_the_mean_of_fixed_word_vectors(rng):
    texts = ["a thick right-slanted seven", "an upright eight", "a dark ankle boot"]
    emb = captions.encode(texts, dim=40, seed=1)
    assert emb.shape == (3, 40) and emb.dtype == np.float32
    v = captions.word_vectors(40, seed=1)
    ids = captions.TOKEN_IDS
    np.testing.assert_allclose(
        emb[2], (v[ids["dark"]] + v[ids["ankle boot"]]) / 2, rtol=1e-6
    )  # articles skipped, the two-word name one word
    np.testing.assert_array_equal(captions.encode(texts, 40, seed=1), emb)  # fixed
    assert not np.allclose(captions.encode(texts, 40, seed=2), emb)
    np.testing.assert_array_equal(
        captions.encode([captions.token_ids(t) for t in texts], 40, seed=1), emb
    )
    assert abs(np.linalg.norm(v, axis=1).mean() - 1) < 0.2  # entries N(0, 1/dim)


def test_embed_equals_encoding_the_written_captions_and_keeps_captions_apart(rng):
    mnist = captions.CaptionScheme.from_dict({"name": "mnist", "cuts": [[2.0, 2.6], [0.0, 0.2]]})
    labels = np.repeat(np.arange(10), 9)
    bins = np.stack(np.meshgrid(range(3), range(3), indexing="ij"), -1).reshape(9, 2)
    bins = np.tile(bins, (10, 1))
    texts = [mnist.caption(k, *b) for k, b in zip(labels, bins, strict=True)]
    dim = len(captions.VOCABULARY)
    emb = mnist.embed(labels, bins, dim, seed=0)
    np.testing.assert_allclose(emb, captions.encode(texts, dim, seed=0), rtol=1e-6, atol=1e-7)
    # dim >= vocabulary: independent word vectors, so all 90 captions stay apart
    distances = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    assert distances[~np.eye(90, dtype=bool)].min() > 0.1
    only_labels = mnist.embed(labels, np.zeros((90, 0), np.int64), dim)
    np.testing.assert_allclose(only_labels[0], captions.encode(["a zero"], dim)[0], rtol=1e-6)


def test_encode_errors():
    with pytest.raises(ValueError, match="dim must be an integer >= 1, got 0"):
        captions.encode(["a seven"], 0)
    with pytest.raises(ValueError, match="names nothing"):
        captions.encode(["a an"], 8)
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, "):
        captions.encode([[999]], 8)
    with pytest.raises(ValueError, match="unknown word 'zebra'"):
        captions.encode(["a zebra"], 8)


def test_bin_agreement_and_its_shuffled_chance_baseline(rng):
    bins = rng.integers(0, 3, 3000)
    share, chance = captions.bin_agreement(bins, bins, seed=0)
    assert share == 1.0 and chance == pytest.approx(1 / 3, abs=0.03)
    other = rng.integers(0, 3, 3000)
    share, chance = captions.bin_agreement(other, bins)
    assert share == pytest.approx(1 / 3, abs=0.03) and chance == pytest.approx(1 / 3, abs=0.03)
    with pytest.raises(ValueError, match="3 image bins but 2 captions"):
        captions.bin_agreement([0, 1, 2], [0, 1])


@pytest.mark.parametrize("name", ["mnist", "fashion"])
def test_real_training_sets_give_three_equally_frequent_bins_on_the_test_split(name):
    from minigan.data import DataError, load_fashion_mnist, load_mnist

    try:
        scheme = captions.CaptionScheme.from_training_set(name, download=False)
        images, labels = (load_mnist if name == "mnist" else load_fashion_mnist)(
            "test", download=False
        )
    except DataError as error:
        pytest.skip(f"{name} is not on this machine: {error}")
    bins = scheme.bins(images)
    for a in range(bins.shape[1]):
        shares = np.bincount(bins[:, a], minlength=3) / len(bins)
        assert shares.min() > 0.28 and shares.max() < 0.40, shares
    texts = scheme.captions_for(images[:500], labels[:500])
    parsed = np.array([scheme.parse(t)[1] for t in texts])
    share, chance = captions.bin_agreement(scheme.thickness_bin(images[:500]), parsed)
    assert share == 1.0 and chance < 0.45
