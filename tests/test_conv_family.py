"""WGAN, WGAN-GP and LSGAN with convolutions (minigan/models/convnets.py), and the double
backward their convolutional critic needs (Conv2d, Flatten, Unflatten, Pack).

Gradient checks run in float64 with central differences, h = 1e-5. For Conv2d and the
reshapes, S = sum(c * dx) is bilinear in (dy, W) and has no x in it: along any one
nudged entry it is a polynomial of degree 1, so the central difference has no
truncation error at all, only rounding, ~1e-16 |S| / h ~ 1e-11 relative. The penalty P
of a LeakyReLU critic is a polynomial in each weight while no pre-activation changes
sign; its pre-activations are O(0.01) or more apart from 0 for these seeds, far beyond
what a 1e-5 nudge moves them (checked: the finite differences agree to 1e-8), so
truncation is O(h^2 P''') ~ 1e-10 and rounding 1e-16 P / h ~ 1e-11.
"""

import dataclasses

import numpy as np
import pytest
from conftest import penalty_gradient_errors, train_reading_nothing

from minigan import nn
from minigan.checkpoint import upgrade
from minigan.gradcheck import check_double_backward
from minigan.models import LSGAN, MODELS, WGAN, WGANGP, WGANConfig, WGANGPConfig
from minigan.models.convnets import (
    ArchConfig,
    build_critic,
    count_parameters,
    image_geometry,
    sides,
)
from minigan.testing.pytorch import to_torch

CONV_MODELS = [LSGAN, WGAN, WGANGP]


def small(cls, seed=0, dtype=np.float64, **changes):
    """The model's defaults with arch 'conv' on 12x12 grey images, 2 base channels."""
    sizes = {
        "latent_dim": 3,
        "base_channels": 2,
        "image_size": 144,
        "batch_size": 4,
        "arch": "conv",
    }
    config = dataclasses.replace(cls.default_config(), **{**sizes, **changes})
    return cls(config, seed=seed, dtype=dtype)


# --- Conv2d's double backward ------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [(2, 3, 3, 1, 1), (1, 4, 5, 2, 2), (3, 2, 4, 2, 1), (2, 2, 3, 2, 0)],
    ids=["3x3-s1-p1", "5x5-s2-p2", "4x4-s2-p1", "3x3-s2-p0"],
)
@pytest.mark.parametrize("batch", [1, 3])
def test_conv2d_double_backward_matches_finite_differences(
    rng, assert_gradients_match, settings, batch
):
    c_in = settings[0]
    layer = nn.Conv2d(*settings, rng=rng, dtype=np.float64)
    errors = check_double_backward(layer, rng.standard_normal((batch, c_in, 9, 9)))
    assert set(errors) == {"grad_out", "input", "weight", "bias"}
    assert_gradients_match(errors)


def test_conv2d_double_backward_without_bias_and_on_non_square_images(rng, assert_gradients_match):
    layer = nn.Conv2d(2, 3, 3, 2, 1, bias=False, rng=rng, dtype=np.float64)
    assert_gradients_match(check_double_backward(layer, rng.standard_normal((2, 2, 7, 10))))


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (nn.Flatten, (2, 3, 4)),
        (lambda: nn.Unflatten(1, (2, 3)), (2, 6)),
        (lambda: nn.Pack(2), (4, 3)),
        (lambda: nn.Pack(2), (4, 1, 3, 3)),
    ],
    ids=["flatten", "unflatten", "pack-flat", "pack-images"],
)
def test_reshape_double_backward_matches_finite_differences(
    rng, assert_gradients_match, make, shape
):
    assert_gradients_match(check_double_backward(make(), rng.standard_normal(shape)))


