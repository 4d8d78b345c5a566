"""CGAN's convolutional networks (arch "conv", the default): G is ACGAN's (z * embed(y) into
convnets' G with BatchNorm, built in conditional.py), D the projection discriminator on
convolutional features. D's forward as its formula, its backward against finite differences
and PyTorch, the D and G steps against finite differences of their losses written out here,
sampling in evaluation mode, a bit-identical resume, and checkpoints from before the
convolutions resuming as the MLPs. (The CuPy stand-in runs the default CGAN's steps:
tests/cupy_scenarios.py, "train_step[cgan]".)"""

import dataclasses

import numpy as np
import pytest
from conftest import (
    assert_biases_before_batchnorm_do_nothing,
    assert_labelled_resume_is_bit_identical,
    assert_projection_d_matches_torch,
    assert_samples_come_from_the_average_in_eval_mode,
    hold_weights,
    labelled_conv_batch,
    parameter_gradient_errors,
    weight_count,
)

from minigan import nn
from minigan.checkpoint import load_checkpoint, save_checkpoint, upgrade
from minigan.gradcheck import numerical_gradient, relative_error
from minigan.models import ACGAN, CGAN, CGANConfig
from minigan.models.conditional import ConditionalProduct, ProjectionDiscriminator

# 4x4 grey images: D's maps 2x2, 1x1, 1x1 (8 features); G's 1x1 -> 1x1 -> 2x2 -> 4x4.
TINY_CONV = {"latent_dim": 3, "image_size": 16, "batch_size": 4, "base_channels": 2}
LABELS = np.array([7, 2, 7, 0])  # two sevens: their gradients must add up


def tiny_conv(seed=0, dtype=np.float64, **changes):
    config = dataclasses.replace(CGANConfig(), **(TINY_CONV | changes))
    return CGAN(config, seed=seed, dtype=dtype)


def bce_logits(s, t):
    """mean BCE on logits, written out: softplus(s) - t s."""
    return float(np.mean(np.logaddexp(0.0, s) - t * s))


def test_the_default_networks_are_convolutions_and_d_reads_the_label_by_projection():
    config = CGAN.default_config()
    assert (config.arch, config.base_channels, config.discriminator) == ("conv", 16, "projection")
    assert (config.batch_size, config.lr, config.ema, CGAN.default_epochs) == (32, 4e-4, 0.998, 6)
    model = CGAN(config, seed=0)
    G, D = model.generator, model.discriminator
    assert isinstance(G, ConditionalProduct) and isinstance(D, ProjectionDiscriminator)
    assert G.embed.weight.data.shape == (10, config.latent_dim)  # z * embed(y)
    assert sum(isinstance(layer, nn.BatchNorm2d) for layer in G.net.layers) == 2
    assert sum(isinstance(layer, nn.Conv2d) for layer in D.features.layers) == 3
    assert not any(isinstance(layer, nn.BatchNorm2d) for layer in D.features.layers)
    assert D.embed.weight.data.shape == (10, 64 * 4 * 4) == (10, D.head.weight.data.shape[1])
    assert CGAN.parameter_count(config) == weight_count(model)
    assert CGAN.parameter_count(dataclasses.replace(config, arch="mlp")) > 0
    with pytest.raises(ValueError, match=r"arch must be one of \('mlp', 'conv'\), got 'cnn'"):
        CGANConfig(arch="cnn")
    with pytest.raises(ValueError, match=r"image_size = side\^2 or 3\*side\^2\), got image_size 6"):
        CGANConfig(image_size=6)
    with pytest.raises(ValueError, match="discriminator 'concat' joins the label to an MLP's"):
        CGANConfig(discriminator="concat")
    with pytest.raises(
        ValueError, match="arch 'conv' takes square grey or RGB images, got 1x28x20"
    ):
        CGAN.config_for_images(config, (1, 28, 20))


def test_cgan_and_acgan_build_the_same_g_in_one_place():
    """The same config draws the same G, weight for weight: conditional_generator builds
    both (ACGAN's D is drawn after it, so ACGAN's numbers did not move)."""
    cgan, acgan = CGAN(CGAN.default_config(), seed=3), ACGAN(ACGAN.default_config(), seed=3)
    assert repr(cgan.generator) == repr(acgan.generator)
    for (name, p), (_, q) in zip(
        cgan.generator.named_parameters(), acgan.generator.named_parameters(), strict=True
    ):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_conv_projection_computes_psi_of_phi_plus_the_labels_vector_dot_phi(rng):
    D = tiny_conv().discriminator
    x = rng.uniform(-1, 1, (4, 16))
    f = D.features(x)  # phi(x): the three convolutions, flattened
    assert f.shape == (4, 8)
    expected = f @ D.head.weight.data.T + D.head.bias.data
    expected += (D.embed.weight.data[LABELS] * f).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(D(x, LABELS), expected, rtol=1e-13)


def test_conv_projection_backward_matches_finite_differences(rng, assert_gradients_match):
    """h = 1e-5 (numerical_gradient's), O(h^2): LeakyReLU's kink is far from every
    pre-activation at this seed, so the loss is smooth there."""
    D = tiny_conv().discriminator
    x, R = rng.uniform(-1, 1, (4, 16)), rng.standard_normal((4, 1))

    def loss():
        return float((D(x, LABELS) * R).sum())

    loss()
    D.zero_grad()
    dx = D.backward(R)
    errors = parameter_gradient_errors(D, loss)
    errors["x"] = relative_error(dx, numerical_gradient(loss, x))
    assert_gradients_match(errors)
    unused = [k for k in range(10) if k not in LABELS]
    assert not D.embed.weight.grad[unused].any()  # rows nobody looked up: no gradient


