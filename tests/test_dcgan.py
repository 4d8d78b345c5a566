"""DCGAN: PyTorch parity over full training steps, the architecture for each image size,
BatchNorm-aware D step, sampling, saving, errors, and real steps on MNIST."""

import dataclasses

import numpy as np
import pytest
from backend_agreement import assert_models_agree
from conftest import d_gradient_errors_with_masks_held, weight_count

from minigan import nn
from minigan.models import DCGAN, DCGANConfig
from minigan.testing.pytorch import to_torch

# D scores one image at a time here (pack 1), as the layer indices below assume; the
# default's pairs are tested on their own (test_a_packed_d_..., the parity test).
SMALL = DCGANConfig(
    latent_dim=8,
    base_channels=4,
    batch_size=4,
    pack=1,
    g_full_res_channels=2,
    d_fc_width=6,
    g_fc_width=5,
)
SMALL_BN = dataclasses.replace(SMALL, d_norm="batch")  # the paper's D, BatchNorm inside


def real_images(rng, config=SMALL, n=4, dtype=np.float64):
    return rng.uniform(-1, 1, (n, *config.image_shape)).astype(dtype)


@pytest.mark.parametrize(
    "pack, d_norm, full_res, fc",
    [(1, "none", 2, 6), (2, "none", 2, 6), (1, "batch", 2, 6), (2, "batch", 2, 6),
     (1, "none", 2, 0), (1, "batch", 0, 0)],
    ids=["", "pack", "d_batchnorm", "pack-d_batchnorm", "no_fc", "paper"],
)  # fmt: skip
def test_three_dcgan_steps_match_pytorch(rng, pack, d_norm, full_res, fc):
    """Three whole steps (two-pass D update, G update through D, Adam, BatchNorm running
    statistics) from the same weights and noise, against PyTorch's DCGAN example step
    (with pack 2, D scoring pairs of images as 2-channel inputs, PacGAN's DCGAN; with
    d_norm "batch", the paper's D with BatchNorm after its inner convolutions; with fc
    0, no fully connected hidden layer in D or G; with full_res 0, the paper's G, whose
    last transposed convolution draws the image)."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity test skipped")
    config = dataclasses.replace(
        SMALL,
        pack=pack,
        d_norm=d_norm,
        g_full_res_channels=full_res,
        d_fc_width=fc,
        g_fc_width=5 if fc else 0,
    )
    gan = DCGAN(config, seed=3, dtype=np.float64)
    G, D = to_torch(gan.generator), to_torch(gan.discriminator)
    g_lr = SMALL.g_lr if SMALL.g_lr is not None else SMALL.lr  # G's own step size
    opt_g = torch.optim.Adam(G.parameters(), lr=g_lr, betas=SMALL.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=SMALL.lr, betas=SMALL.betas)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    scores = 4 // pack  # D's scores per batch of 4: one per image, or per pack
    ones = torch.ones(scores, 1, dtype=torch.float64)
    zeros = torch.zeros(scores, 1, dtype=torch.float64)

    for _ in range(3):
        real = real_images(rng)
        z = rng.standard_normal((4, SMALL.latent_dim))
        gan.sample_noise = lambda n, z=z: z  # the same noise on both sides
        ours = gan.train_step(real)

        fake = G(torch.from_numpy(z))
        opt_d.zero_grad()
        d_loss_real = bce(D(torch.from_numpy(real)), ones)
        d_loss_real.backward()
        d_loss_fake = bce(D(fake.detach()), zeros)
        d_loss_fake.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = bce(D(fake), ones)
        g_loss.backward()
        opt_g.step()

        d_loss = (d_loss_real.item() + d_loss_fake.item()) / 2
        assert float(ours["d_loss"]) == pytest.approx(d_loss, rel=1e-10)
        assert float(ours["g_loss"]) == pytest.approx(g_loss.item(), rel=1e-10)
    # Parameters and BatchNorm buffers after three Adam steps agree to rtol 1e-10 (the
    # issue's figure); measured: the worst difference is 6.5e-16 of each array's largest
    # entry, i.e. the two implementations differ only by summation order.
    for ours_net, theirs in [(gan.generator, G), (gan.discriminator, D)]:
        expected = theirs.state_dict()
        for name, value in ours_net.state_dict().items():
            np.testing.assert_allclose(
                value, expected[name].numpy(), rtol=1e-10, atol=1e-14, err_msg=name
            )
    assert gan.steps == 3


@pytest.mark.parametrize(
    "size, channels, g_convs",
    [(28, 1, [(64, 32), (32, 1)]), (32, 3, [(128, 64), (64, 32), (32, 3)]),
     (64, 3, [(256, 128), (128, 64), (64, 32), (32, 3)])],
)  # fmt: skip
def test_architecture_has_one_up_sampling_block_per_doubling(rng, size, channels, g_convs):
    # the paper's G; one image per D score (packs: test_a_packed_d_takes_pack_times_...)
    paper_g = {"pack": 1, "g_full_res_channels": 0, "d_fc_width": 0, "g_fc_width": 0}
    config = DCGANConfig(
        image_size=size, channels=channels, base_channels=32, latent_dim=16, **paper_g
    )
    gan = DCGAN(config, seed=0)
    convts = [m for m in gan.generator if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels) for m in convts] == g_convs
    convs = [m for m in gan.discriminator if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels) for m in convs] == [(o, i) for i, o in g_convs[::-1]]
    # BatchNorm after all of G's layers but the output; none in D unless asked for
    assert sum(isinstance(m, nn.BatchNorm2d) for m in gan.generator) == len(g_convs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gan.discriminator)
    assert all(m.bias is not None for m in convs)
    paper = DCGAN(dataclasses.replace(config, d_norm="batch"), seed=0).discriminator
    norms = [i for i, m in enumerate(paper) if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == len(convs) - 1 and 1 not in norms  # all but after D's input
    assert all(isinstance(paper[i - 1], nn.Conv2d) and paper[i - 1].bias is None for i in norms)
    assert isinstance(gan.generator[-1], nn.Tanh) and isinstance(
        gan.generator[-2], nn.ConvTranspose2d
    )
    images = gan.generate(gan.sample_noise(3))
    assert images.shape == (3, channels, size, size) and images.dtype == np.float32
    assert np.abs(images).max() <= 1
    assert gan.discriminator(images.copy()).shape == (3, 1)


@pytest.mark.parametrize("d_norm", ["none", "batch"])
@pytest.mark.parametrize("size, channels", [(28, 1), (32, 3), (64, 3)])
def test_g_full_res_channels_adds_a_block_at_the_image_size_and_a_3x3_convolution(
    size, channels, d_norm
):
    config = DCGANConfig(
        image_size=size, channels=channels, latent_dim=16, g_full_res_channels=8, d_norm=d_norm
    )
    gan = DCGAN(config, seed=0)
    *_, convt, norm, relu, conv, tanh = gan.generator
    assert (convt.in_channels, convt.out_channels, convt.bias) == (32, 8, None)
    assert isinstance(norm, nn.BatchNorm2d) and isinstance(relu, nn.ReLU)
    assert isinstance(conv, nn.ConvTranspose2d)  # a 3x3 convolution, computed cheaply
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (8, channels, 3)
    assert (conv.stride, conv.padding) == (1, 1)  # the image's size
    assert abs(conv.weight.data.std() - 0.02) < 0.01  # the paper's initialisation
    images = gan.generate(gan.sample_noise(2))
    assert images.shape == (2, channels, size, size) and isinstance(tanh, nn.Tanh)
    assert DCGAN.parameter_count(config) == weight_count(gan)
    paper = DCGAN(dataclasses.replace(config, g_full_res_channels=0), seed=0)
    assert isinstance(paper.generator[-2], nn.ConvTranspose2d)
    assert paper.generator[-2].out_channels == channels
    # the 8 full-size maps of 64 images, counted like every feature map (3 x 3 x 4 bytes)
    maps = 64 * 8 * size * size
    assert DCGAN.memory_bytes(config, 64) - DCGAN.memory_bytes(paper.config, 64) >= 36 * maps


@pytest.mark.parametrize("d_norm", ["none", "batch"])
@pytest.mark.parametrize("size, width", [(28, 64 * 7 * 7), (32, 128 * 4 * 4), (64, 256 * 4 * 4)])
def test_d_fc_width_puts_a_fully_connected_hidden_layer_before_d_s_logit(size, width, d_norm):
    config = DCGANConfig(image_size=size, channels=3, d_norm=d_norm, d_fc_width=5, d_dropout=0.1)
    D = DCGAN(config, seed=0).discriminator
    *_, flatten, hidden, leaky_relu, dropout, logit = D
    assert isinstance(flatten, nn.Flatten) and isinstance(leaky_relu, nn.LeakyReLU)
    assert isinstance(dropout, nn.Dropout) and dropout.p == 0.1  # as after every LeakyReLU
    assert (hidden.in_features, hidden.out_features) == (width, 5)
    assert (logit.in_features, logit.out_features) == (5, 1)
    assert D(np.zeros((4, 3, size, size), np.float32)).shape == (2, 1)  # pairs: 2 scores
    for fc_width in (0, 5, 128):  # 128: the default
        changed = dataclasses.replace(config, d_fc_width=fc_width)
        assert DCGAN.parameter_count(changed) == weight_count(DCGAN(changed, seed=0))
    # memory_bytes counts each parameter's 4 arrays (weight, grad, Adam's m and v)
    plain_config = dataclasses.replace(config, d_fc_width=0)
    more = DCGAN.parameter_count(config) - DCGAN.parameter_count(plain_config)
    assert DCGAN.memory_bytes(config, 64) - DCGAN.memory_bytes(plain_config, 64) >= 16 * more
    plain = DCGAN(plain_config, seed=0).discriminator
    assert isinstance(plain[-2], nn.Flatten) and plain[-1].in_features == width


@pytest.mark.parametrize("size", [28, 32, 64])
def test_g_fc_width_puts_a_fully_connected_hidden_layer_first_in_g(size):
    config = DCGANConfig(image_size=size, channels=3, latent_dim=16, g_fc_width=7)
    hidden, norm, relu, projection, unflatten, *_ = DCGAN(config, seed=0).generator
    assert (hidden.in_features, hidden.out_features) == (16, 7)
    assert isinstance(norm, nn.BatchNorm1d) and norm.num_features == 7
    assert isinstance(relu, nn.ReLU) and isinstance(unflatten, nn.Unflatten)
    side = size // 2 ** len(config.widths)  # G's first feature maps: 7x7, 4x4, 4x4
    assert (projection.in_features, projection.out_features) == (7, config.widths[-1] * side**2)
    for fc_width in (0, 7, 256):  # 256: the default
        changed = dataclasses.replace(config, g_fc_width=fc_width)
        gan = DCGAN(changed, seed=0)
        assert DCGAN.parameter_count(changed) == weight_count(gan)
        images = gan.generate(gan.sample_noise(3))
        assert images.shape == (3, 3, size, size)
    plain = DCGAN(dataclasses.replace(config, g_fc_width=0), seed=0).generator
    assert plain[0].in_features == 16 and isinstance(plain[1], nn.Unflatten)


def test_a_packed_d_takes_pack_times_the_channels_and_counts_them(rng):
    config = DCGANConfig(base_channels=8, latent_dim=16, pack=2)
    gan = DCGAN(config, seed=0)
    assert isinstance(gan.discriminator[0], nn.Pack) and gan.discriminator[1].in_channels == 2
    assert DCGAN.parameter_count(config) == weight_count(gan)
    assert gan.discriminator(gan.generate(gan.sample_noise(6))).shape == (3, 1)


def test_d_dropout_follows_each_of_d_s_leaky_relus_and_draws_from_the_noise_stream():
    gan = DCGAN(dataclasses.replace(SMALL, d_dropout=0.3), seed=0)
    layers = list(gan.discriminator)
    drops = [i for i, m in enumerate(layers) if isinstance(m, nn.Dropout)]
    assert drops and all(isinstance(layers[i - 1], nn.LeakyReLU) for i in drops)
    assert len(drops) == sum(isinstance(m, nn.LeakyReLU) for m in layers)
    assert all(layers[i].p == 0.3 and layers[i].rng is gan.noise_rng for i in drops)
    assert len({id(layers[i]) for i in drops}) == len(drops)  # each keeps its own mask


def test_d_noise_puts_instance_noise_first_in_d_for_real_and_fake_alike(rng):
    gan = DCGAN(dataclasses.replace(SMALL, d_noise=0.2, pack=2), seed=0)
    noise, pack = gan.discriminator[0], gan.discriminator[1]
    assert isinstance(noise, nn.GaussianNoise) and noise.std == 0.2 and isinstance(pack, nn.Pack)
    assert noise.rng is gan.noise_rng
    x = real_images(rng, dtype=np.float32)
    assert not np.array_equal(gan.discriminator(x), gan.discriminator(x))  # noised in training
    gan.discriminator.eval()
    np.testing.assert_array_equal(gan.discriminator(x), gan.discriminator(x))


def test_d_augment_puts_diffaugment_first_in_d_drawing_from_the_noise_stream(rng):
    config = dataclasses.replace(SMALL, d_augment="cutout, color", pack=2)
    gan = DCGAN(config, seed=0)
    augment = gan.discriminator[0]
    assert isinstance(augment, nn.DiffAugment) and augment.policy == ("color", "cutout")
    assert augment.rng is gan.noise_rng and isinstance(gan.discriminator[1], nn.Pack)
    x = real_images(rng, dtype=np.float32)
    augmented = gan.discriminator(x)
    augment.eval()  # the rest of D is deterministic: only the augmentation differs
    plain = gan.discriminator(x)
    np.testing.assert_array_equal(plain, gan.discriminator(x))
    assert not np.allclose(augmented, plain)
    # two models of one seed train alike: every draw comes from the seeded stream
    twins = [DCGAN(config, seed=4) for _ in range(2)]
    for gan in twins:
        gan.reseed_noise(11)
        gan.train_step(real_images(np.random.default_rng(2), n=4, dtype=np.float32))
    for a, b in zip(twins[0].discriminator.parameters(), twins[1].discriminator.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("d_augment", ["", "color,translation,cutout"])
@pytest.mark.parametrize("d_norm", ["none", "batch"])
def test_d_with_dropout_gradient_matches_finite_differences(
    rng, assert_gradients_match, d_norm, d_augment
):
    """D's loss with the masks (and DiffAugment's draws) held fixed: the noise stream
    reseeded before every pass. With DiffAugment: the gradient G's step receives."""
    config = dataclasses.replace(SMALL, d_dropout=0.3, pack=2, d_norm=d_norm, d_augment=d_augment)
    gan = DCGAN(config, seed=0, dtype=np.float64)
    # D's weights start at N(0, 0.02) and its biases at 0, so many pre-activations lie
    # within 1e-5 of LeakyReLU's kink, and a finite difference that crosses it is wrong
    # (measured with the default 1e-5: worst 5e-3). Weights 10 times as large and
    # N(0, 0.1) biases keep them clear: worst 6.4e-10 over seven input seeds, both D's,
    # with the fully connected hidden layer (d_fc_width 6; its Linear left as initialised).
    for conv in (m for m in gan.discriminator.modules() if isinstance(m, nn.Conv2d)):
        conv.weight.data *= 10
        if conv.bias is not None:
            conv.bias.data[...] = rng.normal(0, 0.1, conv.bias.shape)
    errors = d_gradient_errors_with_masks_held(gan, real_images(rng), step=1e-5)
    assert_gradients_match(errors)


