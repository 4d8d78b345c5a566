"""The mode-collapse benchmarks' pieces: Maxout, the 2-D mixtures and Stacked MNIST, and
the measures of minigan.metrics.modes.

Maxout: float64 central-difference checks of backward and double backward (away from
ties, which each test asserts), the derivation piece by piece, ties, PyTorch parity
(forward, backward, and double backward through torch autograd), float32 in and out, and
a gradient-penalty step through the strict CuPy stand-in with no host sync. Data: shapes,
seeds, the papers' mode layouts. Measures: known cases (samples at the modes, one mode,
uniform noise, real Stacked MNIST through a stand-in classifier). Fast: no training.
"""

import numpy as np
import pytest

from minigan import nn, optim
from minigan.backend import get_backend, to_host
from minigan.data import (
    DataError,
    grid_centres,
    grid_mixture,
    load_mnist,
    ring_centres,
    ring_mixture,
    stacked_mnist,
)
from minigan.gradcheck import check_double_backward, check_module
from minigan.metrics import modes
from minigan.metrics.modes import (
    channel_digits,
    grid_scores,
    mixture_scores,
    ring_scores,
    stacked_mnist_modes,
)


def torch_or_skip():
    return pytest.importorskip("torch", reason="PyTorch is not installed: parity skipped")


# --- Maxout ---------------------------------------------------------------------------------


def make_maxout(in_features=5, out_features=3, pieces=4, seed=0, dtype=np.float64):
    return nn.Maxout(
        in_features, out_features, pieces, rng=np.random.default_rng(seed), dtype=dtype
    )


def pieces_of(layer, x):
    """z[n, j, k] = (x W^T + b) viewed as (N, out, K), computed here by plain loops."""
    n, K = len(x), layer.pieces
    z = np.empty((n, layer.out_features, K))
    for j in range(layer.out_features):
        for k in range(K):
            z[:, j, k] = x @ layer.weight.data[j * K + k] + layer.bias.data[j * K + k]
    return z


def tie_gap(layer, x):
    """The smallest margin between a unit's winning piece and its runner-up."""
    z = np.sort(pieces_of(layer, x), axis=2)
    return (z[:, :, -1] - z[:, :, -2]).min()


# The layer is bilinear in (x, W) between ties: L = sum(y r) is linear in x with W held,
# and linear in W and b with x held, so central differences carry no truncation error,
# only rounding ~1e-16 |L| / h. The one danger is a nudge that changes which piece wins:
# nudging W[jk, i] by h moves one piece by h |x_i|; nudging x_i moves the gap between two
# pieces by at most 2 h max |W| <= 2 h (|W| <= 1/sqrt(in) at init). So h = 1e-5, and each
# test asserts that the smallest winner/runner-up gap exceeds 4 h max(|x|, 1).
STEP = 1e-5


def assert_away_from_ties(layer, x):
    if layer.pieces > 1:
        assert tie_gap(layer, x) > 4 * STEP * max(np.abs(x).max(), 1)


@pytest.mark.parametrize("shape", [(5, 3, 4), (4, 2, 1), (3, 6, 5)])
def test_maxout_backward_matches_finite_differences(rng, assert_gradients_match, shape):
    layer = make_maxout(*shape)
    x = rng.standard_normal((7, shape[0]))
    assert_away_from_ties(layer, x)
    errors = check_module(layer, x, h=STEP)
    assert set(errors) == {"input", "weight", "bias"}
    assert_gradients_match(errors)


def test_maxout_double_backward_matches_finite_differences_of_the_backward(
    rng, assert_gradients_match
):
    # B(dy) = (m * dy) W is linear in dy and in W, and free of x and b between ties: the
    # same step reasoning as above.
    layer = make_maxout(4, 3, 5)
    x = rng.standard_normal((6, 4))
    assert_away_from_ties(layer, x)
    errors = check_double_backward(layer, x, h=STEP)
    assert set(errors) == {"grad_out", "input", "weight", "bias"}
    assert_gradients_match(errors)