def test_conv2d_double_backward_matches_pytorch(rng):
    """gg -> (dL/d(dy), dL/dW) against ``torch.autograd.grad(..., create_graph=True)``."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity test skipped")
    layer = nn.Conv2d(3, 4, 5, 2, 2, rng=rng, dtype=np.float64)
    x, dy = rng.standard_normal((2, 3, 11, 11)), rng.standard_normal((2, 4, 6, 6))
    gg = rng.standard_normal(x.shape)
    layer.forward(x)
    layer.backward(dy, create_graph=True)
    layer.zero_grad()
    grad_dy, grad_x = layer.double_backward(gg)

    twin = to_torch(layer)
    x_t = torch.from_numpy(x).requires_grad_(True)
    dy_t = torch.from_numpy(dy).requires_grad_(True)
    (dx_t,) = torch.autograd.grad(twin(x_t), x_t, dy_t, create_graph=True)
    s = (dx_t * torch.from_numpy(gg)).sum()
    grads = torch.autograd.grad(s, [dy_t, twin.weight, twin.bias], allow_unused=True)
    assert grad_x is None and grads[2] is None  # neither x nor b appears in dx
    np.testing.assert_allclose(grad_dy, grads[0].numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, grads[1].numpy(), rtol=1e-9, atol=1e-12)
    assert not layer.bias.grad.any()


def test_conv2d_ordinary_backward_keeps_no_dy(rng):
    layer = nn.Conv2d(1, 2, 3, rng=rng, dtype=np.float64)
    y = layer.forward(rng.standard_normal((2, 1, 5, 5)))
    layer.backward(np.ones_like(y))
    assert layer._saved_grad_out is None
    with pytest.raises(RuntimeError, match="needs the backward pass it differentiates"):
        layer.double_backward(np.ones((2, 1, 5, 5)))


def test_conv2d_double_backward_stays_float32(rng):
    layer = nn.Conv2d(1, 2, 3, 2, 1, rng=rng)
    y = layer.forward(rng.standard_normal((2, 1, 6, 6)).astype(np.float32))
    layer.backward(np.ones_like(y), create_graph=True)
    grad_dy, _ = layer.double_backward(np.ones((2, 1, 6, 6), np.float32))
    assert grad_dy.dtype == layer.weight.grad.dtype == np.float32


# --- the networks -----------------------------------------------------------------------


def test_image_geometry_reads_grey_and_rgb_squares_and_refuses_the_rest():
    assert image_geometry(784) == (1, 28)
    assert image_geometry(3072) == (3, 32)
    assert image_geometry(3 * 28 * 28) == (3, 28)
    for bad in (6, 10, 2 * 28 * 28):
        with pytest.raises(ValueError, match="arch 'conv' takes square grey or RGB images"):
            image_geometry(bad)
    with pytest.raises(ValueError, match="arch 'conv' takes square grey or RGB images"):
        WGANGPConfig(image_size=6)
    assert WGANGPConfig(image_size=6, arch="mlp").image_size == 6
    with pytest.raises(
        ValueError, match=r"arch must be one of \('mlp', 'conv', 'points'\), got 'cnn'"
    ):
        WGANConfig(arch="cnn")
    with pytest.raises(ValueError, match="base_channels must be a positive integer, got 0"):
        WGANConfig(base_channels=0)


def test_the_critic_and_generator_follow_the_papers_code():
    """WGAN-GP's MNIST code: three 5x5 stride-2 convolutions 28 -> 14 -> 7 -> 4, no BatchNorm
    in the critic, a Linear to one score; G mirrors it, 4 -> 7 -> 14 -> 28. (Their critic
    takes one image at a time: pack 1.)"""
    model = WGANGP(dataclasses.replace(WGANGP.default_config(), pack=1), seed=0)
    D, G, dim = model.discriminator, model.generator, model.config.base_channels
    convs = [m for m in D if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (1, dim, 5, 2, 2), (dim, 2 * dim, 5, 2, 2), (2 * dim, 4 * dim, 5, 2, 2),
    ]  # fmt: skip
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in D)
    assert isinstance(D[-1], nn.Linear) and D[-1].in_features == 4 * dim * 4 * 4
    assert sides(28) == [14, 7, 4] and sides(32) == [16, 8, 4]
    z = model.sample_noise(3)
    maps = z
    shapes = []
    for layer in G:
        maps = layer.forward(maps)
        shapes.append(maps.shape)
    assert (3, 4 * dim, 4, 4) in shapes and (3, 2 * dim, 7, 7) in shapes
    assert (3, dim, 14, 14) in shapes and shapes[-1] == (3, 784)
    assert D.forward(maps).shape == (3, 1)


@pytest.mark.parametrize("cls", CONV_MODELS)
@pytest.mark.parametrize("image_size", [784, 3 * 32 * 32])
def test_parameter_count_and_shapes_for_grey_and_rgb(cls, image_size):
    config = dataclasses.replace(cls.default_config(), image_size=image_size, base_channels=4)
    model = cls(config, seed=0, dtype=np.float32)
    built = sum(p.data.size for net in (model.generator, model.discriminator)
                for p in net.parameters())  # fmt: skip
    assert cls.parameter_count(config) == built
    assert cls.memory_bytes(config, 64) > 4 * 4 * built
    images = model.generate(model.sample_noise(2))
    assert images.shape == (2, image_size) and np.abs(images).max() <= 1
    assert model.discriminator.forward(images).shape == (2 // config.pack, 1)


def test_batchnorm_in_the_generators_of_wgan_and_lsgan_only_and_never_in_a_critic():
    for cls, batchnorm in ((LSGAN, True), (WGAN, True), (WGANGP, False)):
        model = small(cls)
        norms = [m for m in model.generator if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
        full = bool(model.config.g_full_res_channels)  # one more after the last ConvT
        assert len(norms) == (3 + full if batchnorm else 0), cls
        assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.discriminator)


def test_sampling_uses_running_statistics_and_changes_no_state(rng):
    model = small(LSGAN, ema=0.0)
    for _ in range(3):
        model.train_step(rng.uniform(-1, 1, (4, 144)))
    before = model.generator.state_dict()
    z = model.sample_noise(4)
    one = model.generate(z[:1])  # in evaluation mode each image depends on its own z only
    assert np.allclose(one, model.generate(z)[:1])
    assert model.generator.training
    for key, value in model.generator.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_pack_in_the_critic_scores_pairs(rng):
    config = ArchConfig(image_size=144, base_channels=2)
    D = build_critic(config, rng, np.float64, pack=2)
    assert D.forward(rng.standard_normal((6, 144))).shape == (3, 1)
    assert count_parameters(config, pack=2) - count_parameters(config) == 2 * 25


def test_config_for_images_refuses_what_the_convolutions_cannot_take():
    config = WGANGP.default_config()
    assert WGANGP.config_for_images(config, (3, 32, 32)).image_size == 3072
    with pytest.raises(ValueError, match="arch 'conv' takes square grey or RGB images"):
        WGANGP.config_for_images(config, (1, 28, 30))
    mlp = dataclasses.replace(config, arch="mlp")
    assert WGANGP.config_for_images(mlp, (1, 28, 30)).image_size == 840


# --- the penalty through the convolutional critic -----------------------------------------


@pytest.mark.parametrize("batch", [1, 4])
def test_conv_critic_penalty_gradient_matches_finite_differences(
    rng, assert_gradients_match, batch
):
    """dP/dw for every parameter of the convolutional critic, P itself nudged (h: the
    module docstring). The biases of a LeakyReLU critic get exactly nothing."""
    model = small(WGANGP, base_channels=1, pack=1)  # 1, 1, 2, 4 channels: few weights
    x_hat = rng.uniform(-1, 1, (batch, 144))
    analytic, errors = penalty_gradient_errors(model, x_hat)
    assert all(not analytic[name].any() for name in analytic if name.endswith("bias"))
    assert_gradients_match({k: v for k, v in errors.items() if k.endswith("weight")})
    assert max(v for k, v in errors.items() if k.endswith("bias")) == 0


def torch_penalty(torch, critic, x_hat, lam):
    x_hat = x_hat.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return lam * ((g.norm(2, dim=1) - 1) ** 2).mean()


def test_conv_critic_penalty_gradient_matches_pytorch(rng):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity test skipped")
    model = small(WGANGP, base_channels=3, image_size=256, pack=1)
    critic = to_torch(model.discriminator)
    x_hat = rng.uniform(-1, 1, (6, 256))
    model.discriminator.zero_grad()
    penalty, _ = model.gradient_penalty(x_hat)
    value_t = torch_penalty(torch, critic, torch.from_numpy(x_hat), model.config.gp_weight)
    grads_t = torch.autograd.grad(value_t, list(critic.parameters()), allow_unused=True)
    assert float(penalty) == pytest.approx(value_t.item(), rel=1e-12)
    for (name, p), g_t in zip(model.discriminator.named_parameters(), grads_t, strict=True):
        expected = np.zeros(p.shape) if g_t is None else g_t.numpy()
        np.testing.assert_allclose(p.grad, expected, rtol=1e-9, atol=1e-13, err_msg=name)


def test_full_conv_wgan_gp_critic_step_matches_pytorch(rng):
    """Wasserstein loss + penalty, one Adam step with the model's own rate, three times
    (each image judged alone: the packed penalty has its own parity test below)."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity test skipped")
    model = small(WGANGP, pack=1)
    critic = to_torch(model.discriminator)
    config = model.config
    opt = torch.optim.Adam(critic.parameters(), lr=config.lr, betas=config.betas)
    for _ in range(3):
        real, fake = rng.uniform(-1, 1, (4, 144)), rng.uniform(-1, 1, (4, 144))
        eps = rng.uniform(size=(4, 1))
        model.noise_rng = FixedNoise(eps)
        ours = model.discriminator_step(real, fake)

        real_t, fake_t, eps_t = (torch.from_numpy(a) for a in (real, fake, eps))
        x_hat = eps_t * real_t + (1 - eps_t) * fake_t
        penalty = torch_penalty(torch, critic, x_hat, config.gp_weight)
        loss = critic(fake_t).mean() - critic(real_t).mean() + penalty
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert float(ours["d_loss"]) == pytest.approx(loss.item(), rel=1e-10)
    for name, value in model.discriminator.state_dict().items():
        expected = critic.state_dict()[name].numpy()
        np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-12, err_msg=name)