def test_g_lr_gives_the_generator_its_own_step_size():
    own = DCGAN(dataclasses.replace(SMALL, lr=3e-4, g_lr=1e-3), seed=0)
    assert own.g_optimizer.lr == 1e-3 and own.d_optimizer.lr == 3e-4
    shared = DCGAN(dataclasses.replace(SMALL, lr=3e-4, g_lr=None), seed=0)
    assert shared.g_optimizer.lr == shared.d_optimizer.lr == 3e-4
    assert own.g_optimizer.params[0] is own.generator.parameters()[0]  # G's, not a copy


def test_paper_initialisation(rng):
    gan = DCGAN(DCGANConfig(base_channels=64, pack=1), seed=0)  # 1,024 weights in D's 1st conv
    conv = gan.discriminator[0].weight.data
    assert abs(conv.std() - 0.02) < 0.002 and abs(conv.mean()) < 0.002
    hidden_norm = gan.generator[1]  # G's fully connected hidden layer's BatchNorm1d(256)
    assert isinstance(hidden_norm, nn.BatchNorm1d) and hidden_norm.num_features == 256
    paper_g = DCGAN(DCGANConfig(base_channels=64, pack=1, g_fc_width=0), seed=0).generator
    for norm in (hidden_norm, paper_g[2]):  # and the paper's G's first BatchNorm2d(128)
        gamma = norm.weight.data
        assert abs(gamma.mean() - 1) < 0.01 and 0.01 < gamma.std() < 0.03
        assert not norm.bias.data.any()


