"""ACGAN's classifiers: the twin (default), real digits only, and the 2017 paper's, each
D and G step against finite differences of its loss written out here; the config; samples
from the average of G; and states saved with another head width or before the average.
Its convolutional networks (the default): their steps against finite differences (D's
dropout masks held), G's z * embed(y) against finite differences and PyTorch, sampling in
evaluation mode, a bit-identical resume, and old checkpoints resuming as the MLPs."""

import dataclasses

import numpy as np
import pytest
from conftest import (
    assert_biases_before_batchnorm_do_nothing,
    assert_labelled_resume_is_bit_identical,
    assert_samples_come_from_the_average_in_eval_mode,
    hold_weights,
    labelled_conv_batch,
    parameter_gradient_errors,
    weight_count,
)

from minigan.checkpoint import load_checkpoint, save_checkpoint, upgrade
from minigan.gradcheck import numerical_gradient, relative_error
from minigan.losses import log_softmax
from minigan.models import ACGAN, ACGANConfig

TINY = {"latent_dim": 3, "hidden": 7, "image_size": 6, "batch_size": 4, "embed_dim": 3}
TINY |= {"arch": "mlp", "d_dropout": 0.0}  # the MLPs; the convolutions: TINY_CONV below
CLASSIFIERS = ["twin", "real", "paper"]


def tiny(seed=0, dtype=np.float64, **changes):
    return ACGAN(dataclasses.replace(ACGANConfig(), **TINY, **changes), seed=seed, dtype=dtype)


def bce_logits(s, t):
    """mean BCE on logits, written out: softplus(s) - t s."""
    return float(np.mean(np.logaddexp(0.0, s) - t * s))


def cross_entropy(logits, labels):
    return float(-log_softmax(logits)[np.arange(len(labels)), labels].mean())


def d_loss(out, n, labels, fake_labels, real_label, classifier):
    """The module docstring's D loss, halved: mean BCE over the 2n rows, each CE over n."""
    s, c, c_mi = out[:, :1], out[:, 1:11], out[:, 11:]
    targets = np.r_[np.full(n, real_label), np.zeros(n)][:, None]
    classes = cross_entropy(c[:n], labels)
    if classifier == "paper":
        classes += cross_entropy(c[n:], fake_labels)
    if classifier == "twin":
        classes += cross_entropy(c_mi[n:], fake_labels)
    return bce_logits(s, targets) + classes / 2


def g_loss(out, fake_labels, classifier, twin_weight):
    loss = bce_logits(out[:, :1], 1.0) + cross_entropy(out[:, 1:11], fake_labels)
    if classifier == "twin":
        loss -= twin_weight * cross_entropy(out[:, 11:], fake_labels)
    return loss


def fixed_batch(rng):
    real = rng.uniform(-1, 1, (4, 6))
    return real, np.array([1, 1, 3, 9]), rng.standard_normal((4, 3)), np.array([3, 1, 1, 0])


def test_the_default_is_the_twin_at_half_weight_and_bad_choices_are_refused():
    assert ACGAN.default_config().classifier == "twin"
    assert ACGAN.default_config().twin_weight == 0.5
    assert tiny().discriminator[-1].bias.data.shape == (21,)  # s, c, c_mi
    assert tiny(classifier="paper").discriminator[-1].bias.data.shape == (11,)
    with pytest.raises(
        ValueError, match=r"classifier must be one of \('twin', 'real', 'paper'\), got 'both'"
    ):
        ACGANConfig(classifier="both")
    with pytest.raises(ValueError, match=r"twin_weight must lie in \[0, 1\], got 1.5"):
        ACGANConfig(twin_weight=1.5)
    assert ACGAN.default_config().ema == 0.999  # samples from the average of G
    with pytest.raises(ValueError, match=r"ema must lie in \[0, 1\) \(0: no average\), got 1"):
        ACGANConfig(ema=1)


@pytest.mark.parametrize("classifier", CLASSIFIERS)
def test_d_step_gradient_matches_finite_differences(rng, assert_gradients_match, classifier):
    """lr = 0: the step computes the gradients and leaves the weights; h = 1e-5, far from
    every LeakyReLU kink at this seed, so the error is O(h^2)."""
    model = hold_weights(tiny(classifier=classifier))
    real, labels, z, fake_labels = fixed_batch(rng)
    fake = model.generator(z, fake_labels)
    stats = model.discriminator_step(real, labels, fake, fake_labels)
    D, x = model.discriminator, np.concatenate([real, fake])

    def loss():
        return d_loss(D(x), 4, labels, fake_labels, model.config.real_label, classifier)

    assert stats["d_loss"] == pytest.approx(loss(), rel=1e-12)
    assert_gradients_match(parameter_gradient_errors(D, loss))