class FixedNoise:
    """Stands in for the model's device RNG: hands out the interpolation weights chosen."""

    def __init__(self, eps):
        self.eps = eps

    def random(self, shape, dtype):
        return self.eps


# --- training, checkpoints, the CuPy path ------------------------------------------------


@pytest.mark.parametrize("cls", CONV_MODELS)
@pytest.mark.parametrize("full_res", [{}, {"g_full_res_channels": 3}])  # and G's full maps
def test_conv_models_train_and_resume_bit_identically(rng, cls, full_res):
    batches = [rng.uniform(-1, 1, (4, 144)).astype(np.float32) for _ in range(12)]
    settings = {"dtype": np.float32, "lr": 0.01, **full_res}
    straight = small(cls, seed=1, **settings)
    for batch in batches:
        stats = straight.train_step(batch)
    assert all(np.isfinite(float(v)) for v in stats.values() if v is not None)
    first = small(cls, seed=1, **settings)
    for batch in batches[:7]:
        first.train_step(batch)
    resumed = small(cls, seed=2, **settings)
    resumed.load_state_dict(first.state_dict())
    resumed.noise_rng = first.noise_rng
    for batch in batches[7:]:
        resumed.train_step(batch)
    a, b = straight.state_dict(), resumed.state_dict()
    for part in ("generator", "discriminator", "g_optimizer", "d_optimizer"):
        for key, value in a[part].items():
            np.testing.assert_array_equal(value, b[part][key], err_msg=f"{part} {key}")


