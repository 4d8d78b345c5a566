"""MinibatchStdDev: finite differences, what it computes, PyTorch parity, bad input."""

import dataclasses

import numpy as np
import pytest
from conftest import weight_count

from minigan import nn
from minigan.gradcheck import check_module


@pytest.mark.parametrize(
    "shape, group_size",
    [((8, 5), 4), ((6, 3), 1), ((6, 3), 6), ((4, 2, 3, 2), 2)],
    ids=["features-groups-of-4", "groups-of-1", "one-group", "images"],
)
def test_minibatch_std_backward_matches_finite_differences(
    rng, assert_gradients_match, shape, group_size
):
    # sqrt(v + eps) curves on the scale of v, which is of order 1 for these inputs
    # (groups of 1: v = 0, but then s is the constant sqrt(eps) and nothing curves):
    # h = 1e-5 gives truncation ~1e-10 against rounding ~1e-11.
    layer = nn.MinibatchStdDev(group_size)
    errors = check_module(layer, rng.standard_normal(shape))
    assert set(errors) == {"input"}
    assert_gradients_match(errors)


def test_minibatch_std_appends_each_groups_mean_standard_deviation(rng):
    x = rng.standard_normal((6, 4))
    y = nn.MinibatchStdDev(3)(x)
    assert y.shape == (6, 5)
    np.testing.assert_array_equal(y[:, :4], x)
    for start in (0, 3):
        group = x[start : start + 3]
        expected = np.sqrt(group.var(axis=0) + 1e-8).mean()
        np.testing.assert_allclose(y[start : start + 3, 4], expected, rtol=1e-14)
    same = np.tile(rng.standard_normal((1, 4)), (4, 1))  # a collapsed group: s = sqrt(eps)
    np.testing.assert_allclose(nn.MinibatchStdDev(4)(same)[:, 4], 1e-4, rtol=1e-12)


def test_minibatch_std_keeps_the_dtype_and_fills_a_channel_for_images(rng):
    x = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    y = nn.MinibatchStdDev(2)(x)
    assert y.dtype == np.float32 and y.shape == (4, 3, 3, 3)
    assert np.all(y[:2, 2] == y[0, 2, 0, 0]) and np.all(y[2:, 2] == y[2, 2, 0, 0])


def test_minibatch_std_matches_pytorch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((8, 2, 3, 3))
    dy = rng.standard_normal((8, 3, 3, 3))
    layer = nn.MinibatchStdDev(4)
    y = layer(x)
    dx = layer.backward(dy)

    xt = torch.tensor(x, requires_grad=True)
    groups = xt.reshape(2, 4, 2, 3, 3)
    var = groups.var(dim=1, unbiased=False, keepdim=True)  # (2, 1, 2, 3, 3)
    s = torch.sqrt(var + 1e-8).mean(dim=(2, 3, 4), keepdim=True)  # (2, 1, 1, 1, 1)
    appended = s.expand(2, 4, 1, 3, 3).reshape(8, 1, 3, 3)
    yt = torch.cat([xt, appended], dim=1)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_minibatch_std_rejects_bad_settings_and_input(rng):
    with pytest.raises(ValueError, match="MinibatchStdDev: group_size must be at least 1, got 0"):
        nn.MinibatchStdDev(0)
    with pytest.raises(
        ValueError,
        match=r"MinibatchStdDev\(group_size=4\): expected input \(batch, features, \.\.\.\) "
        r"with batch a multiple of 4, got \(6, 3\); choose a batch size that 4 divides",
    ):
        nn.MinibatchStdDev(4)(rng.standard_normal((6, 3)))
    layer = nn.MinibatchStdDev(2)
    layer(rng.standard_normal((4, 3)))
    with pytest.raises(ValueError, match=r"grad_out"):
        layer.backward(rng.standard_normal((4, 3)))  # the output has 4 features


def test_the_gan_puts_it_before_ds_last_layer_and_counts_its_weight(rng):
    from minigan.gan import GAN, PRESETS

    config = dataclasses.replace(PRESETS["ema"], hidden=8, latent_dim=4, minibatch_std=4)
    gan = GAN(config, seed=0)
    layers = gan.discriminator.layers
    assert isinstance(layers[-2], nn.MinibatchStdDev) and layers[-2].group_size == 4
    assert layers[-1].weight.shape == (1, 9)  # 8 features + the spread
    assert GAN.parameter_count(config) == weight_count(gan)
    stats = gan.train_step(rng.uniform(-1, 1, (100, 784)).astype(np.float32))
    assert np.isfinite(float(stats["d_loss"]))


def test_the_group_is_the_largest_size_up_to_the_asked_one_that_divides_the_batch():
    from minigan.gan import GAN, PRESETS

    # D's rows per half are the batch, or the batch / pack: packs of 2 of 100 images
    # make 50 rows, which groups of 4 do not divide.
    cases = [(100, 1, 4, 4), (50, 1, 4, 2), (64, 1, 5, 4), (49, 1, 4, 1), (100, 2, 4, 2)]
    for batch, pack, asked, group in cases:
        config = dataclasses.replace(
            PRESETS["ema"], hidden=8, latent_dim=4, batch_size=batch, pack=pack, minibatch_std=asked
        )
        assert GAN(config, seed=0).discriminator.layers[-2].group_size == group
    with pytest.raises(
        ValueError, match=r"minibatch_std must be 0 \(none\) or a group size, got -1"
    ):
        dataclasses.replace(PRESETS["default"], minibatch_std=-1)
