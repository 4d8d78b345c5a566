"""The GAN step: the generator's gradient through D, D's stacked pass, options."""

import dataclasses

import numpy as np
import pytest
from backend_agreement import assert_models_agree
from conftest import d_gradient_errors_with_masks_held, hold_weights, weight_count

from minigan import nn
from minigan.gan import GAN, PRESETS, GANConfig
from minigan.gradcheck import numerical_gradient, relative_error

TINY = GANConfig(latent_dim=3, hidden=5, image_size=6, batch_size=4)
# D's options that change what it sees: none, the spread of groups of 2, packs of 2.
D_OPTIONS = pytest.mark.parametrize(
    "d_option", [{}, {"minibatch_std": 2}, {"pack": 2}], ids=["", "minibatch-std", "pack"]
)


def tiny_gan(seed=0, dtype=np.float64, **changes):
    return GAN(dataclasses.replace(TINY, **changes), seed=seed, dtype=dtype)


def real_batch(rng, n=4, dtype=np.float64):
    return rng.uniform(-1, 1, (n, 6)).astype(dtype)


@pytest.mark.parametrize("logits", [False, True], ids=["sigmoid+BCE", "logits+BCEWithLogits"])
@pytest.mark.parametrize("generator_loss", ["non_saturating", "saturating"])
@D_OPTIONS
def test_generator_step_gradient_matches_finite_differences(
    rng, assert_gradients_match, logits, generator_loss, d_option
):
    """The heart of GAN backprop, through the real training code: dL/dθ_G crosses D
    (with minibatch_std, also through the spread of each group of fakes; with pack,
    through D's packs of two fakes)."""
    gan = hold_weights(tiny_gan(logits=logits, generator_loss=generator_loss, **d_option))  # keep θ
    z = rng.standard_normal((4, 3))
    d_before = gan.discriminator.state_dict()
    gan.generator_step(gan.generate(z))

    target, sign = (1.0, 1.0) if generator_loss == "non_saturating" else (0.0, -1.0)

    def g_loss():
        return sign * gan.loss.forward(gan.discriminator.forward(gan.generate(z)), target)

    errors = {
        name: relative_error(p.grad, numerical_gradient(g_loss, p.data))
        for name, p in gan.generator.named_parameters()
    }
    assert_gradients_match(errors)
    for name, value in gan.discriminator.state_dict().items():  # D did not move
        np.testing.assert_array_equal(value, d_before[name])


def textbook_step(gan):
    """The textbook D step of ``gan`` (two passes), which a GAN replaces by the stacked one."""
    gan.stacked_d_step = False  # on this instance only
    return gan.discriminator_step


