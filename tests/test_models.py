"""The GAN family (minigan.models): the interface, each model's step, the WGAN-GP penalty's
gradient (finite differences and PyTorch), resume, cross-model states, and learning."""

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from backend_agreement import assert_models_agree
from conftest import hold_weights, penalty_gradient_errors

from minigan import data, nn
from minigan.gradcheck import numerical_gradient, relative_error
from minigan.models import (
    ACGAN,
    CGAN,
    DCGAN,
    GAN,
    LSGAN,
    MODELS,
    WGAN,
    WGANGP,
    CycleGAN,
    DCGANConfig,
    GANConfig,
    StackGAN,
    WGANConfig,
    WGANGPConfig,
)
from minigan.testing.pytorch import to_torch

TINY = {"latent_dim": 3, "hidden": 5, "image_size": 6, "batch_size": 4}
TINY_DCGAN = {"latent_dim": 3, "base_channels": 2, "batch_size": 4}  # 28x28 images
# The unlabelled models; cgan, acgan and sgan: tests/test_labelled_models.py.
# The models trained on one set of images, from noise (CycleGAN translates: test_cyclegan.py;
# StackGAN draws from captions: test_stackgan.py).
UNLABELLED = [
    name for name, cls in MODELS.items() if not (cls.labelled or cls.translation or cls.captioned)
]
MLP_MODELS = [name for name in UNLABELLED if name != "dcgan"]  # DCGAN: tests/test_dcgan.py


# The recipes these tests were written for, before the convolutions became the default
# (issue 26; --arch conv: tests/test_conv_family.py): the MLPs, samples from the live G,
# and WGAN-GP's paper rate and critic steps.
MLP_RECIPES = {
    LSGAN: {"arch": "mlp", "ema": 0.0, "pack": 1},
    WGAN: {"arch": "mlp", "ema": 0.0},
    WGANGP: {"arch": "mlp", "ema": 0.0, "lr": 1e-4, "n_critic": 5},
    ACGAN: {"arch": "mlp"},  # its convolutions: tests/test_acgan.py
    CGAN: {"arch": "mlp"},  # its convolutions: tests/test_cgan_conv.py
}


# CycleGAN's and StackGAN's tiny networks, for the tests that take every model.
TINY_CYCLEGAN = {"image_size": 8, "base_channels": 2, "residual_blocks": 1, "d_layers": 1}
TINY_STACKGAN = {"latent_dim": 4, "text_dim": 6, "c_dim": 3, "d_text_dim": 3, "g1_channels": 4,
                 "g2_channels": 4, "d_channels": 2, "residual_blocks": 1, "batch_size": 4}  # fmt: skip
TINY_SIZES = {DCGAN: TINY_DCGAN, CycleGAN: TINY_CYCLEGAN, StackGAN: TINY_STACKGAN}


def tiny(cls, seed=0, dtype=np.float64, **changes):
    sizes = TINY_SIZES.get(cls, TINY)
    sizes = {**sizes, **MLP_RECIPES.get(cls, {})}
    config = dataclasses.replace(cls.default_config(), **{**sizes, **changes})
    return cls(config, seed=seed, dtype=dtype)


def real_batch(rng, n=4, dtype=np.float64, shape=(6,)):
    return rng.uniform(-1, 1, (n, *shape)).astype(dtype)


class FixedNoise:
    """Stands in for a model's device RNG: hands out the arrays a test chose."""

    def __init__(self, z=None, eps=None):
        self.z, self.eps = z, eps

    def standard_normal(self, shape, dtype):
        return self.z

    def random(self, shape, dtype):
        return self.eps


# --- the interface ----------------------------------------------------------------