def test_d_step_uses_separate_batches_so_the_fakes_do_not_change_real_scores(rng):
    """The reason for two passes: with BatchNorm, a stacked pass mixes the statistics."""
    gan = DCGAN(SMALL_BN, seed=0, dtype=np.float64)
    real = real_images(rng)
    D = gan.discriminator
    alone = D.forward(real)
    stacked = D.forward(np.concatenate([real, real_images(rng)]))[:4]
    assert np.abs(alone - stacked).max() > 1e-3  # stacking would change D(x)


def test_train_step_stats_sampling_and_modes(rng):
    gan = DCGAN(SMALL, seed=0, dtype=np.float64)
    stats = gan.train_step(real_images(rng))
    assert set(stats) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.ndim(v) == 0 and np.isfinite(v) for v in stats.values())
    state = gan.generator.state_dict()
    z = gan.sample_noise(1)
    one = gan.generate(z)  # a batch of one works: evaluation mode
    # the same image in a batch of two (to rounding: the GEMMs differ in size)
    np.testing.assert_allclose(gan.generate(np.concatenate([z, z]))[:1], one, rtol=1e-12)
    for name, value in gan.generator.state_dict().items():  # sampling changed nothing
        np.testing.assert_array_equal(value, state[name])
    assert all(m.training for m in gan.generator.modules())