def test_conv_projection_matches_pytorch(rng):
    pytest.importorskip("torch", reason="PyTorch is not installed: parity test skipped")
    D = tiny_conv(base_channels=3).discriminator
    assert_projection_d_matches_torch(D, rng.uniform(-1, 1, (4, 16)), LABELS, rng, atol=1e-15)


def test_conv_d_step_gradient_matches_finite_differences(rng, assert_gradients_match):
    """D's loss: mean BCE over [real; fake] against [0.9; 0], each with its label; h = 1e-5."""
    model = hold_weights(tiny_conv())
    real, labels, z, fake_labels = labelled_conv_batch(rng)
    fake = model.generator(z, fake_labels)
    stats = model.discriminator_step(real, labels, fake, fake_labels)
    D, x, y = model.discriminator, np.concatenate([real, fake]), np.r_[labels, fake_labels]
    targets = np.r_[np.full(4, model.config.real_label), np.zeros(4)][:, None]

    def loss():
        return bce_logits(D(x, y), targets)

    assert stats["d_loss"] == pytest.approx(loss(), rel=1e-12)
    assert_gradients_match(parameter_gradient_errors(D, loss))


def test_conv_g_step_gradient_matches_finite_differences(rng, assert_gradients_match):
    """G's loss, -log D(G(z, y'), y') as BCE(., 1), through the frozen D and G's BatchNorm
    in training mode (batch statistics). h = 1e-5; tolerance 1e-5, not 1e-7, as ACGAN's
    (tests/test_acgan.py): G's gradients are small beside the loss, so rounding,
    eps |L| / (h |g|), is ~1e-7 of a gradient."""
    model = hold_weights(tiny_conv())
    _, _, z, fake_labels = labelled_conv_batch(rng)
    G, D = model.generator, model.discriminator
    loss_value = model.generator_step(G(z, fake_labels), fake_labels)
    assert not any(p.grad.any() for p in D.parameters())

    def loss():
        return bce_logits(D(G(z, fake_labels), fake_labels), 1.0)

    assert loss_value == pytest.approx(loss(), rel=1e-12)
    before_norm = ("net.0.bias", "net.4.bias", "net.7.bias")
    assert_biases_before_batchnorm_do_nothing(G, loss, before_norm)
    assert_gradients_match(parameter_gradient_errors(G, loss, skip=before_norm), tolerance=1e-5)


def test_conv_samples_come_from_the_average_in_evaluation_mode(rng):
    """generate() runs G's average on BatchNorm's running statistics: a sample depends on
    its own z alone, and drawing changes no state."""
    model = tiny_conv(ema=0.9, dtype=np.float32)
    real, labels, z, _ = labelled_conv_batch(rng)
    assert_samples_come_from_the_average_in_eval_mode(
        model, real.astype(np.float32), labels, z.astype(np.float32)
    )


def test_conv_training_resumes_bit_identically(rng):
    """Stop after 5 steps, save, load into a fresh model, go on: as never stopping."""
    batches = [
        (rng.uniform(-1, 1, (4, 16)).astype(np.float32), rng.integers(0, 10, 4)) for _ in range(10)
    ]
    changes = {"dtype": np.float32, "lr": 0.01, "ema": 0.9}
    assert_labelled_resume_is_bit_identical(lambda seed: tiny_conv(seed=seed, **changes), batches)


@pytest.mark.parametrize("kept", [("discriminator", "ema"), ()])
def test_a_checkpoint_from_before_the_convolutions_resumes_as_the_mlps(tmp_path, kept):
    """Its config names no arch nor base_channels (nor, older still, discriminator and
    ema): upgraded, it is the MLPs it trained with, with its own batch size and rate."""
    old_recipe = {"batch_size": 100, "lr": 2e-4, "embed_dim": 3, "hidden": 7, "latent_dim": 3}
    d_kind, ema = ("projection", 0.999) if kept else ("concat", 0.0)
    config = dataclasses.replace(
        CGANConfig(), arch="mlp", image_size=6, discriminator=d_kind, ema=ema, **old_recipe
    )
    old = CGAN(config, seed=0, dtype=np.float32)
    saved = {k: v for k, v in old.config.to_dict().items() if k not in ("arch", "base_channels")}
    saved = {k: v for k, v in saved.items() if k not in {"discriminator", "ema"} - set(kept)}
    save_checkpoint(tmp_path / "old.npz", {"gan": old.state_dict(), "config": saved})
    new = upgrade(load_checkpoint(tmp_path / "old.npz"))
    assert (new["config"]["arch"], new["config"]["discriminator"]) == ("mlp", d_kind)
    assert new["config"]["ema"] == ema
    assert (new["config"]["batch_size"], new["config"]["lr"]) == (100, 2e-4)
    model = CGAN(CGANConfig(**new["config"]), seed=1)
    model.load_state_dict(new["gan"])
    for name, value in old.discriminator.state_dict().items():
        np.testing.assert_array_equal(model.discriminator.state_dict()[name], value, err_msg=name)
