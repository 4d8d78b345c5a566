"""Dropout and GaussianNoise: fixed-draw gradient checks, statistics, modes, seeds, messages."""

import numpy as np
import pytest
from conftest import AFFINE_STEP, SameDraw

from minigan import nn
from minigan.gradcheck import check_module


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_dropout_backward_with_a_fixed_mask_matches_finite_differences(
    rng, assert_gradients_match, p
):
    x = rng.standard_normal((6, 5))
    assert_gradients_match(check_module(SameDraw(nn.Dropout(p)), x, h=AFFINE_STEP))


@pytest.mark.parametrize("std", [0.0, 0.3, 2.0])
def test_gaussian_noise_backward_matches_finite_differences(rng, assert_gradients_match, std):
    x = rng.standard_normal((4, 7))
    assert_gradients_match(check_module(SameDraw(nn.GaussianNoise(std)), x, h=AFFINE_STEP))


def test_dropout_zeroes_a_share_p_and_scales_the_rest_keeping_the_mean():
    p, x = 0.3, np.ones((400, 500), np.float32)
    layer = nn.Dropout(p, rng=np.random.default_rng(0))
    y = layer(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(np.unique(y), np.array([0, 1 / (1 - p)], np.float32))
    # 200 000 Bernoulli draws: the kept share has standard error ~0.001
    assert (y == 0).mean() == pytest.approx(p, abs=0.005)
    assert y.mean() == pytest.approx(1.0, abs=0.01)  # inverted scaling: E[y] = x
    dx = layer.backward(np.full_like(x, 2.0))
    np.testing.assert_array_equal(dx, 2 * y)  # dL/dx = dL/dy * m, the same mask


def test_dropout_extremes_and_eval_mode_are_exact(rng):
    x = rng.standard_normal((3, 4))
    g = rng.standard_normal((3, 4))
    keep_all = nn.Dropout(0.0, rng=rng)
    np.testing.assert_array_equal(keep_all(x), x)
    drop_all = nn.Dropout(1.0, rng=rng)
    y = drop_all(x)
    assert not y.any() and not drop_all.backward(g).any() and np.isfinite(y).all()
    layer = nn.Dropout(0.5, rng=rng)
    assert layer.training and layer.eval() is layer and not layer.training
    assert layer(x) is x and layer.backward(g) is g  # the identity, both ways
    assert layer.train().training


def test_gaussian_noise_adds_noise_of_the_given_std_in_training_only():
    x = np.full((300, 400), 5.0)
    layer = nn.GaussianNoise(0.5, rng=np.random.default_rng(0))
    noise = layer(x) - x
    # 120 000 draws: mean within ~5 standard errors (0.0014 each), std within 1%
    assert abs(noise.mean()) < 0.007 and noise.std() == pytest.approx(0.5, rel=0.01)
    g = np.ones_like(x)
    assert layer.backward(g) is g  # dL/dx = dL/dy: the noise does not depend on x
    layer.eval()
    assert layer(x) is x and layer.backward(g) is g
    assert nn.GaussianNoise(0.1, rng=np.random.default_rng(0))(x.astype(np.float32)).dtype == (
        np.float32
    )


@pytest.mark.parametrize(
    "make", [lambda r: nn.Dropout(0.5, rng=r), lambda r: nn.GaussianNoise(1.0, rng=r)]
)
def test_noise_layers_are_reproducible_from_the_seed(make):
    x = np.ones((4, 6))
    a, b, c = (make(np.random.default_rng(s)) for s in (7, 7, 8))
    first = a(x)
    np.testing.assert_array_equal(first, b(x))
    assert not np.array_equal(first, c(x))
    assert not np.array_equal(first, a(x))  # the stream goes on: a new draw each call


def test_noise_layers_reject_bad_settings_and_input_with_clear_messages(rng, fake_cupy):
    from minigan.backend import get_backend

    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=rf"Dropout: p is a probability .* got {bad}"):
            nn.Dropout(bad)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"GaussianNoise: std must be a finite number >= 0"):
            nn.GaussianNoise(bad)
    with pytest.raises(
        TypeError,
        match=r"Dropout: rng must be a random generator such as numpy.random.default_rng\(seed\)"
        r" or backend.default_rng\(seed\), got int",
    ):
        nn.Dropout(0.5, rng=7)
    with pytest.raises(TypeError, match=r"Dropout\(p=0.5\): input must be a floating-point"):
        nn.Dropout(0.5, rng=rng)(np.ones((2, 2), int))
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        nn.GaussianNoise(0.1).backward(np.ones(2))
    be = get_backend("cupy")
    with pytest.raises(
        TypeError,
        match=r"GaussianNoise\(std=0.3\): rng draws numpy arrays but the input is a cupy array; "
        r"pass rng=get_backend\('cupy'\).default_rng\(seed\)",
    ):
        nn.GaussianNoise(0.3, rng=rng)(be.asarray(np.ones((2, 2))))
    with pytest.raises(TypeError, match=r"rng draws cupy arrays but the input is a numpy array"):
        nn.Dropout(0.5, rng=be.default_rng(0))(np.ones((2, 2)))
    unseeded = nn.Dropout(0.5)  # made from the input's backend at the first call
    assert unseeded(be.asarray(np.ones((2, 2)))).shape == (2, 2)


def test_dropout_behaves_like_pytorch_dropout():
    """PyTorch's mask comes from its own generator, so it cannot be the same mask;
    what must agree is the rule: the values taken, the share dropped, eval mode,
    and the backward through a given mask."""
    torch = pytest.importorskip("torch")
    from minigan.testing.pytorch import to_torch

    p, x = 0.25, np.ones((200, 500))
    ours = nn.Dropout(p, rng=np.random.default_rng(0))
    theirs = to_torch(ours)
    torch.manual_seed(0)
    y, y_t = ours(x), theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(np.unique(y), np.unique(y_t))  # {0, 1 / (1 - p)}
    assert (y == 0).mean() == pytest.approx((y_t == 0).mean(), abs=0.01)
    g = np.random.default_rng(1).standard_normal(x.shape)
    x_t = torch.from_numpy(x).requires_grad_(True)
    (x_t * torch.from_numpy(y)).backward(torch.from_numpy(g))  # our mask m = y / x, x = 1
    np.testing.assert_array_equal(ours.backward(g), x_t.grad.numpy())
    ours.eval()
    assert not to_torch(ours).training
    np.testing.assert_array_equal(ours(x), to_torch(ours)(torch.from_numpy(x)).numpy())
