"""The moving average of G's weights (minigan/ema.py) and how the GAN keeps and samples it."""

import dataclasses

import numpy as np
import pytest

from minigan import nn
from minigan.checkpoint import load_checkpoint, save_checkpoint
from minigan.ema import EMA
from minigan.gan import GAN, GANConfig

TINY = GANConfig(latent_dim=3, hidden=5, image_size=6, batch_size=4)


def tiny_gan(seed=0, **changes):
    return GAN(dataclasses.replace(TINY, **changes), seed=seed, dtype=np.float64)


def real_batch(rng, n=4):
    return rng.uniform(-1, 1, (n, 6))


def closed_form(thetas, decay):
    """sum_i beta^(k-i) (1 - beta) theta_i / (1 - beta^k), i = 1..k: the bias-corrected EMA."""
    k = len(thetas)
    weights = [decay ** (k - i) * (1 - decay) for i in range(1, k + 1)]
    return sum(w * t for w, t in zip(weights, thetas)) / (1 - decay**k)


def test_after_k_updates_the_average_equals_the_closed_form(rng):
    layer = nn.Linear(4, 3, rng=rng, dtype=np.float64)
    ema = EMA(layer, decay=0.8)
    seen = {"weight": [], "bias": []}
    for _ in range(7):
        for name, p in layer.named_parameters():
            p.data[...] = rng.standard_normal(p.shape)  # any new weights theta_t
            seen[name].append(p.data.copy())
        ema.update()
    assert ema.updates == 7
    for name, p in ema.averaged.named_parameters():
        np.testing.assert_allclose(p.data, closed_form(seen[name], 0.8), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_update_rounds_as_its_three_in_place_steps(rng, dtype):
    """a += w (theta - a), one line, gives bit for bit what the earlier in-place form gave
    (d = theta - a; d *= w; a += d): the same two roundings per entry."""
    layer = nn.Linear(40, 30, rng=rng, dtype=dtype)
    ema = EMA(layer, decay=0.9)
    expected = {name: p.data.copy() for name, p in ema.averaged.named_parameters()}
    for t in range(1, 5):
        for name, p in layer.named_parameters():
            p.data[...] = rng.standard_normal(p.shape)
            d = np.subtract(p.data, expected[name])
            d *= (1 - 0.9) / (1 - 0.9**t)
            expected[name] += d
        ema.update()
    for name, p in ema.averaged.named_parameters():
        assert p.data.dtype == dtype and p.data.tobytes() == expected[name].tobytes(), name


def test_the_first_update_takes_the_weights_and_the_module_is_never_changed(rng):
    layer = nn.Linear(4, 3, rng=rng, dtype=np.float64)
    ema = EMA(layer, decay=0.999)
    before = layer.state_dict()
    layer.weight.data[...] += 1.0
    ema.update()  # w_1 = 1: a_1 = theta_1, with no pull towards the initial weights
    np.testing.assert_array_equal(ema.averaged.weight.data, layer.weight.data)
    np.testing.assert_array_equal(layer.bias.data, before["bias"])
    assert ema.averaged.weight.data is not layer.weight.data


def test_buffers_are_copied_from_the_live_network(rng):
    net = nn.Sequential(
        nn.Linear(4, 3, rng=rng, dtype=np.float64), nn.BatchNorm1d(3, dtype=np.float64)
    )
    ema = EMA(net, decay=0.9)
    net.forward(rng.standard_normal((8, 4)))  # training mode: running statistics move
    ema.update()
    live, averaged = dict(net.named_buffers()), dict(ema.averaged.named_buffers())
    assert set(live) == set(averaged) and live
    for name, value in live.items():
        np.testing.assert_array_equal(averaged[name], value)


def test_the_gan_averages_g_after_every_generator_update_and_trains_as_without(rng):
    gan, plain = tiny_gan(ema=0.9, d_steps=2), tiny_gan()
    plain.config.d_steps = 2
    seen = {name: [] for name, _ in gan.generator.named_parameters()}
    for _ in range(6):
        real = real_batch(rng)
        gan.train_step(real)
        plain.train_step(real)
        if gan.steps % 2 == 0:  # G moved
            for name, p in gan.generator.named_parameters():
                seen[name].append(p.data.copy())
    assert gan.generator_ema.updates == 3
    for name, p in gan.generator_ema.averaged.named_parameters():
        np.testing.assert_allclose(p.data, closed_form(seen[name], 0.9), rtol=1e-12, atol=1e-14)
    for net in ("generator", "discriminator"):  # the average only follows
        a, b = gan.state_dict()[net], plain.state_dict()[net]
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{net} {name}")


def test_samples_come_from_the_averaged_generator(rng):
    gan = tiny_gan(ema=0.5)
    for _ in range(3):
        gan.train_step(real_batch(rng))
    z = rng.standard_normal((5, 3))
    by_hand = tiny_gan()  # G with the averaged weights, built separately
    by_hand.generator.load_state_dict(gan.state_dict()["generator_ema"]["weights"])
    np.testing.assert_array_equal(gan.generate(z), by_hand.generator.forward(z))
    assert gan.sampler is gan.generator_ema.averaged
    assert not np.allclose(gan.generate(z), gan.generator.forward(z))
    plain = tiny_gan()
    assert plain.sampler is plain.generator and plain.generator_ema is None
    assert "generator_ema" not in plain.state_dict()


def test_resuming_from_a_checkpoint_is_bit_identical(rng, tmp_path):
    batches = [real_batch(rng) for _ in range(4)]
    straight = tiny_gan(ema=0.9, d_lr=4e-4)
    for real in batches:
        straight.train_step(real)
    first = tiny_gan(ema=0.9, d_lr=4e-4)
    for real in batches[:2]:
        first.train_step(real)
    save_checkpoint(tmp_path / "c.npz", {"gan": first.state_dict()})
    resumed = tiny_gan(ema=0.9, d_lr=4e-4)
    resumed.load_state_dict(load_checkpoint(tmp_path / "c.npz")["gan"])
    resumed.noise_rng = first.noise_rng  # the stream goes on where it was
    for real in batches[2:]:
        resumed.train_step(real)
    a, b = straight.state_dict(), resumed.state_dict()
    assert b["generator_ema"]["updates"] == a["generator_ema"]["updates"] == 4
    for name, value in a["generator_ema"]["weights"].items():
        np.testing.assert_array_equal(b["generator_ema"]["weights"][name], value, err_msg=name)
    for name, value in a["generator"].items():
        np.testing.assert_array_equal(b["generator"][name], value, err_msg=name)


def test_a_state_without_an_average_loads_into_a_model_without_one(rng):
    old = tiny_gan()  # ema=0: a state like every checkpoint from before the average existed
    old.train_step(real_batch(rng))
    state = old.state_dict()
    assert "generator_ema" not in state
    fresh = tiny_gan()
    fresh.load_state_dict(state)
    z = rng.standard_normal((2, 3))
    np.testing.assert_array_equal(fresh.generate(z), old.generator.forward(z))


def test_averages_that_do_not_fit_are_refused_whole(rng):
    with_average = tiny_gan(ema=0.9)
    with_average.train_step(real_batch(rng))
    state = with_average.state_dict()
    with pytest.raises(ValueError, match="holds an averaged generator, and this model keeps none"):
        tiny_gan().load_state_dict(state)
    target = tiny_gan(ema=0.9)
    del state["generator_ema"]
    with pytest.raises(KeyError, match=r"the state has no \['generator_ema'\]"):
        target.load_state_dict(state)
    state = with_average.state_dict()
    state["generator_ema"]["updates"] = -1
    before = target.state_dict()
    with pytest.raises(ValueError, match=r"'updates' must be a count \(0 or more\), got -1"):
        target.load_state_dict(state)
    after = target.state_dict()  # all or nothing: G, D and their optimizers put back
    for part in ("generator", "discriminator"):
        for name, value in after[part].items():
            np.testing.assert_array_equal(value, before[part][name])
    with pytest.raises(KeyError, match=r"expected the keys \['updates', 'weights'\], got \['w'\]"):
        target.generator_ema.load_state_dict({"w": 1})


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_a_decay_outside_0_1_is_refused(decay, rng):
    with pytest.raises(ValueError, match=r"EMA: decay must lie in \(0, 1\), got"):
        EMA(nn.Linear(2, 2, rng=rng), decay)


def test_config_checks_ema_and_d_lr():
    with pytest.raises(ValueError, match=r"ema must lie in \[0, 1\) \(0: no average\), got 1.0"):
        dataclasses.replace(TINY, ema=1.0)
    with pytest.raises(ValueError, match=r"d_lr must be a positive number \(or None: lr\), got 0"):
        dataclasses.replace(TINY, d_lr=0)


def test_d_lr_gives_the_discriminator_its_own_learning_rate():
    gan = tiny_gan(lr=1e-4, d_lr=4e-4)
    assert gan.g_optimizer.lr == 1e-4 and gan.d_optimizer.lr == 4e-4
    same = tiny_gan(lr=1e-4)
    assert same.g_optimizer.lr == same.d_optimizer.lr == 1e-4