@pytest.mark.parametrize("name", ["lsgan", "wgan", "wgan-gp"])
def test_old_checkpoints_without_arch_resume_as_the_mlp_they_trained(name):
    """A config saved before ``arch`` (and ``ema``) existed names neither: upgraded, it is
    the MLP with samples from the live G, and the saved MLP weights load into it."""
    cls = MODELS[name]
    old_config = dataclasses.replace(cls.default_config(), arch="mlp", ema=0.0, hidden=8, pack=1)
    old = cls(old_config, seed=0, dtype=np.float32)
    saved = old_config.to_dict()
    for field in ("arch", "base_channels", "ema", "pack"):  # what a checkpoint then lacks
        del saved[field]
    state = upgrade({"gan": old.state_dict(), "config": saved})
    config = cls.config_class(**state["config"])
    assert (config.arch, config.ema, config.pack) == ("mlp", 0.0, 1)
    model = cls(config, seed=1, dtype=np.float32)
    model.load_state_dict(state["gan"])
    assert isinstance(model.discriminator[0], nn.Linear) and model.generator_ema is None
    for key, value in old.state_dict()["generator"].items():
        np.testing.assert_array_equal(model.state_dict()["generator"][key], value)
    assert cls.default_config().arch == ("mlp" if cls is WGAN else "conv")  # a new run's