def test_the_gan_takes_the_stacked_d_step_and_dcgan_the_textbook_one(rng):
    from minigan.models import DCGAN

    assert GAN.stacked_d_step and not DCGAN.stacked_d_step
    real, z = real_batch(rng), rng.standard_normal((4, 3))
    a, b = tiny_gan(seed=3), tiny_gan(seed=3)
    stats_a = a.discriminator_step(real, a.generate(z))  # what train_step calls
    stats_b = b.discriminator_step_stacked(real, b.generate(z))
    assert float(stats_a["d_loss"]) == float(stats_b["d_loss"])
    for (name, p), q in zip(a.discriminator.named_parameters(), b.discriminator.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


@D_OPTIONS
def test_discriminator_stacked_pass_equals_two_separate_passes(rng, d_option):
    # Groups (minibatch_std) or packs of 2 divide each half of 4: none mixes real and fake.
    gan = hold_weights(tiny_gan(logits=True, **d_option))
    real, fake = real_batch(rng), gan.generate(rng.standard_normal((4, 3)))
    stats = gan.discriminator_step_stacked(real, fake)
    stacked = {name: p.grad.copy() for name, p in gan.discriminator.named_parameters()}

    two_pass = textbook_step(gan)(real, fake)  # the textbook reference
    assert float(stats["d_loss"]) == pytest.approx(float(two_pass["d_loss"]) / 2, rel=1e-12)
    for name, p in gan.discriminator.named_parameters():  # the mean over 2n halves each gradient
        np.testing.assert_allclose(stacked[name], p.grad / 2, rtol=1e-10, atol=1e-15)


def test_stacked_d_update_equals_the_two_pass_update_with_eps_doubled(rng):
    """Adam ignores the gradient's scale but for eps: half the gradient = twice the eps."""
    batches = [(real_batch(rng), rng.standard_normal((4, 3))) for _ in range(5)]

    def d_weights(step, eps):
        gan = tiny_gan(seed=3, lr=0.05)
        gan.d_optimizer.eps = eps
        for real, z in batches:
            step(gan)(real, gan.generate(z))
        return np.concatenate([v.ravel() for v in gan.discriminator.state_dict().values()])

    stacked = d_weights(lambda gan: gan.discriminator_step_stacked, 1e-3)
    np.testing.assert_allclose(d_weights(textbook_step, 2e-3), stacked, rtol=1e-12)
    # eps matters at this size, so the comparison above can fail: same eps, other weights
    same_eps = d_weights(textbook_step, 1e-3)
    assert np.abs(same_eps - stacked).max() > 1e-6


def test_train_step_returns_0d_stats_and_moves_both_players(rng):
    gan = tiny_gan()
    g0, d0 = gan.generator.state_dict(), gan.discriminator.state_dict()
    stats = gan.train_step(real_batch(rng))
    assert set(stats) == {"d_loss", "g_loss", "d_real", "d_fake"}
    for value in stats.values():
        assert isinstance(value, np.ndarray) and value.shape == () and np.isfinite(value)
    assert 0 < float(stats["d_real"]) < 1 and 0 < float(stats["d_fake"]) < 1
    assert any((g0[k] != v).any() for k, v in gan.generator.state_dict().items())
    assert any((d0[k] != v).any() for k, v in gan.discriminator.state_dict().items())


def test_k_discriminator_steps_per_generator_step(rng):
    gan = tiny_gan(d_steps=3)
    g0 = gan.generator.state_dict()
    for _ in range(2):
        figures = gan.train_step(real_batch(rng))
    assert figures["g_loss"] is None  # no generator update yet
    np.testing.assert_array_equal(gan.generator.state_dict()["0.weight"], g0["0.weight"])
    figures = gan.train_step(real_batch(rng))
    assert figures["g_loss"] is not None
    assert (gan.generator.state_dict()["0.weight"] != g0["0.weight"]).any()


def test_label_smoothing_sets_the_real_target(rng):
    gan = tiny_gan(real_label=0.9)
    real = real_batch(rng)
    gan.discriminator_step(real, gan.generate(gan.sample_noise(4)))
    _, targets = gan.loss.saved_tensors  # what D's loss was asked to match
    np.testing.assert_array_equal(targets[:, 0], [0.9] * 4 + [0.0] * 4)


def test_same_seed_same_training(rng):
    batches = [real_batch(rng, dtype=np.float32) for _ in range(3)]
    runs = []
    for _ in range(2):
        gan = tiny_gan(seed=7, dtype=np.float32)
        for batch in batches:
            gan.train_step(batch)
        runs.append(gan.generator.state_dict())
    for name in runs[0]:
        np.testing.assert_array_equal(runs[0][name], runs[1][name])


def test_bad_config_and_bad_batch_are_reported(rng):
    with pytest.raises(ValueError, match="generator_loss must be one of"):
        GANConfig(generator_loss="wasserstein")
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        GANConfig(batch_size=0)
    with pytest.raises(ValueError, match=r"batch size 100 is not a multiple of pack 3 \(D judges"):
        GANConfig(pack=3)
    with pytest.raises(
        ValueError,
        match=r"GAN.train_step: a real batch of 3 images is not a multiple of pack 2 \(D judges "
        r"packs of 2 images\); give a batch divisible by 2",
    ):
        tiny_gan(pack=2).train_step(real_batch(np.random.default_rng(0), n=3))
    with pytest.raises(ValueError, match=r"real_label must lie in \(0, 1\]"):
        GANConfig(real_label=1.5)
    gan = GAN(PRESETS["classic"], seed=0)
    with pytest.raises(
        ValueError, match=r"expected real batch \(batch, 784\), got \(100, 28, 28\)"
    ):
        gan.train_step(np.zeros((100, 28, 28), np.float32))
    with pytest.raises(
        TypeError, match="real batch has dtype float64 but the layer computes in float32"
    ):
        gan.train_step(np.zeros((100, 784)))


@D_OPTIONS
def test_full_gan_step_matches_pytorch(rng, d_option):
    """One whole step (D update then G update, Adam on both, label smoothing) vs PyTorch."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity test skipped")
    config = dataclasses.replace(  # "ema": the default but for its pairs (d_option's)
        PRESETS["ema"], latent_dim=4, hidden=8, image_size=6, batch_size=4, **d_option
    )
    gan = GAN(config, seed=3, dtype=np.float64)

    from minigan.testing.pytorch import to_torch

    G, D = to_torch(gan.generator), to_torch(gan.discriminator)
    opt_g = torch.optim.Adam(G.parameters(), lr=config.lr, betas=config.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=config.lr, betas=config.betas)
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    for _ in range(3):
        real = real_batch(rng)
        z = rng.standard_normal((4, 4))
        gan.sample_noise = lambda n, z=z: z  # the same noise on both sides
        ours = gan.train_step(real)

        real_t, fake_t = torch.from_numpy(real), G(torch.from_numpy(z))
        scores = D(torch.cat([real_t, fake_t.detach()]))
        half = scores.shape[0] // 2  # 4 scores per half, or 2 packs
        real_targets = torch.full((half, 1), config.real_label, dtype=torch.float64)
        targets = torch.cat([real_targets, torch.zeros(half, 1, dtype=torch.float64)])
        d_loss = bce(scores, targets)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = bce(D(fake_t), torch.ones(half, 1).double())
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()

        assert float(ours["d_loss"]) == pytest.approx(d_loss.item(), rel=1e-10)
        assert float(ours["g_loss"]) == pytest.approx(g_loss.item(), rel=1e-10)
    for ours_net, theirs in [(gan.generator, G), (gan.discriminator, D)]:
        for name, value in ours_net.state_dict().items():
            expected = theirs.state_dict()[name].numpy()
            np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.gpu
def test_train_steps_on_cupy_match_numpy_in_float64(rng):
    """50 full steps from the same weights and the same noise agree across backends."""
    from minigan.backend import get_backend

    gpu = get_backend("cupy")
    config = dataclasses.replace(PRESETS["default"], hidden=32)
    on_cpu = GAN(config, "numpy", seed=0, dtype=np.float64)
    on_gpu = GAN(config, gpu, seed=0, dtype=np.float64)
    for _ in range(50):
        real = rng.uniform(-1, 1, (16, 784))
        z = rng.standard_normal((16, config.latent_dim))
        on_cpu.sample_noise = lambda n, z=z: z
        on_gpu.sample_noise = lambda n, z=z: gpu.asarray(z)
        cpu_figures = on_cpu.train_step(real)
        gpu_figures = on_gpu.train_step(gpu.asarray(real))
    assert_models_agree(on_cpu, on_gpu, cpu_figures, gpu_figures)


def test_gan_load_state_dict_is_all_or_nothing(rng):
    gan, other = tiny_gan(seed=1), tiny_gan(seed=2)
    other.train_step(real_batch(rng))
    before = gan.state_dict()
    bad = other.state_dict()
    bad["d_optimizer"]["m"] = bad["d_optimizer"]["m"][:3]  # the last part loaded does not fit
    with pytest.raises(ValueError, match=r"'m' holds \(3,\) values"):
        gan.load_state_dict(bad)
    after = gan.state_dict()
    for part in ("generator", "discriminator"):
        for name, value in after[part].items():
            np.testing.assert_array_equal(value, before[part][name])
    np.testing.assert_array_equal(after["g_optimizer"]["m"], before["g_optimizer"]["m"])
    assert after["g_optimizer"]["t"] == 0 and gan.steps == 0


def test_a_packed_discriminator_scores_packs_and_counts_its_wider_first_layer(rng):
    config = dataclasses.replace(PRESETS["default"], hidden=8, latent_dim=4, pack=4)
    gan = GAN(config, seed=0)
    pack, first = gan.discriminator.layers[:2]
    assert (pack.m, first.weight.shape) == (4, (8, 4 * 784))
    assert GAN.parameter_count(config) == weight_count(gan)
    assert gan.discriminator.forward(rng.uniform(-1, 1, (100, 784)).astype(np.float32)).shape == (
        25,
        1,
    )
    stats = gan.train_step(rng.uniform(-1, 1, (100, 784)).astype(np.float32))
    assert 0 < float(stats["d_real"]) < 1 and np.isfinite(float(stats["g_loss"]))


def test_d_dropout_draws_its_masks_from_the_noise_stream_so_resuming_repeats_them(rng):
    batches = [real_batch(rng) for _ in range(6)]

    def train(gan, seed, batches):
        gan.reseed_noise(seed)  # as the training loop does at every epoch
        for batch in batches:
            gan.train_step(batch)

    straight = tiny_gan(seed=1, d_dropout=0.5, lr=0.01)
    drops = [m for m in straight.discriminator if isinstance(m, nn.Dropout)]
    assert [m.p for m in drops] == [0.5, 0.5] and drops[0].rng is straight.noise_rng
    train(straight, 10, batches[:3])
    train(straight, 11, batches[3:])
    first = tiny_gan(seed=1, d_dropout=0.5, lr=0.01)
    train(first, 10, batches[:3])
    resumed = tiny_gan(seed=2, d_dropout=0.5, lr=0.01)
    resumed.load_state_dict(first.state_dict())
    train(resumed, 11, batches[3:])
    for part in ("generator", "discriminator"):
        for name, value in getattr(straight, part).state_dict().items():
            np.testing.assert_array_equal(getattr(resumed, part).state_dict()[name], value)
    x = batches[0]  # and the masks are live in training: two passes, two masks
    assert not np.array_equal(straight.discriminator(x), straight.discriminator(x))
    with pytest.raises(ValueError, match=r"d_dropout must lie in \[0, 1\) \(0: none\), got 1.0"):
        GANConfig(d_dropout=1.0)


def test_d_with_dropout_backpropagates_through_each_layers_own_mask(rng, assert_gradients_match):
    """Finite differences of D's loss with the masks held fixed (the stream reseeded
    before every pass): each Dropout layer must keep, and differentiate, its own mask."""
    gan = tiny_gan(d_dropout=0.5)
    drops = [m for m in gan.discriminator if isinstance(m, nn.Dropout)]
    assert len(drops) == 2 and drops[0] is not drops[1]
    assert_gradients_match(d_gradient_errors_with_masks_held(gan, real_batch(rng)))