@pytest.mark.parametrize(
    "classifier, twin_weight", [("twin", 0.5), ("twin", 1.0), ("real", 0.5), ("paper", 0.5)]
)
def test_g_step_gradient_matches_finite_differences(
    rng, assert_gradients_match, classifier, twin_weight
):
    """G's loss through the frozen D; the twin's CE enters with a minus sign, weighted."""
    model = hold_weights(tiny(classifier=classifier, twin_weight=twin_weight))
    _, _, z, fake_labels = fixed_batch(rng)
    G, D = model.generator, model.discriminator
    loss_value = model.generator_step(G(z, fake_labels), fake_labels)
    assert not any(p.grad.any() for p in D.parameters())  # D did not learn from G's loss

    def loss():
        return g_loss(D(G(z, fake_labels)), fake_labels, classifier, twin_weight)

    assert loss_value == pytest.approx(loss(), rel=1e-12)
    assert_gradients_match(parameter_gradient_errors(G, loss))


def test_only_the_paper_trains_c_on_gs_digits(rng):
    """Change the fake labels only: c's gradient moves for the paper, not for the others
    (c learns from real digits; the twin, from G's)."""
    real, labels, z, fake_labels = fixed_batch(rng)

    def c_grad(classifier, asked):
        model = hold_weights(tiny(classifier=classifier))
        model.discriminator_step(real, labels, model.generator(z, fake_labels), asked)
        return model.discriminator[-1].weight.grad[1:11].copy()

    for classifier in CLASSIFIERS:
        moved = not np.allclose(c_grad(classifier, fake_labels), c_grad(classifier, labels))
        assert moved == (classifier == "paper"), classifier


@pytest.mark.parametrize(
    "saved, wanted, width, kinds",
    [
        ("paper", "twin", 11, "'paper' or 'real'"),
        ("twin", "real", 21, "'twin'"),
    ],
)
def test_a_state_with_another_head_width_is_refused_by_name(saved, wanted, width, kinds):
    """ACGANs saved before the twin hold the paper's 11 outputs."""
    state = tiny(classifier=saved).state_dict()
    model = tiny(classifier=wanted)
    wanted_width = 21 if wanted == "twin" else 11
    with pytest.raises(
        ValueError,
        match=rf"ACGAN.load_state_dict: this state's D has {width} outputs \(classifier "
        rf"{kinds}\), this ACGAN's {wanted_width} \(classifier '{wanted}'\); build it with a "
        rf"matching classifier",
    ):
        model.load_state_dict(state)
    tiny(classifier=saved, seed=3).load_state_dict(state)  # a matching one loads
    tiny(classifier="real").load_state_dict(tiny(classifier="paper").state_dict())  # same D


def test_samples_come_from_the_average_of_g(rng):
    """ema > 0: generate() draws from the moving average of G's weights, which training
    updates after each G step; the live G is what trains. ema 0: the live G draws.
    (After one step the average is G itself, bias-corrected: ``ema.py``; so two.)"""
    model = tiny(ema=0.9)
    real, labels, z, _ = fixed_batch(rng)
    before = model.generate(z, labels)
    model.train_step(real, labels)
    model.train_step(real, labels)
    averaged = model.generator_ema.averaged
    np.testing.assert_array_equal(model.generate(z, labels), averaged(z, labels))
    assert not np.allclose(model.generate(z, labels), model.generator(z, labels))
    assert not np.allclose(model.generate(z, labels), before)  # the average followed G
    assert "generator_ema" in model.state_dict()
    live = tiny(ema=0.0)
    assert live.generator_ema is None
    np.testing.assert_array_equal(live.generate(z, labels), live.generator(z, labels))


def test_a_checkpoint_from_before_the_average_resumes_sampling_from_the_live_g(tmp_path):
    """Its config has no ema: the upgrade gives it 0, the value it trained with, and its
    state (no averaged G) loads into the model that config builds."""
    old = tiny(ema=0.0, dtype=np.float32)
    config = {k: v for k, v in old.config.to_dict().items() if k != "ema"}
    save_checkpoint(tmp_path / "old.npz", {"gan": old.state_dict(), "config": config})
    new = upgrade(load_checkpoint(tmp_path / "old.npz"))
    assert new["config"]["ema"] == 0.0
    model = ACGAN(ACGANConfig(**new["config"]), seed=1)
    model.load_state_dict(new["gan"])
    assert model.generator_ema is None
    for name, value in old.generator.state_dict().items():
        np.testing.assert_array_equal(model.generator.state_dict()[name], value, err_msg=name)


# --- the convolutional networks (arch "conv", the default) --------------------------------