def test_same_seed_same_training_and_state_round_trip(rng):
    a, b = DCGAN(SMALL, seed=5, dtype=np.float64), DCGAN(SMALL, seed=5, dtype=np.float64)
    real = real_images(rng)
    for gan in (a, b):
        gan.train_step(real)
    np.testing.assert_array_equal(
        a.generator.state_dict()["0.weight"], b.generator.state_dict()["0.weight"]
    )
    c = DCGAN(SMALL, seed=9, dtype=np.float64)
    c.load_state_dict(a.state_dict())
    assert c.steps == 1
    for part in ("generator", "discriminator"):
        for name, value in getattr(c, part).state_dict().items():
            np.testing.assert_array_equal(value, getattr(a, part).state_dict()[name], err_msg=name)


def test_load_state_dict_is_all_or_nothing(rng):
    gan, other = DCGAN(SMALL_BN, seed=1), DCGAN(SMALL_BN, seed=2)
    other.train_step(real_images(rng, dtype=np.float32))
    before = gan.state_dict()
    bad = other.state_dict()
    bad["discriminator"]["3.running_var"] = bad["discriminator"]["3.running_var"][:2]
    with pytest.raises(ValueError, match=r"'3.running_var' has shape \(2,\)"):
        gan.load_state_dict(bad)
    after = gan.state_dict()
    for name, value in after["generator"].items():  # loaded before the failure: restored
        np.testing.assert_array_equal(value, before["generator"][name], err_msg=name)
    assert gan.steps == 0