def test_maxout_forward_and_backward_are_the_derivation_piece_by_piece(rng):
    layer = make_maxout(5, 3, 4)
    x, g = rng.standard_normal((6, 5)), rng.standard_normal((6, 3))
    z = pieces_of(layer, x)
    y = layer(x)
    np.testing.assert_allclose(y, z.max(axis=2), rtol=1e-14)
    winner = z.argmax(axis=2)
    dz = np.zeros_like(z)
    for n in range(6):
        for j in range(3):
            dz[n, j, winner[n, j]] = g[n, j]  # g to the winning piece only
    dz = dz.reshape(6, 12)
    layer.zero_grad()
    dx = layer.backward(g)
    np.testing.assert_allclose(dx, dz @ layer.weight.data, rtol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, dz.T @ x, rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, dz.sum(axis=0), rtol=1e-12)
    # Only the winners' rows of W get a gradient.
    losers = np.ones((6, 3, 4), bool)
    losers[np.arange(6)[:, None], np.arange(3)[None], winner] = False
    never_won = losers.all(axis=0).reshape(12)
    assert never_won.any()
    np.testing.assert_array_equal(layer.weight.grad[never_won], 0)
    assert layer.backward(g, input_grad=False) is None
    # Double backward: the forward map of gg (no bias) at the winners, and dW += dz^T gg.
    layer(x)
    layer.backward(g, create_graph=True)
    layer.zero_grad()
    gg = rng.standard_normal((6, 5))
    gg_out, gx = layer.double_backward(gg)
    assert gx is None
    through = (gg @ layer.weight.data.T).reshape(6, 3, 4)
    np.testing.assert_allclose(gg_out, np.take_along_axis(through, winner[..., None], 2)[..., 0])
    np.testing.assert_allclose(layer.weight.grad, dz.T @ gg, rtol=1e-12)
    np.testing.assert_array_equal(layer.bias.grad, 0)


def test_maxout_with_one_piece_is_a_linear_layer(rng):
    layer = make_maxout(4, 3, 1)
    linear = nn.Linear(4, 3, dtype=np.float64)
    linear.load_state_dict(layer.state_dict())
    x, g = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    np.testing.assert_allclose(layer(x), linear(x), rtol=1e-15)
    np.testing.assert_allclose(layer.backward(g), linear.backward(g), rtol=1e-15)
    np.testing.assert_allclose(layer.weight.grad, linear.weight.grad, rtol=1e-15)


def test_a_tie_goes_to_the_first_piece():
    layer = make_maxout(2, 2, 3)
    layer.weight.data[...] = 0
    layer.bias.data[...] = [1, 1, 0, -1, 2, 2]  # unit 0: pieces 0 and 1 tie; unit 1: 1 and 2
    x = np.zeros((1, 2))
    np.testing.assert_array_equal(layer(x), [[1.0, 2.0]])
    layer.zero_grad()
    layer.backward(np.array([[3.0, 5.0]]))
    np.testing.assert_array_equal(layer.bias.grad, [3, 0, 0, 0, 5, 0])


def test_maxout_errors_are_one_line():
    for bad in ((0, 3, 2), (4, 3, 0), (4, 2.5, 2), (4, 3, True)):
        with pytest.raises(ValueError, match=r"^Maxout: sizes must be") as info:
            nn.Maxout(*bad)
        assert "\n" not in str(info.value)
    layer = nn.Maxout(4, 3, 2)
    assert repr(layer) == "Maxout(4 -> 3, pieces=2)"
    assert layer.weight.shape == (6, 4) and layer.bias.shape == (6,)
    with pytest.raises(ValueError, match=r"Maxout\(4 -> 3, pieces=2\): expected input"):
        layer(np.zeros((2, 5), np.float32))
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        nn.Maxout(4, 3, 2).backward(np.zeros((2, 3), np.float32))
    layer(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="grad_out"):
        layer.backward(np.zeros((2, 6), np.float32))
    with pytest.raises(RuntimeError, match="create_graph=True"):
        layer.double_backward(np.zeros((2, 4), np.float32))


def test_maxout_init_is_pytorchs_linear_to_out_times_pieces():
    layer = nn.Maxout(100, 20, 5, rng=np.random.default_rng(0))
    bound = 1 / np.sqrt(100)
    for p in (layer.weight.data, layer.bias.data):
        assert p.dtype == np.float32 and np.abs(p).max() <= bound
        assert np.abs(p).max() > 0.9 * bound