def test_registry_names_and_the_interface_every_model_offers(rng):
    assert list(MODELS) == [
        "gan", "lsgan", "wgan", "wgan-gp", "dcgan", "cgan", "acgan", "sgan", "cyclegan",
        "stackgan",
    ]  # fmt: skip
    assert [name for name in MODELS if MODELS[name].labelled] == ["cgan", "acgan", "sgan"]
    assert [name for name in MODELS if MODELS[name].conditional] == ["cgan", "acgan"]
    assert [name for name in MODELS if MODELS[name].translation] == ["cyclegan"]  # its own tests
    assert [name for name in MODELS if MODELS[name].captioned] == ["stackgan"]  # its own tests
    for name in UNLABELLED:
        cls = MODELS[name]
        assert cls.name == name
        config = cls.default_config()
        assert isinstance(config, cls.config_class)
        assert cls.config_class(**config.to_dict()) == config  # a checkpoint's round trip
        assert config is not cls.default_config()  # a fresh copy each time
        model = tiny(cls)
        steps = max(getattr(model.config, "n_critic", 1), getattr(model.config, "d_steps", 1))
        for _ in range(steps):
            stats = model.train_step(real_batch(rng, shape=model.image_shape))
        assert list(stats) == list(cls.stats) or set(stats) == set(cls.stats), name
        for key, value in stats.items():
            assert isinstance(value, np.ndarray) and value.shape == (), (name, key)
            assert np.isfinite(value), (name, key)
        assert model.steps == steps
        assert model.generate(model.sample_noise(3)).shape == (3, *model.image_shape)


# The fields with a command-line flag of their own (examples/mnist_gan.py builds them):
# those that had one before the flags were generated, and the labelled models' choices.
FLAGGED = {
    "batch_size", "lr", "g_lr", "d_lr", "ema", "minibatch_std", "pack", "d_dropout", "d_noise",
    "d_augment", "d_norm", "d_fc_width", "g_fc_width", "latent_dim", "hidden", "base_channels",
    "g_full_res_channels", "g_activation", "generator_loss", "d_steps", "n_critic", "clip",
    "gp_weight", "labels", "discriminator", "classifier", "twin_weight", "arch",
    "residual_blocks", "d_layers", "cycle_weight", "identity_weight", "pool_size",
    "text_dim", "c_dim", "d_text_dim", "g1_channels", "g2_channels", "d_channels", "kl_weight",
    "stage1_share",
}  # fmt: skip


def test_every_config_field_carries_its_help_and_says_whether_it_is_a_flag():
    from minigan.models import acgan, cgan, convnets, dcgan, gan, mlp

    choices = {
        "g_activation": tuple(mlp.ACTIVATIONS), "generator_loss": gan.GENERATOR_LOSSES,
        "d_norm": dcgan.D_NORMS, "discriminator": cgan.DISCRIMINATORS,
        "classifier": acgan.CLASSIFIERS, "arch": convnets.ARCHS,
    }  # fmt: skip
    flagged = set()
    for cls in MODELS.values():
        fields = dataclasses.fields(cls.config_class)
        for field in fields:
            help_text = field.metadata.get("help", "")
            assert help_text and "\n" not in help_text, (cls.name, field.name)
            assert field.metadata.get("choices") == choices.get(field.name), field.name
            if field.metadata.get("flag", True):
                flagged.add(field.name)
        assert cls.config_class.__doc__.count("\n") <= 1, cls.config_class  # one line
    assert flagged == FLAGGED


def test_frozen_holds_the_parameters_gradients_and_switches_them_back(rng):
    from minigan.models.base import frozen

    D = nn.Sequential(nn.Linear(3, 2, rng=rng, dtype=np.float64), nn.Tanh())
    y = D(rng.standard_normal((4, 3)))
    with frozen(D):
        assert not any(p.requires_grad for p in D.parameters())
        dx = D.backward(np.ones_like(y))  # the gradient crosses D
    assert dx.shape == (4, 3) and not any(p.grad.any() for p in D.parameters())
    assert all(p.requires_grad for p in D.parameters())
    with pytest.raises(RuntimeError), frozen(D):
        raise RuntimeError("a failed backward")
    assert all(p.requires_grad for p in D.parameters())


def test_paper_defaults():
    wgan, gp = MODELS["wgan"].default_config(), MODELS["wgan-gp"].default_config()
    assert (wgan.lr, wgan.clip, wgan.n_critic, wgan.batch_size) == (5e-5, 0.01, 5, 64)
    assert (gp.lr, gp.betas, gp.gp_weight, gp.n_critic, gp.batch_size) == (
        3e-4, (0.5, 0.9), 10.0, 1, 64,
    )  # fmt: skip  # the paper's betas and lambda; lr 1e-4 and 5 critic steps: wgan_gp.py
    assert GAN.default_config() == dataclasses.replace(GAN.default_config())
    assert type(tiny(WGAN).d_optimizer).__name__ == "RMSprop"
    assert type(tiny(WGANGP).d_optimizer).__name__ == "Adam"
    assert tiny(WGANGP).d_optimizer.betas == (0.5, 0.9)