def test_bad_config_and_bad_batch_are_reported(rng):
    with pytest.raises(ValueError, match=r"image_size must be one of \(28, 32, 64\), got 48"):
        DCGANConfig(image_size=48)
    with pytest.raises(ValueError, match=r"channels must be 1 \(grey\) or 3 \(RGB\), got 2"):
        DCGANConfig(channels=2)
    with pytest.raises(ValueError, match="generator_loss must be one of"):
        DCGANConfig(generator_loss="wasserstein")
    with pytest.raises(ValueError, match="base_channels must be a positive integer, got 0"):
        DCGANConfig(base_channels=0)
    with pytest.raises(ValueError, match=r"g_lr must be positive \(or None: lr\), got -0.001"):
        DCGANConfig(g_lr=-1e-3)
    with pytest.raises(ValueError, match=r"batch size 32 is not a multiple of pack 3 \(D judges"):
        DCGANConfig(pack=3)
    with pytest.raises(ValueError, match=r"d_dropout must lie in \[0, 1\) \(0: none\), got 1.5"):
        DCGANConfig(d_dropout=1.5)
    with pytest.raises(ValueError, match=r"d_noise must be a number >= 0 \(0: none\), got -0.1"):
        DCGANConfig(d_noise=-0.1)
    with pytest.raises(
        ValueError, match=r"d_augment must name DiffAugment steps, .* got 'color,blur'"
    ):
        DCGANConfig(d_augment="color,blur")
    with pytest.raises(
        ValueError, match=r"g_full_res_channels must be an integer >= 0 \(0: none\), got -1"
    ):
        DCGANConfig(g_full_res_channels=-1)
    with pytest.raises(ValueError, match=r"g_fc_width must be an integer >= 0 \(0: none\), got -3"):
        DCGANConfig(g_fc_width=-3)
    with pytest.raises(ValueError, match=r"d_fc_width must be an integer >= 0 \(0: none\), got -2"):
        DCGANConfig(d_fc_width=-2)
    with pytest.raises(ValueError, match=r"d_norm must be one of \('none', 'batch'\), got 'layer'"):
        DCGANConfig(d_norm="layer")
    gan = DCGAN(SMALL, seed=0)
    with pytest.raises(
        ValueError,
        match=r"DCGAN.train_step: expected real batch \(batch, 1, 28, 28\), got \(4, 784\)",
    ):
        gan.train_step(np.zeros((4, 784), np.float32))
    assert DCGANConfig().to_dict()["betas"] == (0.5, 0.999)