def test_float32_in_float32_out(rng):
    layer = nn.Maxout(4, 3, 2, rng=np.random.default_rng(0))
    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = layer(x)
    assert y.dtype == np.float32
    dx = layer.backward(rng.standard_normal((5, 3)).astype(np.float32), create_graph=True)
    assert dx.dtype == np.float32
    gg_out, _ = layer.double_backward(rng.standard_normal((5, 4)).astype(np.float32))
    assert gg_out.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in layer.parameters())
    with pytest.raises(TypeError, match="grad_out has dtype float64"):
        layer.backward(np.zeros(y.shape))


def critic_and_twin(rng):
    """The papers' 2-D critic in small: Pack(2), two Maxout layers, a Linear."""
    from minigan.testing.pytorch import to_torch

    ours = nn.Sequential(
        nn.Pack(2),
        nn.Maxout(4, 6, 5, rng=rng, dtype=np.float64),
        nn.Maxout(6, 5, 5, rng=rng, dtype=np.float64),
        nn.Linear(5, 1, rng=rng, dtype=np.float64),
    )
    return ours, to_torch(ours)


def test_maxout_matches_pytorch(rng):
    torch = torch_or_skip()
    from minigan.testing.pytorch import to_torch

    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        ours = nn.Maxout(6, 4, 3, rng=np.random.default_rng(0), dtype=dtype)
        theirs = to_torch(ours)
        x = rng.standard_normal((5, 6)).astype(dtype)
        y = ours(x)
        g = rng.standard_normal(y.shape).astype(dtype)
        x_t = torch.from_numpy(x).requires_grad_(True)
        y_t = theirs(x_t)
        y_t.backward(torch.from_numpy(g))
        np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(ours.backward(g), x_t.grad.numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=tol, atol=tol)