# 4x4 grey images: D's maps 2x2, 1x1, 1x1; G's 1x1 -> 1x1 -> 2x2 -> 4x4.
TINY_CONV = {"latent_dim": 3, "image_size": 16, "batch_size": 4, "embed_dim": 3}
TINY_CONV |= {"base_channels": 2, "d_dropout": 0.0}


def tiny_conv(seed=0, dtype=np.float64, **changes):
    config = dataclasses.replace(ACGANConfig(), **(TINY_CONV | changes))
    return ACGAN(config, seed=seed, dtype=dtype)


def test_the_default_networks_are_convolutions_with_batchnorm_in_g_and_dropout_on_demand():
    from minigan import nn

    config = ACGAN.default_config()
    assert (config.arch, config.base_channels, config.d_dropout) == ("conv", 16, 0.0)
    assert (config.batch_size, config.lr, ACGAN.default_epochs) == (32, 4e-4, 6)
    config = dataclasses.replace(config, d_dropout=0.3)  # the Keras reference's D
    model = ACGAN(config, seed=0)
    D, G = model.discriminator, model.generator
    assert [type(layer) for layer in D.layers[1:4]] == [nn.Conv2d, nn.LeakyReLU, nn.Dropout]
    assert D[-1].bias.data.shape == (21,)  # s, c, c_mi from one head
    assert sum(isinstance(layer, nn.BatchNorm2d) for layer in G.net.layers) == 2
    assert ACGAN.parameter_count(config) == weight_count(model)
    assert ACGAN.parameter_count(dataclasses.replace(config, arch="mlp")) > 0
    with pytest.raises(ValueError, match=r"arch must be one of \('mlp', 'conv'\), got 'cnn'"):
        ACGANConfig(arch="cnn")
    with pytest.raises(ValueError, match=r"image_size = side\^2 or 3\*side\^2\), got image_size 6"):
        ACGANConfig(image_size=6)
    with pytest.raises(ValueError, match=r"d_dropout must lie in \[0, 1\) \(0: none\), got 1"):
        ACGANConfig(d_dropout=1)
    with pytest.raises(
        ValueError, match="arch 'conv' takes square grey or RGB images, got 1x28x20"
    ):
        ACGAN.config_for_images(config, (1, 28, 20))


@pytest.mark.parametrize("classifier", CLASSIFIERS)
def test_conv_d_step_gradient_matches_finite_differences_with_dropout_masks_held(
    rng, assert_gradients_match, classifier
):
    """The noise stream is reseeded before the step and before every pass of the check,
    so that each pass draws the step's dropout masks; h = 1e-5, O(h^2)."""
    model = hold_weights(tiny_conv(classifier=classifier, d_dropout=0.3))
    real, labels, z, fake_labels = labelled_conv_batch(rng)
    fake = model.generator(z, fake_labels)
    model.reseed_noise(7)
    stats = model.discriminator_step(real, labels, fake, fake_labels)
    D, x = model.discriminator, np.concatenate([real, fake])

    def loss():
        model.reseed_noise(7)
        return d_loss(D(x), 4, labels, fake_labels, model.config.real_label, classifier)

    assert stats["d_loss"] == pytest.approx(loss(), rel=1e-12)
    assert_gradients_match(parameter_gradient_errors(D, loss))


@pytest.mark.parametrize("classifier", CLASSIFIERS)
def test_conv_g_step_gradient_matches_finite_differences(rng, assert_gradients_match, classifier):
    """G's loss through the frozen D (no dropout here) and G's BatchNorm in training mode
    (batch statistics: the loss of the whole batch is a function of every weight). h =
    1e-5; tolerance 1e-5, not 1e-7: G's gradients here are ~1e-4 against a loss of ~1.7,
    so rounding alone, eps |L| / (h |g|) ~ 2e-16 * 1.7 / 1e-9, is ~3e-7 of a gradient
    (h = 1e-6 makes it 10x worse; 1e-4 lets the O(h^2) error in)."""
    model = hold_weights(tiny_conv(classifier=classifier))
    _, _, z, fake_labels = labelled_conv_batch(rng)
    G, D = model.generator, model.discriminator
    loss_value = model.generator_step(G(z, fake_labels), fake_labels)
    assert not any(p.grad.any() for p in D.parameters())

    def loss():
        return g_loss(D(G(z, fake_labels)), fake_labels, classifier, 0.5)

    assert loss_value == pytest.approx(loss(), rel=1e-12)
    before_norm = ("net.0.bias", "net.4.bias", "net.7.bias")
    assert_biases_before_batchnorm_do_nothing(G, loss, before_norm)
    assert_gradients_match(parameter_gradient_errors(G, loss, skip=before_norm), tolerance=1e-5)