@pytest.mark.parametrize("cls", CONV_MODELS)
@pytest.mark.parametrize(("arch", "pack"), [("conv", 1), ("mlp", 1), ("conv", 2)])
def test_the_cupy_stand_in_gives_the_numpy_steps_and_reads_nothing(fake_cupy, cls, arch, pack):
    from minigan.backend import get_backend, to_host

    def run(backend):
        sizes = {"latent_dim": 3, "base_channels": 2, "image_size": 144, "batch_size": 4}
        config = dataclasses.replace(
            cls.default_config(), **sizes, arch=arch, hidden=8, ema=0.9, pack=pack
        )
        model = cls(config, backend, seed=0, dtype=np.float32)
        images = np.random.default_rng(3).uniform(-1, 1, (4, 144)).astype(np.float32)
        batch = get_backend(backend).asarray(images)
        model.train_step(batch)
        fake_cupy.reset()
        figures = [model.train_step(batch) for _ in range(5)]
        if backend == "cupy":
            assert fake_cupy.reads == [] and fake_cupy.uploads == []
        model.reseed_noise(9)
        samples = to_host(model.generate(model.sample_noise(3)))
        figures = [{k: to_host(v) for k, v in f.items() if v is not None} for f in figures]
        return model.state_dict(), figures, samples

    expected, got = run("numpy"), run("cupy")
    for part in ("generator", "discriminator", "g_optimizer", "d_optimizer"):
        for key, value in expected[0][part].items():
            same = np.asarray(got[0][part][key]).tobytes() == np.asarray(value).tobytes()
            assert same, f"{part} {key}"
    for a, b in zip(expected[1], got[1], strict=True):
        assert {k: v.tobytes() for k, v in a.items()} == {k: v.tobytes() for k, v in b.items()}
    assert got[2].tobytes() == expected[2].tobytes()


# --- PacGAN in the critic (``pack``) --------------------------------------------------------


@pytest.mark.parametrize("name", ["lsgan", "wgan", "wgan-gp"])
@pytest.mark.parametrize(
    "field, before, network",
    [
        ("pack", 1, "discriminator"),  # the critic took one image (1 input channel)
        ("g_full_res_channels", 0, "generator"),  # G's last ConvT drew the image
    ],
)
def test_conv_checkpoints_from_before_a_field_resume_as_they_trained(name, field, before, network):
    """A convolutional run saved before ``field`` existed: it upgrades to the value it
    trained with, ``before``, and its weights load."""
    cls = MODELS[name]
    old_config = dataclasses.replace(small(cls).config, **{field: before})
    old = cls(old_config, seed=0, dtype=np.float32)
    saved = old_config.to_dict()
    del saved[field]
    state = upgrade({"gan": old.state_dict(), "config": saved})
    model = cls(cls.config_class(**state["config"]), seed=1, dtype=np.float32)
    assert getattr(model.config, field) == before
    model.load_state_dict(state["gan"])
    for key, value in old.state_dict()[network].items():
        np.testing.assert_array_equal(model.state_dict()[network][key], value)


@pytest.mark.parametrize("cls", CONV_MODELS)
@pytest.mark.parametrize("arch", ["conv", "mlp"])
def test_pack_gives_one_critic_score_per_pack_in_either_arch(rng, cls, arch):
    model = small(cls, arch=arch, hidden=8, pack=2)
    assert isinstance(model.discriminator[0], nn.Pack)
    built = sum(p.data.size for net in (model.generator, model.discriminator)
                for p in net.parameters())  # fmt: skip
    assert cls.parameter_count(model.config) == built
    assert model.discriminator.forward(rng.uniform(-1, 1, (4, 144))).shape == (2, 1)
    stats = model.train_step(rng.uniform(-1, 1, (4, 144)))
    assert all(np.isfinite(float(v)) for v in stats.values() if v is not None)


def test_lsgan_judges_pairs_by_default_and_the_wgans_single_images():
    assert LSGAN.default_config().pack == 2
    assert WGAN.default_config().pack == WGANGP.default_config().pack == 1
    D = LSGAN(LSGAN.default_config(), seed=0).discriminator
    assert isinstance(D[0], nn.Pack) and D[2].in_channels == 2


def test_pack_must_divide_the_batch():
    with pytest.raises(ValueError, match="batch size 6 is not a multiple of pack 4"):
        WGANGPConfig(batch_size=6, pack=4)
    with pytest.raises(ValueError, match="pack must be a positive integer, got 0"):
        WGANGPConfig(pack=0)


