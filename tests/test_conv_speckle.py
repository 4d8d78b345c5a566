"""G's full-resolution ending in the convolutional family (``g_full_res_channels`` in
minigan/models/convnets.py): the last transposed convolution makes c maps of the image's
size and a 3x3 convolution draws the image from them, as DCGAN's default G.

Gradient checks run in float64 with central differences, h = 1e-5: G is a chain of
Linear, ConvT (linear in their inputs and weights), BatchNorm, ReLU and Tanh, so the
truncation error is O(h^2 f''') ~ 1e-10 away from ReLU's kink (no pre-activation of
these seeds lies within 1e-5 of 0: the errors below would show it at ~1e-3), and
rounding 1e-16 |f| / h ~ 1e-11.
"""

import dataclasses

import numpy as np
import pytest
from conftest import train_reading_nothing

from minigan import nn
from minigan.gradcheck import check_module
from minigan.models import LSGAN, WGAN, WGANGP, WGANGPConfig
from minigan.models.convnets import ArchConfig, build_generator
from minigan.testing.pytorch import to_torch

CONV_MODELS = [LSGAN, WGAN, WGANGP]


def small(cls, seed=0, dtype=np.float64, **changes):
    """The model's defaults with arch 'conv' on 12x12 grey images, 2 base channels."""
    sizes = {"latent_dim": 3, "base_channels": 2, "image_size": 144, "batch_size": 4}
    config = dataclasses.replace(cls.default_config(), arch="conv", **{**sizes, **changes})
    return cls(config, seed=seed, dtype=dtype)


def built(model):
    return sum(p.data.size for net in (model.generator, model.discriminator)
               for p in net.parameters())  # fmt: skip


@pytest.mark.parametrize("cls", CONV_MODELS)
@pytest.mark.parametrize(("image_size", "channels"), [(144, 1), (3 * 144, 3)])
def test_the_last_convt_makes_c_full_size_maps_and_a_3x3_convolution_draws_the_image(
    cls, image_size, channels
):
    model = small(cls, g_full_res_channels=3, image_size=image_size)
    G, dim = model.generator, model.config.base_channels
    convts = [m for m in G if isinstance(m, nn.ConvTranspose2d)]
    shapes = [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convts]
    assert shapes[-2:] == [(dim, 3, 5, 2, 2), (3, channels, 3, 1, 1)]
    tail = [type(m) for m in G][-6 if cls.g_batchnorm else -5 :]
    middle = [nn.BatchNorm2d] if cls.g_batchnorm else []
    assert tail == [nn.ConvTranspose2d, *middle, nn.ReLU, nn.ConvTranspose2d, nn.Tanh, nn.Flatten]
    maps = model.sample_noise(2)
    for layer in G:
        maps = layer.forward(maps)
        if layer is convts[-2]:
            assert maps.shape == (2, 3, 12, 12)  # the image's size, c maps
    assert maps.shape == (2, image_size) and np.abs(maps).max() <= 1
    assert cls.parameter_count(model.config) == built(model)
    plain = dataclasses.replace(model.config, g_full_res_channels=0)
    assert cls.parameter_count(plain) == built(cls(plain, seed=0))
    assert cls.memory_bytes(model.config, 64) > cls.memory_bytes(plain, 64)


@pytest.mark.parametrize("cls", CONV_MODELS)
def test_zero_full_res_channels_is_their_g_unchanged(cls):
    """``g_full_res_channels`` 0: the last ConvT draws the image, as WGAN-GP's code."""
    G = small(cls, g_full_res_channels=0).generator
    last = [m for m in G if isinstance(m, nn.ConvTranspose2d)][-1]
    assert (last.in_channels, last.out_channels, last.kernel_size, last.stride) == (2, 1, 5, 2)
    assert isinstance(G[-2], nn.Tanh) and G[-3] is last


def test_the_option_takes_integers_from_zero_up():
    assert ArchConfig(g_full_res_channels=0).g_full_res_channels == 0
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="g_full_res_channels must be an integer >= 0"):
            WGANGPConfig(g_full_res_channels=bad)


@pytest.mark.parametrize("batchnorm", [False, True], ids=["no-bn", "bn-eval"])
def test_the_full_res_generator_backward_matches_finite_differences(
    rng, assert_gradients_match, batchnorm
):
    """With BatchNorm, in evaluation mode (an affine map of fixed statistics). In
    training mode the biases before each BatchNorm get exactly 0 (the batch mean takes
    them out), which a finite difference gives as rounding noise (relative error 1),
    and the weights before it disagreed too (0.03-0.13 on a batch of 3, not resolved
    here); the PyTorch test below covers training mode."""
    config = ArchConfig(latent_dim=3, base_channels=2, image_size=144, g_full_res_channels=3)
    G = build_generator(config, rng, np.float64, batchnorm=batchnorm)
    if batchnorm:
        G.forward(rng.standard_normal((8, 3)))  # running statistics away from (0, 1)
        G.eval()
    assert_gradients_match(check_module(G, rng.standard_normal((3, 3))))


def test_the_full_res_generator_matches_pytorch(rng):
    """The same weights in torch's layers, BatchNorm in training mode: the forward pass
    and every gradient agree."""
    torch = pytest.importorskip("torch")
    config = ArchConfig(latent_dim=3, base_channels=2, image_size=144, g_full_res_channels=3)
    G = build_generator(config, rng, np.float64, batchnorm=True)
    twin = to_torch(G, dtype=torch.float64)
    z, r = rng.standard_normal((4, 3)), rng.standard_normal((4, 144))
    out = G.forward(z)
    G.backward(r)
    expected = twin(torch.from_numpy(z))
    (expected * torch.from_numpy(r)).sum().backward()
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    grads = {name: p.grad.numpy() for name, p in twin.named_parameters()}
    for name, p in G.named_parameters():
        np.testing.assert_allclose(p.grad, grads[name], rtol=1e-7, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("cls", CONV_MODELS)
def test_the_cupy_stand_in_gives_the_numpy_steps_and_reads_nothing(fake_cupy, cls):
    from minigan.backend import to_host

    def run(backend):
        model = small(cls, dtype=np.float32, g_full_res_channels=3, ema=0.9, pack=2)
        model = cls(model.config, backend, seed=0, dtype=np.float32)
        train_reading_nothing(model, backend, fake_cupy, steps=5)
        model.reseed_noise(9)
        return model.state_dict(), to_host(model.generate(model.sample_noise(3)))

    expected, got = run("numpy"), run("cupy")
    for part in ("generator", "discriminator", "g_optimizer", "d_optimizer"):
        for key, value in expected[0][part].items():
            same = np.asarray(got[0][part][key]).tobytes() == np.asarray(value).tobytes()
            assert same, f"{part} {key}"
    assert got[1].tobytes() == expected[1].tobytes()


def test_lsgan_ends_in_eight_full_size_maps_by_default_and_the_wgans_do_not():
    assert LSGAN.default_config().g_full_res_channels == 8
    G = LSGAN(LSGAN.default_config(), seed=0).generator
    assert [m.out_channels for m in G if isinstance(m, nn.ConvTranspose2d)][-2:] == [8, 1]
    assert WGAN.default_config().g_full_res_channels == 0