def test_critics_have_no_sigmoid_and_the_gan_keeps_its_choice():
    for cls in (LSGAN, WGAN, WGANGP):
        assert type(tiny(cls).discriminator[-1]).__name__ == "Linear"
    assert type(tiny(GAN, logits=False).discriminator[-1]).__name__ == "Sigmoid"
    assert type(tiny(GAN, logits=True).discriminator[-1]).__name__ == "Linear"


def test_bad_configs_are_refused_with_a_message():
    with pytest.raises(ValueError, match="clip must be > 0, got 0"):
        WGANConfig(clip=0)
    with pytest.raises(ValueError, match="n_critic must be a positive integer, got 0"):
        WGANGPConfig(n_critic=0)
    with pytest.raises(ValueError, match="gp_weight must be > 0, got -1"):
        WGANGPConfig(gp_weight=-1)
    for bad in (0.0, float("inf"), float("nan")):  # the flags were refused so, before they
        with pytest.raises(ValueError, match="gp_weight must be > 0"):  # came from the configs
            WGANGPConfig(gp_weight=bad)
        if bad:
            with pytest.raises(ValueError, match="clip must be > 0"):
                WGANConfig(clip=bad)
        with pytest.raises(ValueError, match=r"d_lr must be a positive number \(or None: lr\)"):
            GANConfig(d_lr=bad)
        with pytest.raises(ValueError, match=r"g_lr must be positive \(or None: lr\)"):
            DCGANConfig(g_lr=bad)
    with pytest.raises(ValueError, match="g_activation must be one of"):
        WGANConfig(g_activation="gelu")
    with pytest.raises(TypeError, match="WGANGP needs a WGANGPConfig, got a WGANConfig"):
        WGANGP(WGANConfig())


# --- each model's step ------------------------------------------------------------


def test_lsgan_losses_are_the_papers(rng):
    model = hold_weights(tiny(LSGAN))
    real, z = real_batch(rng), rng.standard_normal((4, 3))
    model.noise_rng = FixedNoise(z=z)
    fake = model.generate(z)
    d_real, d_fake = model.discriminator(real), model.discriminator(fake)
    stats = model.train_step(real)
    expected_d = 0.5 * ((d_real - 1) ** 2).mean() + 0.5 * (d_fake**2).mean()
    assert float(stats["d_loss"]) == pytest.approx(expected_d, rel=1e-12)
    assert float(stats["g_loss"]) == pytest.approx(0.5 * ((d_fake - 1) ** 2).mean(), rel=1e-12)


@pytest.mark.parametrize("cls", [LSGAN, WGAN])
def test_generator_gradient_matches_finite_differences(rng, assert_gradients_match, cls):
    """G's loss differentiated through the frozen critic, via the real training code."""
    model = hold_weights(tiny(cls))
    z = rng.standard_normal((4, 3))
    model.generator_step(model.generate(z))

    def g_loss():
        scores = model.discriminator.forward(model.generate(z))
        return 0.5 * ((scores - 1) ** 2).mean() if cls is LSGAN else -scores.mean()

    assert_gradients_match(
        {
            name: relative_error(p.grad, numerical_gradient(g_loss, p.data))
            for name, p in model.generator.named_parameters()
        }
    )


def test_wgan_critic_step_clips_every_weight_and_g_waits_n_critic_steps(rng):
    model = tiny(WGAN, lr=0.5, clip=0.05)  # a large lr, so the clip has work to do
    g0 = model.generator.state_dict()
    for step in range(1, 6):
        stats = model.train_step(real_batch(rng))
        values = np.concatenate([p.data.ravel() for p in model.discriminator.parameters()])
        assert np.abs(values).max() <= 0.05 and (np.abs(values) == 0.05).any()
        assert (stats["g_loss"] is None) == (step < 5)
    assert float(stats["wasserstein"]) == pytest.approx(-float(stats["d_loss"]))
    assert (model.generator.state_dict()["0.weight"] != g0["0.weight"]).any()