def test_lsgan_with_pack_fits_real_packs_to_1_and_fake_packs_to_0(rng):
    """The stacked pass with packs: n/m scores of real packs (target 1), then n/m of fake."""
    model = small(LSGAN, pack=2)
    real, fake = rng.uniform(-1, 1, (4, 144)), rng.uniform(-1, 1, (4, 144))
    scores = model.discriminator.forward(np.concatenate([real, fake]))
    expected = 0.5 * ((scores[:2] - 1) ** 2).mean() + 0.5 * (scores[2:] ** 2).mean()
    stats = model.discriminator_step(real, fake)
    assert float(stats["d_loss"]) == pytest.approx(expected, rel=1e-12)
    assert float(stats["d_real"]) == pytest.approx(scores[:2].mean(), rel=1e-12)


def test_wgan_gp_interpolates_each_pack_along_one_line(rng):
    """One eps per pack, shared by its m images: x^'s pack is on the segment between the
    real pack and the fake one, where the critic's input is the pack."""
    model = small(WGANGP, pack=2)
    real, fake = rng.uniform(-1, 1, (4, 144)), rng.uniform(-1, 1, (4, 144))
    x_hat = model.interpolate(real, fake)
    eps = (x_hat - fake)[:, :1] / (real - fake)[:, :1]
    np.testing.assert_allclose(eps[0::2], eps[1::2], rtol=1e-12)
    np.testing.assert_allclose(x_hat, eps * real + (1 - eps) * fake, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("batch", [2, 4])
def test_packed_critic_penalty_gradient_matches_finite_differences(
    rng, assert_gradients_match, batch
):
    """dP/dw with pairs: each norm is over a pack's two images together (h: module doc)."""
    model = small(WGANGP, base_channels=1, pack=2)
    x_hat = rng.uniform(-1, 1, (batch, 144))
    _, errors = penalty_gradient_errors(model, x_hat)
    assert_gradients_match({k: v for k, v in errors.items() if k.endswith("weight")})
    assert max(v for k, v in errors.items() if k.endswith("bias")) == 0


def test_packed_critic_penalty_matches_pytorch(rng):
    """PyTorch's penalty on the packed input (batch / 2, 2 * 256): norms over each pair."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity test skipped")
    model = small(WGANGP, base_channels=3, image_size=256, pack=2)
    critic = to_torch(model.discriminator)
    x_hat = rng.uniform(-1, 1, (6, 256))
    model.discriminator.zero_grad()
    penalty, grad_norm = model.gradient_penalty(x_hat)

    x_t = torch.from_numpy(x_hat).requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x_t).sum(), x_t, create_graph=True)
    norms = g.reshape(3, 2 * 256).norm(2, dim=1)
    value_t = model.config.gp_weight * ((norms - 1) ** 2).mean()
    grads_t = torch.autograd.grad(value_t, list(critic.parameters()), allow_unused=True)
    assert float(penalty) == pytest.approx(value_t.item(), rel=1e-12)
    assert float(grad_norm) == pytest.approx(norms.mean().item(), rel=1e-12)
    for (name, p), g_t in zip(model.discriminator.named_parameters(), grads_t, strict=True):
        expected = np.zeros(p.shape) if g_t is None else g_t.numpy()
        np.testing.assert_allclose(p.grad, expected, rtol=1e-9, atol=1e-13, err_msg=name)


@pytest.mark.parametrize("cls", CONV_MODELS)
def test_packed_conv_models_resume_bit_identically(rng, cls):
    batches = [rng.uniform(-1, 1, (4, 144)).astype(np.float32) for _ in range(8)]
    straight = small(cls, seed=1, dtype=np.float32, lr=0.01, pack=2)
    for batch in batches:
        straight.train_step(batch)
    first = small(cls, seed=1, dtype=np.float32, lr=0.01, pack=2)
    for batch in batches[:5]:
        first.train_step(batch)
    resumed = small(cls, seed=2, dtype=np.float32, lr=0.01, pack=2)
    resumed.load_state_dict(first.state_dict())
    resumed.noise_rng = first.noise_rng
    for batch in batches[5:]:
        resumed.train_step(batch)
    a, b = straight.state_dict(), resumed.state_dict()
    for part in ("generator", "discriminator", "g_optimizer", "d_optimizer"):
        for key, value in a[part].items():
            np.testing.assert_array_equal(value, b[part][key], err_msg=f"{part} {key}")


# --- WGAN's BatchNorm critic (``d_norm="batch"``) ------------------------------------------


def test_batchnorm_critic_normalises_the_inner_convolutions_only(rng):
    """BatchNorm after the 2nd and 3rd convolutions (none at the input), whose biases it
    replaces; WGAN-GP and LSGAN keep a critic without it."""
    model = small(WGAN, d_norm="batch")
    D, dim = model.discriminator, model.config.base_channels
    norms = [m for m in D if isinstance(m, nn.BatchNorm2d)]
    convs = [m for m in D if isinstance(m, nn.Conv2d)]
    assert [n.num_features for n in norms] == [2 * dim, 4 * dim]
    assert [c.bias is not None for c in convs] == [True, False, False]
    for i, layer in enumerate(D):
        if isinstance(layer, nn.BatchNorm2d):
            assert isinstance(D[i - 1], nn.Conv2d) and isinstance(D[i + 1], nn.LeakyReLU)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in small(WGAN).discriminator)
    assert not WGANGP.critic_batchnorm(small(WGANGP).config)
    with pytest.raises(ValueError, match="d_norm must be one of"):
        WGANConfig(d_norm="layer")


@pytest.mark.parametrize("pack", [1, 2])
@pytest.mark.parametrize("image_size", [784, 3 * 32 * 32])
def test_batchnorm_critic_parameter_count(pack, image_size):
    config = dataclasses.replace(
        WGAN.default_config(), arch="conv", d_norm="batch", pack=pack, image_size=image_size
    )
    model = WGAN(dataclasses.replace(config, base_channels=4), seed=0, dtype=np.float32)
    built = sum(p.data.size for net in (model.generator, model.discriminator)
                for p in net.parameters())  # fmt: skip
    assert WGAN.parameter_count(model.config) == built
    assert model.discriminator.forward(model.generate(model.sample_noise(4))).shape == (
        4 // pack,
        1,
    )


def batchnorm_critic_loss(D, real, fake):
    """The critic loss in two passes, each batch normalised by its own statistics."""
    return D.forward(fake).mean() - D.forward(real).mean()


def test_batchnorm_critic_gradients_match_finite_differences(rng, assert_gradients_match):
    """dL/dw of L = mean D(fake) - mean D(real), two passes in training mode, and dL/d(fake),
    what G's step receives (through the fake batch's own mean and variance too).

    L is smooth in each weight and input while no pre-activation crosses LeakyReLU's
    kink. BatchNorm centres every channel on the kink, so some normalised values lie
    close to it: with h = 1e-5 one nudge of a weight before a BatchNorm crosses it (an
    error of 1e-2 on that entry), with h = 1e-6 none does for this seed. So h = 1e-6:
    truncation O(h^2 L3) ~ 1e-12 (L3 the third derivative), rounding 1e-16 |L| / h ~ 1e-10.
    """
    from minigan.gradcheck import numerical_gradient, relative_error

    model = small(WGAN, d_norm="batch", base_channels=2)
    D = model.discriminator
    real, fake = rng.uniform(-1, 1, (4, 144)), rng.uniform(-1, 1, (4, 144))
    D.zero_grad()
    s = D.forward(real)
    D.backward(np.full_like(s, -1 / s.shape[0]), input_grad=False)
    s = D.forward(fake)
    grad_fake = D.backward(np.full_like(s, 1 / s.shape[0]))
    errors = {}
    for name, p in D.named_parameters():
        numeric = numerical_gradient(lambda: batchnorm_critic_loss(D, real, fake), p.data, h=1e-6)
        if name == "10.bias":  # the score's offset cancels in the difference: exactly 0
            assert not p.grad.any() and np.abs(numeric).max() < 1e-8
            continue
        errors[name] = relative_error(p.grad, numeric)
    numeric = numerical_gradient(lambda: batchnorm_critic_loss(D, real, fake), fake, h=1e-6)
    errors["fake images"] = relative_error(grad_fake, numeric)
    assert_gradients_match(errors)


def test_batchnorm_wgan_critic_and_generator_steps_match_pytorch(rng):
    """Three critic steps as the reference code takes them (netD(real), netD(fake) apart,
    RMSprop, every parameter clamped to [-c, c]), then the gradient G receives."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity test skipped")
    model = small(WGAN, d_norm="batch", lr=1e-3, n_critic=100)
    critic = to_torch(model.discriminator)
    config = model.config
    opt = torch.optim.RMSprop(critic.parameters(), lr=config.lr, alpha=0.99, eps=1e-8)
    for _ in range(3):
        real, fake = rng.uniform(-1, 1, (4, 144)), rng.uniform(-1, 1, (4, 144))
        ours = model.discriminator_step(real, fake)
        real_t, fake_t = torch.from_numpy(real), torch.from_numpy(fake)
        opt.zero_grad()
        score_real = critic(real_t).mean()  # the reference code: two separate passes
        score_fake = critic(fake_t).mean()
        loss = score_fake - score_real
        loss.backward()
        opt.step()
        with torch.no_grad():
            for p in critic.parameters():
                p.clamp_(-config.clip, config.clip)
        assert float(ours["d_loss"]) == pytest.approx(loss.item(), rel=1e-10)
        assert float(ours["wasserstein"]) == pytest.approx(-loss.item(), rel=1e-10)
    for name, value in model.discriminator.state_dict().items():  # running statistics too
        expected = critic.state_dict()[name].numpy()
        np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-12, err_msg=name)

    fake = rng.uniform(-1, 1, (4, 144))
    D = model.discriminator
    scores = D.forward(fake)
    with nn_frozen(D):
        grad_fake = D.backward(np.full_like(scores, -1 / 4))  # of G's loss -mean D(G(z))
    fake_t = torch.from_numpy(fake).requires_grad_(True)
    (expected,) = torch.autograd.grad(-critic(fake_t).mean(), fake_t)
    np.testing.assert_allclose(grad_fake, expected.numpy(), rtol=1e-9, atol=1e-14)