def test_double_backward_through_a_packed_maxout_critic_matches_torch_autograd(rng):
    """S = sum(c * dD/dx) differentiated by torch autograd (create_graph), against
    Sequential.double_backward through Pack, Maxout, Maxout and Linear."""
    torch = torch_or_skip()
    ours, theirs = critic_and_twin(rng)
    x = rng.standard_normal((6, 2))
    dy = rng.standard_normal((3, 1))
    c = rng.standard_normal((6, 2))
    ours(x)
    dx = ours.backward(dy, create_graph=True)
    ours.zero_grad()
    gg_out, gx = ours.double_backward(c)
    x_t = torch.from_numpy(x).requires_grad_(True)
    dy_t = torch.from_numpy(dy).requires_grad_(True)
    (dx_t,) = torch.autograd.grad(theirs(x_t), x_t, dy_t, create_graph=True)
    np.testing.assert_allclose(dx, dx_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    (dx_t * torch.from_numpy(c)).sum().backward()
    np.testing.assert_allclose(gg_out, dy_t.grad.numpy(), rtol=1e-12, atol=1e-14)
    assert gx is None  # piecewise linear throughout: no f'' terms
    assert x_t.grad is None or float(x_t.grad.abs().max()) == 0.0
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        expected = grads[name].grad
        expected = np.zeros(p.shape) if expected is None else expected.numpy()
        np.testing.assert_allclose(p.grad, expected, rtol=1e-11, atol=1e-13, err_msg=name)


def penalty_steps(backend):
    """Two critic steps of a gradient-penalty-like loss, sum(c * dD/dx), on a packed
    Maxout critic: forward, backward(create_graph), double backward, one Adam step."""
    be = get_backend(backend)
    rng = np.random.default_rng(4)
    critic = nn.Sequential(
        nn.Pack(2),
        nn.Maxout(4, 6, 5, rng=rng),
        nn.Maxout(6, 5, 5, rng=rng),
        nn.Linear(5, 1, rng=rng),
    )
    critic.to(be)
    adam = optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
    x = be.asarray(rng.standard_normal((8, 2)).astype(np.float32))
    c = be.asarray(rng.standard_normal((8, 2)).astype(np.float32))
    ones = be.xp.ones((4, 1), dtype=np.float32)
    values = []
    for _ in range(2):
        adam.zero_grad()
        scores = critic(x)
        dx = critic.backward(ones, create_graph=True)
        values += [scores.sum(), (dx * c).sum()]
        critic.double_backward(c, input_grad=False)
        adam.step()
    return critic, be.xp.stack(values)


def test_a_maxout_penalty_step_through_the_cupy_stand_in_reads_nothing_back(fake_cupy):
    numpy_critic, expected = penalty_steps("numpy")
    cupy_critic, got = penalty_steps("cupy")
    assert fake_cupy.reads == []
    np.testing.assert_array_equal(to_host(got), expected)
    state = numpy_critic.state_dict()
    for name, value in cupy_critic.state_dict().items():
        np.testing.assert_array_equal(value, state[name], err_msg=name)


# --- the 2-D mixtures and Stacked MNIST --------------------------------------------------------


def test_the_ring_and_the_grid_have_the_papers_modes():
    ring = ring_centres()
    assert ring.shape == (8, 2)
    np.testing.assert_allclose(ring[0], [1, 0], atol=1e-15)
    np.testing.assert_allclose(ring[2], [0, 1], atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 1, rtol=1e-15)
    np.testing.assert_allclose(np.diff(np.unwrap(np.arctan2(ring[:, 1], ring[:, 0]))), np.pi / 4)
    grid = grid_centres()
    assert grid.shape == (25, 2)
    assert grid[:5].tolist() == [[-4, -4], [-4, -2], [-4, 0], [-4, 2], [-4, 4]]
    assert sorted(map(tuple, grid.tolist())) == [
        (a, b) for a in range(-4, 5, 2) for b in range(-4, 5, 2)
    ]


@pytest.mark.parametrize(
    "draw, centres, std",
    [
        (lambda n, s: ring_mixture(n, s), ring_centres(), 0.01),
        (lambda n, s: grid_mixture(n, s), grid_centres(), 0.05),
        (lambda n, s: ring_mixture(n, s, modes=3, radius=2.0, std=0.1), ring_centres(3, 2.0), 0.1),
    ],
)
def test_mixture_points_pick_their_mode_uniformly_then_add_gaussian_noise(draw, centres, std):
    n = 40000
    points, got_centres = draw(n, 0)
    assert points.shape == (n, 2) and points.dtype == np.float32
    assert got_centres.dtype == np.float32
    np.testing.assert_allclose(got_centres, centres, rtol=1e-6, atol=1e-7)
    offsets = points[:, None, :] - centres[None].astype(np.float32)
    nearest = np.linalg.norm(offsets, axis=2).argmin(axis=1)
    noise = points - centres[nearest]
    assert np.std(noise) == pytest.approx(std, rel=0.02)  # per coordinate
    assert abs(noise.mean()) < 5 * std / np.sqrt(2 * n)
    counts = np.bincount(nearest, minlength=len(centres))
    expected = n / len(centres)
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected)  # multinomial spread
    np.testing.assert_array_equal(draw(n, 0)[0], points)  # seeded
    assert not np.array_equal(draw(n, 1)[0], points)