def test_conv_samples_come_from_the_average_in_evaluation_mode(rng):
    """generate() runs G's average on BatchNorm's running statistics: a sample depends on
    its own z alone, and drawing changes no state (nor leaves G in evaluation mode)."""
    model = tiny_conv(ema=0.9, dtype=np.float32)
    real, labels, z, _ = labelled_conv_batch(rng)
    assert_samples_come_from_the_average_in_eval_mode(
        model, real.astype(np.float32), labels, z.astype(np.float32)
    )


def test_conv_training_resumes_bit_identically(rng):
    """Stop after 5 steps, save, load into a fresh model, go on: as never stopping. The
    noise stream (z, y', dropout masks) restarts at the split, as at every epoch."""
    batches = [
        (rng.uniform(-1, 1, (4, 16)).astype(np.float32), rng.integers(0, 10, 4)) for _ in range(10)
    ]
    changes = {"dtype": np.float32, "lr": 0.01, "d_dropout": 0.3, "ema": 0.9}
    assert_labelled_resume_is_bit_identical(lambda seed: tiny_conv(seed=seed, **changes), batches)


def test_a_conv_state_with_another_head_width_is_refused_by_name():
    with pytest.raises(ValueError, match=r"this state's D has 11 outputs \(classifier 'paper'"):
        tiny_conv().load_state_dict(tiny_conv(classifier="paper").state_dict())


def test_a_checkpoint_from_before_the_convolutions_resumes_as_the_mlps(tmp_path):
    """Its config names no arch, base_channels nor d_dropout: upgraded, it is the MLPs
    with no dropout in D (what it trained with), and its weights load."""
    old = tiny(dtype=np.float32)
    config = old.config.to_dict()
    for field in ("arch", "base_channels", "d_dropout"):
        del config[field]
    save_checkpoint(tmp_path / "old.npz", {"gan": old.state_dict(), "config": config})
    new = upgrade(load_checkpoint(tmp_path / "old.npz"))
    assert (new["config"]["arch"], new["config"]["d_dropout"]) == ("mlp", 0.0)
    model = ACGAN(ACGANConfig(**new["config"]), seed=1)
    model.load_state_dict(new["gan"])
    for name, value in old.discriminator.state_dict().items():
        np.testing.assert_array_equal(model.discriminator.state_dict()[name], value, err_msg=name)


def product_generator(rng):
    """G = net(z * embed(y)) with a tiny net: Linear(3 -> 5), Tanh; float64."""
    from minigan import nn
    from minigan.models.conditional import ConditionalProduct

    embed = nn.Embedding(10, 3, rng=rng, dtype=np.float64, check_range=False)
    net = nn.Sequential(nn.Linear(3, 5, rng=rng, dtype=np.float64), nn.Tanh())
    return ConditionalProduct(embed, net)


def test_conditional_product_backward_matches_finite_differences(rng, assert_gradients_match):
    """dL/dz = dL/dh * e and dL/de = dL/dh * z (added up over repeated labels: two 1s),
    against central differences (h = 1e-5, the loss smooth: O(h^2))."""
    G = product_generator(rng)
    z, labels, w = rng.standard_normal((4, 3)), np.array([1, 1, 3, 9]), rng.standard_normal((4, 5))

    def loss():
        return float((G(z, labels) * w).sum())

    G.zero_grad()
    G(z, labels)
    dz = G.backward(w)
    errors = {name: relative_error(p.grad, numerical_gradient(loss, p.data))
              for name, p in G.named_parameters()}  # fmt: skip
    errors["z"] = relative_error(dz, numerical_gradient(loss, z))
    assert_gradients_match(errors)
    assert not G.embed.weight.grad[[0, 2, 4, 5, 6, 7, 8]].any()  # unused rows
    assert G.backward(w, input_grad=False) is None


def test_conditional_product_matches_pytorch(rng):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity test skipped")
    G = product_generator(rng)
    z, labels, w = rng.standard_normal((4, 3)), np.array([1, 1, 3, 9]), rng.standard_normal((4, 5))
    G.zero_grad()
    ours = G(z, labels)
    dz = G.backward(w)
    tz = torch.tensor(z, requires_grad=True)
    table = torch.tensor(G.embed.weight.data, requires_grad=True)
    weight = torch.tensor(G.net[0].weight.data, requires_grad=True)
    bias = torch.tensor(G.net[0].bias.data, requires_grad=True)
    h = tz * table[torch.tensor(labels)]
    y = torch.tanh(h @ weight.T + bias)  # Linear's weight is (out, in), as PyTorch's
    (y * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(ours, y.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dz, tz.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(G.embed.weight.grad, table.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(G.net[0].weight.grad, weight.grad.numpy(), rtol=1e-10)