def nn_frozen(module):
    from minigan.models.base import frozen

    return frozen(module)


@pytest.mark.parametrize("pack", [1, 2])
def test_batchnorm_wgan_resumes_bit_identically(rng, pack):
    """Straight through, or saved in the middle and resumed (G's average and BatchNorm's
    running statistics too)."""
    settings = {"d_norm": "batch", "pack": pack}
    batches = [rng.uniform(-1, 1, (4, 144)).astype(np.float32) for _ in range(30)]
    kwargs = {"dtype": np.float32, "lr": 0.01, "ema": 0.9, "g_full_res_channels": 3}
    straight = small(WGAN, seed=1, **kwargs, **settings)
    for batch in batches:
        stats = straight.train_step(batch)
    assert all(np.isfinite(float(v)) for v in stats.values() if v is not None)
    first = small(WGAN, seed=1, **kwargs, **settings)
    for batch in batches[:13]:
        first.train_step(batch)
    resumed = small(WGAN, seed=2, **kwargs, **settings)
    resumed.load_state_dict(first.state_dict())
    resumed.noise_rng = first.noise_rng
    for batch in batches[13:]:
        resumed.train_step(batch)
    assert_same_state(straight.state_dict(), resumed.state_dict())


def assert_same_state(a, b, where="state"):
    """Every array of two (nested) state dicts equal, bit for bit."""
    assert a.keys() == b.keys(), where
    for key, value in a.items():
        if isinstance(value, dict):
            assert_same_state(value, b[key], f"{where} {key}")
        else:
            np.testing.assert_array_equal(value, b[key], err_msg=f"{where} {key}")