# --- the WGAN-GP penalty: the double backward at work -------------------------------


def critic_with(model, activation):
    """Swap the critic's LeakyReLUs for ``activation`` (Tanh: the f'' terms come in)."""
    if activation is not None:
        for index in (1, 3):
            model.discriminator.layers[index] = activation()
    return model


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("activation", [None, nn.Tanh, nn.Sigmoid], ids=["leaky", "tanh", "sig"])
def test_penalty_gradient_matches_finite_differences_of_the_penalty(
    rng, assert_gradients_match, activation, batch
):
    """dP/dw for every critic parameter, P = lambda mean (||grad D(x^)|| - 1)^2 itself nudged.

    h = 1e-5: P is smooth in the weights (LeakyReLU: polynomial within one set of slopes,
    and x^ keeps every pre-activation far from 0 compared with a 1e-5 nudge); truncation
    O(h^2) and rounding 1e-16 * P / h are both < 1e-10 relative.
    """
    model = critic_with(tiny(WGANGP, hidden=7), activation)
    x_hat = rng.uniform(-1, 1, (batch, 6))
    analytic, errors = penalty_gradient_errors(model, x_hat)
    if activation is None:  # the biases cannot change the slopes: exactly no gradient
        assert all(not analytic[f"{i}.bias"].any() for i in (0, 2, 4))
    assert_gradients_match(errors)


def test_penalty_gradient_is_the_documented_chain_of_matrix_products(rng):
    """wgan_gp.py's docstring, line by line: dP/dW3 = 1^T ((V W1^T * S1) W2^T * S2), etc."""
    model = tiny(WGANGP, hidden=7)
    D, lam = model.discriminator, model.config.gp_weight
    W1, W2, W3 = (D[i].weight.data for i in (0, 2, 4))
    x = rng.uniform(-1, 1, (5, 6))
    D.zero_grad()
    model.gradient_penalty(x)

    def slope(u):
        return np.where(u > 0, 1.0, 0.2)

    u1 = x @ W1.T + D[0].bias.data
    S1 = slope(u1)
    S2 = slope((u1 * S1) @ W2.T + D[2].bias.data)
    ones = np.ones((5, 1))
    G2 = (ones @ W3) * S2
    G1 = (G2 @ W2) * S1
    g = G1 @ W1
    r = np.linalg.norm(g, axis=1, keepdims=True)
    V = (2 * lam / 5) * (r - 1) / r * g
    np.testing.assert_allclose(D[4].weight.grad, ones.T @ (((V @ W1.T) * S1) @ W2.T * S2))
    np.testing.assert_allclose(D[2].weight.grad, G2.T @ ((V @ W1.T) * S1))
    np.testing.assert_allclose(D[0].weight.grad, G1.T @ V)


def torch_penalty(torch, critic, x_hat, lam):
    x_hat = x_hat.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return lam * ((g.norm(2, dim=1) - 1) ** 2).mean()


@pytest.mark.parametrize("activation", [None, nn.Tanh], ids=["leaky", "tanh"])
def test_penalty_gradient_matches_pytorch_double_backward(rng, activation):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity test skipped")
    model = critic_with(tiny(WGANGP, hidden=16), activation)
    critic = to_torch(model.discriminator)
    x_hat = rng.uniform(-1, 1, (8, 6))
    model.discriminator.zero_grad()
    penalty, _ = model.gradient_penalty(x_hat)

    value_t = torch_penalty(torch, critic, torch.from_numpy(x_hat), model.config.gp_weight)
    grads_t = torch.autograd.grad(value_t, list(critic.parameters()), allow_unused=True)
    assert float(penalty) == pytest.approx(value_t.item(), rel=1e-12)
    for (name, p), g_t in zip(model.discriminator.named_parameters(), grads_t):
        expected = np.zeros(p.shape) if g_t is None else g_t.numpy()
        np.testing.assert_allclose(p.grad, expected, rtol=1e-9, atol=1e-13, err_msg=name)