def test_mixture_arguments_are_checked_in_one_line():
    cases = [
        (lambda: ring_mixture(0, 0), "ring_mixture: n must be an integer >= 1, got 0"),
        (lambda: grid_mixture(2.5, 0), "grid_mixture: n must be an integer >= 1, got 2.5"),
        (lambda: ring_mixture(5, 0, modes=0), "modes must be an integer >= 1"),
        (lambda: ring_mixture(5, 0, radius=0), "radius must be a number > 0"),
        (lambda: grid_mixture(5, 0, std=-1), "std must be a finite number >= 0"),
        (lambda: stacked_mnist(0, 0), "stacked_mnist: n must be an integer >= 1"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            call()
        assert "\n" not in str(info.value)


def mnist_or_skip(split):
    try:
        return load_mnist(split, download=False)
    except DataError as error:
        pytest.skip(f"MNIST not found ({str(error).splitlines()[0]}); set MINIGAN_DATA")


def test_stacked_mnist_draws_each_channel_independently_from_the_split():
    images, labels = mnist_or_skip("test")
    stacked, digits = stacked_mnist(500, 3, "test", download=False)
    assert stacked.shape == (500, 3, 28, 28) and stacked.dtype == np.uint8
    assert digits.shape == (500, 3) and digits.dtype == np.int64
    known = {image.tobytes(): label for image, label in zip(images, labels, strict=True)}
    for image, triple in zip(stacked, digits, strict=True):
        assert [known[channel.tobytes()] for channel in image] == triple.tolist()
    again, again_digits = stacked_mnist(500, 3, "test", download=False)
    np.testing.assert_array_equal(again, stacked)
    np.testing.assert_array_equal(again_digits, digits)
    assert not np.array_equal(stacked_mnist(500, 4, "test", download=False)[0], stacked)
    # Independent channels: the three digits of an image agree no more than chance.
    _, many = stacked_mnist(20000, 0, "test", download=False)
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert (many[:, a] == many[:, b]).mean() == pytest.approx(0.1, abs=0.01)


# --- the 2-D measures ------------------------------------------------------------------------


def test_points_exactly_at_the_modes_capture_all_with_no_divergence():
    for scores, centres in ((ring_scores, ring_centres()), (grid_scores, grid_centres())):
        points = np.tile(centres, (4, 1))
        got = scores(points)
        assert got["modes"] == got["n_modes"] == len(centres)
        assert got["high_quality"] == 1.0
        assert got["reverse_kl"] == pytest.approx(0.0, abs=1e-15)
        assert got["counts"] == [4] * len(centres) and got["n_samples"] == 4 * len(centres)


def test_everything_at_one_mode_is_one_mode_and_log_k():
    for scores, centres in ((ring_scores, ring_centres()), (grid_scores, grid_centres())):
        got = scores(np.repeat(centres[3:4], 100, axis=0) + 1e-4)
        assert got["modes"] == 1 and got["high_quality"] == 1.0
        assert got["reverse_kl"] == pytest.approx(np.log(len(centres)), rel=1e-12)


def test_uniform_noise_has_few_high_quality_points(rng):
    # Over a box of area A, a point is high quality with probability K pi (3 std)^2 / A:
    # ring 8 pi 0.03^2 / 9 = 0.25%, grid 25 pi 0.15^2 / 100 = 1.8%.
    ring = ring_scores(rng.uniform(-1.5, 1.5, (20000, 2)))
    assert ring["high_quality"] == pytest.approx(8 * np.pi * 0.03**2 / 9, rel=0.3)
    grid = grid_scores(rng.uniform(-5, 5, (20000, 2)))
    assert grid["high_quality"] == pytest.approx(25 * np.pi * 0.15**2 / 100, rel=0.15)
    assert grid["modes"] == 25  # spread everywhere, every mode is still hit


def test_real_mixture_points_score_as_the_chi_distribution_says():
    # |noise| / std of a 2-D Gaussian is chi with 2 degrees of freedom: P(< 3) = 1 - e^-4.5.
    for draw, scores in ((ring_mixture, ring_scores), (grid_mixture, grid_scores)):
        points, _ = draw(20000, 5)
        got = scores(points)
        assert got["modes"] == got["n_modes"]
        assert got["high_quality"] == pytest.approx(1 - np.exp(-4.5), abs=0.003)
        assert 0 < got["reverse_kl"] < 0.01


def test_the_rule_is_nearest_mode_then_strictly_within_three_std():
    centres = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    std = 0.1
    points = np.array(
        [
            [0.0, 0.2999999],  # 2.999999 std from mode 0: high quality
            [0.0, -0.3000001],  # just outside: not high quality
            [0.6, 0.0],  # nearer mode 1, but 4 std away: not high quality
            [0.9, 0.1],  # mode 1, 1.41 std
            [0.95, 0.0],  # mode 1
            [5.0, 5.0],
            [5.0, 5.0],
            [5.0, 5.0],
        ]
    )
    got = mixture_scores(points, centres, std)
    assert got["counts"] == [1, 2, 3]
    assert got["modes"] == 3 and got["high_quality"] == 6 / 8
    p = np.array([1, 2, 3]) / 6
    assert got["reverse_kl"] == pytest.approx((p * np.log(3 * p)).sum(), rel=1e-12)
    got = mixture_scores(points[[0, 3, 4]], centres, std)  # mode 2 lost
    assert got["modes"] == 2
    p = np.array([1, 2]) / 3
    assert got["reverse_kl"] == pytest.approx((p * np.log(3 * p)).sum(), rel=1e-12)
    nothing = mixture_scores(points[[1, 2]], centres, std)
    assert nothing["modes"] == 0 and nothing["high_quality"] == 0
    assert np.isnan(nothing["reverse_kl"])


def test_measure_inputs_are_checked():
    with pytest.raises(ValueError, match=r"expected points \(N, 2\)"):
        ring_scores(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        grid_scores(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match=r"expected centres \(K, 2\)"):
        mixture_scores(np.zeros((5, 2)), np.zeros(4), 0.1)
    with pytest.raises(ValueError, match="std must be > 0"):
        mixture_scores(np.zeros((5, 2)), np.zeros((4, 2)), 0)


# --- Stacked MNIST's measures -----------------------------------------------------------------


@pytest.fixture
def true_digit_classifier(monkeypatch):
    """A stand-in for the classifier that knows every MNIST test image's true label."""
    images, labels = mnist_or_skip("test")
    known = {image.tobytes(): label for image, label in zip(images, labels, strict=True)}

    def classify(model, pixels, data=None):
        as_bytes = np.rint(pixels * 255).astype(np.uint8)
        logits = np.zeros((len(pixels), 10))
        logits[np.arange(len(pixels)), [known[row.tobytes()] for row in as_bytes]] = 1.0
        return logits, None

    monkeypatch.setattr(modes, "classify", classify)
    return type("FakeEvaluator", (), {"model": None, "data": None})()


def test_real_stacked_mnist_covers_all_1000_modes_with_a_small_kl(true_digit_classifier):
    images, digits = stacked_mnist(26000, 0, "test", download=False)
    samples = images.astype(np.float32) / 255
    np.testing.assert_array_equal(
        channel_digits(samples[:200], true_digit_classifier), digits[:200]
    )
    got = stacked_mnist_modes(samples, true_digit_classifier)
    assert got["modes"] == 1000 and got["n_samples"] == 26000
    # A multinomial sample's KL to its own uniform law is about (K - 1) / (2 N) = 0.019.
    assert got["kl"] == pytest.approx(999 / (2 * 26000), rel=0.3)


def test_one_repeated_stacked_image_is_one_mode_and_log_1000(true_digit_classifier):
    images, digits = stacked_mnist(1, 7, "test", download=False)
    samples = np.repeat(images.astype(np.float32) / 255, 50, axis=0)
    got = stacked_mnist_modes(samples, true_digit_classifier)
    assert got["modes"] == 1 and got["kl"] == pytest.approx(np.log(1000), rel=1e-12)
    # The mode is 100 d0 + 10 d1 + d2: swapping channels moves it.
    swapped = samples[:, ::-1]
    assert channel_digits(swapped[:1], true_digit_classifier).tolist() == [digits[0][::-1].tolist()]


def test_stacked_mnist_modes_checks_its_samples():
    fake = type("FakeEvaluator", (), {"model": None, "data": None})()
    with pytest.raises(ValueError, match=r"expected samples \(N, 3, 28, 28\)"):
        stacked_mnist_modes(np.zeros((4, 28, 28), np.float32), fake)
    with pytest.raises(TypeError, match="astype"):
        stacked_mnist_modes(np.zeros((4, 3, 28, 28), np.uint8), fake)
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        stacked_mnist_modes(-np.ones((4, 3, 28, 28), np.float32), fake)


def test_the_project_classifier_reads_the_three_channels():
    """Through the real cached classifier (skipped when none is cached: never trained here)."""
    from minigan.metrics.evaluator import Evaluator, cache_file, default_cache_dir

    path = default_cache_dir() / cache_file("mnist")
    if not path.exists():
        pytest.skip(f"no cached MNIST classifier at {path}")
    mnist_or_skip("test")
    evaluator = Evaluator.load(path)
    images, digits = stacked_mnist(600, 1, "test", download=False)
    read = channel_digits(images.astype(np.float32) / 255, evaluator)
    assert (read == digits).mean() > 0.98  # per digit (99.35% on the test set)
    assert (read == digits).all(axis=1).mean() > 0.95  # per image: all three right
