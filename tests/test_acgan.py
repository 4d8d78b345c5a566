"""ACGAN's classifiers: the twin (default), real digits only, and the 2017 paper's, each
D and G step against finite differences of its loss written out here; the config; samples
from the average of G; and states saved with another head width or before the average."""

import dataclasses

import numpy as np
import pytest
from conftest import hold_weights

from minigan.checkpoint import load_checkpoint, save_checkpoint, upgrade
from minigan.gradcheck import numerical_gradient, relative_error
from minigan.losses import log_softmax
from minigan.models import ACGAN, ACGANConfig

TINY = {"latent_dim": 3, "hidden": 7, "image_size": 6, "batch_size": 4, "embed_dim": 3}
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


def errors_of(module, loss):
    analytic = {name: p.grad.copy() for name, p in module.named_parameters()}
    return {
        name: relative_error(analytic[name], numerical_gradient(loss, p.data))
        for name, p in module.named_parameters()
    }


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
    assert_gradients_match(errors_of(D, loss))


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
    assert_gradients_match(errors_of(G, loss))


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