def test_dcgan_trains_on_mnist_with_finite_losses():
    from minigan.data import DataError, load_mnist, to_gan_range

    try:
        images, _ = load_mnist("test", download=False)
    except DataError as error:
        first_line = str(error).splitlines()[0]
        pytest.skip(f"MNIST not found ({first_line}); set MINIGAN_DATA=../shared/data")
    real = to_gan_range(images[:160], flatten=False)
    # The paper's single learning rate: D, not yet chased by a fast G, pulls ahead in 5 steps.
    config = dataclasses.replace(DCGANConfig(), base_channels=16, batch_size=32, g_lr=None)
    gan = DCGAN(config, seed=0)
    history = [gan.train_step(real[i : i + 32]) for i in range(0, 160, 32)]
    losses = np.array([[float(s["d_loss"]), float(s["g_loss"])] for s in history])
    assert np.isfinite(losses).all()
    assert losses[-1, 0] < losses[0, 0]  # D learns to tell digits from noise
    assert gan.steps == 5


@pytest.mark.gpu
def test_dcgan_steps_on_cupy_match_numpy_in_float64(rng):
    """Conv, ConvT (col2im's slice-adds), BatchNorm and the step, on both backends."""
    from minigan.backend import get_backend

    gpu = get_backend("cupy")
    on_cpu = DCGAN(SMALL, "numpy", seed=0, dtype=np.float64)
    on_gpu = DCGAN(SMALL, gpu, seed=0, dtype=np.float64)
    for _ in range(3):
        real = real_images(rng)
        z = rng.standard_normal((4, SMALL.latent_dim))
        on_cpu.sample_noise = lambda n, z=z: z
        on_gpu.sample_noise = lambda n, z=z: gpu.asarray(z)
        cpu_stats = on_cpu.train_step(real)
        gpu_stats = on_gpu.train_step(gpu.asarray(real))
    assert_models_agree(on_cpu, on_gpu, cpu_stats, gpu_stats)