def test_full_wgan_gp_critic_step_matches_pytorch(rng):
    """Wasserstein loss + penalty, one Adam(1e-4, (0.5, 0.9)) step, three times in a row."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity test skipped")
    model = tiny(WGANGP, hidden=16)
    critic = to_torch(model.discriminator)
    opt = torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.5, 0.9))
    for _ in range(3):
        real, fake = real_batch(rng), rng.uniform(-1, 1, (4, 6))
        eps = rng.uniform(size=(4, 1))
        model.noise_rng = FixedNoise(eps=eps)
        ours = model.discriminator_step(real, fake)

        real_t, fake_t, eps_t = (torch.from_numpy(a) for a in (real, fake, eps))
        x_hat = eps_t * real_t + (1 - eps_t) * fake_t
        penalty = torch_penalty(torch, critic, x_hat, 10.0)
        loss = critic(fake_t).mean() - critic(real_t).mean() + penalty
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert float(ours["d_loss"]) == pytest.approx(loss.item(), rel=1e-10)
        assert float(ours["penalty"]) == pytest.approx(penalty.item(), rel=1e-10)
    for name, value in model.discriminator.state_dict().items():
        expected = critic.state_dict()[name].numpy()
        np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-12, err_msg=name)


def test_wgan_gp_float32_step_makes_no_float64_array():
    from test_float32 import watched_steps  # the GAN's detector works for any model

    model = WGANGP(dataclasses.replace(WGANGPConfig(), hidden=16), seed=0, dtype=np.float32)
    found = watched_steps(model, steps=5)  # 5: the critic's steps and one G step
    assert not found, found


# --- checkpoints --------------------------------------------------------------------


@pytest.mark.parametrize("name", UNLABELLED)
def test_resume_mid_training_is_bit_identical(rng, name):
    """Stop after 7 steps, save, load into a fresh model, go on: same as never stopping.

    The noise stream restarts at the split (as the training loop's reseed_noise does
    at every epoch), so both runs draw the same noise; the step count comes back with
    the state, so G updates fall on the same steps (n_critic 5 does not divide 7).
    """
    cls = MODELS[name]
    shape = tiny(cls).image_shape
    batches = [real_batch(rng, dtype=np.float32, shape=shape) for _ in range(14)]

    def train(model, batches):
        for batch in batches:
            model.train_step(batch)

    straight = tiny(cls, seed=1, dtype=np.float32, lr=0.01)
    straight.reseed_noise(10)
    train(straight, batches[:7])
    straight.reseed_noise(11)
    train(straight, batches[7:])

    first = tiny(cls, seed=1, dtype=np.float32, lr=0.01)
    first.reseed_noise(10)
    train(first, batches[:7])
    resumed = tiny(cls, seed=2, dtype=np.float32, lr=0.01)
    resumed.load_state_dict(first.state_dict())
    resumed.reseed_noise(11)
    train(resumed, batches[7:])

    a, b = straight.state_dict(), resumed.state_dict()
    assert a["steps"] == b["steps"] == 14 and b["model"] == name
    for part in ("generator", "discriminator", "g_optimizer", "d_optimizer"):
        for key, value in a[part].items():
            np.testing.assert_array_equal(value, b[part][key], err_msg=f"{part} {key}")


def test_a_state_of_one_model_is_refused_by_another_untouched():
    for saved_name, saved_cls in MODELS.items():
        state = tiny(saved_cls, seed=1).state_dict()
        for name, cls in MODELS.items():
            if name == saved_name:
                continue
            model = tiny(cls, seed=2)
            before = model.state_dict()
            message = (
                rf"{cls.__name__}.load_state_dict: this state was saved by a '{saved_name}' "
                rf"model, not '{name}'; load it into a '{saved_name}' model"
            )
            with pytest.raises(ValueError, match=message):
                model.load_state_dict(state)
            for key, value in model.state_dict()["discriminator"].items():
                np.testing.assert_array_equal(value, before["discriminator"][key])


def test_a_state_without_a_model_name_is_refused_and_upgrade_makes_it_a_gan():
    """Checkpoints saved before minigan.models hold no model name: the model refuses them
    (it carries no history), ``minigan.checkpoint.upgrade`` names them GANs."""
    from minigan.checkpoint import upgrade

    old = tiny(GAN, seed=1).state_dict()
    del old["model"]  # what checkpoints saved before minigan.models hold
    model = tiny(GAN, seed=2)
    before = model.state_dict()
    with pytest.raises(KeyError, match=r"GAN.load_state_dict: the state has no \['model'\]"):
        model.load_state_dict(old)
    for key, value in model.state_dict()["generator"].items():  # nothing changed
        np.testing.assert_array_equal(value, before["generator"][key])
    upgraded = upgrade({"gan": old})["gan"]
    model.load_state_dict(upgraded)
    with pytest.raises(ValueError, match="saved by a 'gan' model, not 'wgan-gp'"):
        tiny(WGANGP, seed=2).load_state_dict(upgraded)


# --- learning on real MNIST -----------------------------------------------------------


def real_mnist_available() -> bool:
    root = os.environ.get("MINIGAN_DATA")
    return bool(root) and (Path(root) / "mnist" / "train-images-idx3-ubyte.gz").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not real_mnist_available(), reason="needs real MNIST: set MINIGAN_DATA")
@pytest.mark.parametrize("name", MLP_MODELS)
def test_300_steps_on_mnist_move_samples_towards_the_data(name):
    """Each model's defaults (hidden 256 to keep it to seconds), 300 steps on real digits.

    Measured (seed 0): ink, the fraction of pixels brighter than mid-grey, starts at
    0.51 (grey noise) and ends at 0.17 (gan), 0.15 (lsgan), 0.04 (wgan), 0.035 (wgan-gp),
    against the data's 0.13; the mean image's distance to the data's falls from 0.75 to
    0.42, 0.32, 0.12, 0.34; the critics' Wasserstein estimates grow from 0.07 to 1.3
    (wgan) and 0.8 to 21 (wgan-gp): they learned to separate real from fake.
    """
    cls = MODELS[name]
    images, _ = data.load_mnist("train")
    x = data.to_gan_range(images[:20000])
    config = dataclasses.replace(cls.default_config(), hidden=256, **MLP_RECIPES.get(cls, {}))
    model = cls(config, seed=0)
    z = model.sample_noise(500)

    def ink(batch):
        return float(((batch + 1) / 2 > 0.5).mean())

    def mean_image_distance(batch):
        return float(np.abs(batch.mean(axis=0) - x[:5000].mean(axis=0)).mean())

    samples = model.generate(z)
    real, start, start_mean = ink(x[:5000]), ink(samples), mean_image_distance(samples)
    n, history = model.config.batch_size, []
    for i in range(300):
        stats = model.train_step(x[i * n % 19900 : i * n % 19900 + n])
        history.append({k: float(v) for k, v in stats.items() if v is not None})
    assert all(np.isfinite(v) for row in history for v in row.values())
    end = ink(model.generate(z))
    assert abs(end - real) < abs(start - real) / 3, (start, end, real)
    if name == "gan":  # D learned to spot fakes
        d_fake = [r["d_fake"] for r in history]
        assert np.mean(d_fake[:5]) - np.mean(d_fake[-50:]) > 0.08
    else:
        assert mean_image_distance(model.generate(z)) < 0.6 * start_mean
    if name in ("wgan", "wgan-gp"):
        first = np.mean([r["wasserstein"] for r in history[:10]])
        assert np.mean([r["wasserstein"] for r in history[-50:]]) > 5 * first > 0


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["lsgan", "wgan", "wgan-gp"])
def test_models_on_cupy_match_numpy_in_float64(rng, name):
    """The same steps from the same weights, noise and eps agree across backends."""
    from minigan.backend import get_backend

    gpu, cls = get_backend("cupy"), MODELS[name]
    config = dataclasses.replace(cls.default_config(), hidden=32)
    on_cpu = cls(config, "numpy", seed=0, dtype=np.float64)
    on_gpu = cls(config, gpu, seed=0, dtype=np.float64)
    for _ in range(10):
        real = rng.uniform(-1, 1, (16, 784))
        z, eps = rng.standard_normal((16, config.latent_dim)), rng.uniform(size=(16, 1))
        on_cpu.noise_rng = FixedNoise(z=z, eps=eps)
        on_gpu.noise_rng = FixedNoise(z=gpu.asarray(z), eps=gpu.asarray(eps))
        cpu_stats, gpu_stats = on_cpu.train_step(real), on_gpu.train_step(gpu.asarray(real))
    assert_models_agree(on_cpu, on_gpu, cpu_stats, gpu_stats)