def test_batchnorm_wgan_on_the_cupy_stand_in_gives_the_numpy_steps(fake_cupy):
    """The two-pass step on the stand-in: the same bits as NumPy's, nothing read back
    (also a scenario of tests/cupy_scenarios.py, "train_step[wgan+d_batchnorm]")."""
    from minigan.backend import to_host

    def run(backend):
        settings = {"d_norm": "batch", "ema": 0.9, "n_critic": 2}
        config = small(WGAN, **settings).config
        model = WGAN(config, backend, seed=0, dtype=np.float32)
        train_reading_nothing(model, backend, fake_cupy, steps=24)
        return {k: to_host(v) for part in ("generator", "discriminator")
                for k, v in model.state_dict()[part].items()}  # fmt: skip

    expected, got = run("numpy"), run("cupy")
    for key, value in expected.items():
        assert np.asarray(got[key]).tobytes() == np.asarray(value).tobytes(), key


@pytest.mark.parametrize("arch", ["mlp", "points"])
def test_wgan_refuses_a_batchnorm_critic_without_the_convolutions(arch):
    from minigan.models.wgan import WGANConfig

    with pytest.raises(
        ValueError, match=r"a BatchNorm critic \(d_norm 'batch'\) needs arch 'conv'"
    ):
        WGANConfig(arch=arch, d_norm="batch")