def test_ema_samples_from_the_averaged_generator_in_evaluation_mode(rng):
    """With ``ema``, ``generate`` runs the average of G's weights, in evaluation mode, with
    the live G's BatchNorm statistics; training is the same as without it."""
    gan = DCGAN(dataclasses.replace(SMALL, ema=0.5), seed=0, dtype=np.float64)
    plain = DCGAN(dataclasses.replace(SMALL, ema=0), seed=0, dtype=np.float64)
    for _ in range(3):
        batch = real_images(rng)
        gan.train_step(batch), plain.train_step(batch)
    for name, value in plain.generator.state_dict().items():  # the average only follows
        np.testing.assert_array_equal(gan.generator.state_dict()[name], value)
    z = gan.sample_noise(6)
    by_hand = DCGAN(dataclasses.replace(SMALL, ema=0), seed=1, dtype=np.float64)
    by_hand.generator.load_state_dict(gan.state_dict()["generator_ema"]["weights"])
    by_hand.generator.eval()
    np.testing.assert_array_equal(gan.generate(z), by_hand.generator.forward(z))
    assert not np.allclose(gan.generate(z), plain.generate(z))
    assert all(m.training for m in gan.sampler.modules())  # back in training mode
    with pytest.raises(ValueError, match=r"ema must lie in \[0, 1\) \(0: no average\), got 1"):
        dataclasses.replace(SMALL, ema=1)


def test_one_sided_label_smoothing_sets_d_s_target_for_real_images(rng):
    gan = DCGAN(dataclasses.replace(SMALL, real_label=0.9, ema=0), seed=0, dtype=np.float64)
    real, fake = real_images(rng), real_images(rng)
    # BatchNorm in training mode normalises each batch by its own statistics, so these
    # forward passes score exactly what the step's will.
    scores_real, scores_fake = gan.discriminator.forward(real), gan.discriminator.forward(fake)

    def bce(s, t):  # BCE on logits: softplus(s) - t s, averaged
        return np.mean(np.logaddexp(0, s) - t * s)

    expected = (bce(scores_real, 0.9) + bce(scores_fake, 0.0)) / 2
    np.testing.assert_allclose(gan.discriminator_step(real, fake)["d_loss"], expected, rtol=1e-12)
    with pytest.raises(ValueError, match=r"real_label must lie in \(0, 1\], got 0"):
        dataclasses.replace(SMALL, real_label=0)
