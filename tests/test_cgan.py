"""CGAN's projection discriminator: its backward (finite differences, PyTorch), what it
computes, the config's choice of D, and states saved with the other kind of D."""

import dataclasses

import numpy as np
import pytest
from conftest import assert_projection_d_matches_torch, hold_weights

from minigan.gradcheck import numerical_gradient, relative_error
from minigan.models import CGAN, CGANConfig
from minigan.models.conditional import ConditionalMLP, ProjectionDiscriminator

# The MLPs (arch "mlp"): the convolutional CGAN is tests/test_cgan_conv.py's.
TINY = {
    "latent_dim": 3,
    "hidden": 7,
    "image_size": 6,
    "batch_size": 4,
    "embed_dim": 3,
    "arch": "mlp",
}
LABELS = np.array([7, 2, 7, 0, 7, 9])  # three sevens: their gradients must add up


def tiny(seed=0, dtype=np.float64, **changes):
    return CGAN(dataclasses.replace(CGANConfig(), **TINY, **changes), seed=seed, dtype=dtype)


def test_the_default_d_is_the_projection_and_concat_stays_available():
    assert CGAN.default_config().discriminator == "projection"
    assert isinstance(tiny().discriminator, ProjectionDiscriminator)
    assert isinstance(tiny(discriminator="concat").discriminator, ConditionalMLP)
    with pytest.raises(
        ValueError, match=r"discriminator must be one of \('projection', 'concat'\), got 'sum'"
    ):
        CGANConfig(discriminator="sum")


def test_projection_computes_psi_of_phi_plus_the_labels_vector_dot_phi(rng):
    D = tiny().discriminator
    x = rng.uniform(-1, 1, (6, 6))
    f = D.features(x)  # phi(x): the two hidden layers
    expected = f @ D.head.weight.data.T + D.head.bias.data
    expected += (D.embed.weight.data[LABELS] * f).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(D(x, LABELS), expected, rtol=1e-13)
    assert D.embed.weight.data.shape == (10, 7)  # one vector per digit, as long as phi(x)


def test_projection_backward_matches_finite_differences(rng, assert_gradients_match):
    """h = 1e-5 (numerical_gradient's); LeakyReLU's kink is far from every pre-activation
    at this seed, so the loss is smooth there and the error is O(h^2) ~ 1e-10."""
    D = tiny().discriminator
    x = rng.uniform(-1, 1, (6, 6))
    R = rng.standard_normal((6, 1))

    def L():
        return float((D(x, LABELS) * R).sum())

    L()
    D.zero_grad()
    dx = D.backward(R)
    analytic = {name: p.grad.copy() for name, p in D.named_parameters()}
    errors = {
        name: relative_error(analytic[name], numerical_gradient(L, p.data))
        for name, p in D.named_parameters()
    }
    errors["x"] = relative_error(dx, numerical_gradient(L, x))
    assert_gradients_match(errors)
    unused = [k for k in range(10) if k not in LABELS]
    assert not analytic["embed.weight"][unused].any()  # rows nobody looked up: no gradient
    L()
    assert D.backward(R, input_grad=False) is None  # D's step: the data needs no gradient


def test_projection_matches_pytorch(rng):
    pytest.importorskip("torch", reason="PyTorch is not installed: parity test skipped")
    assert_projection_d_matches_torch(tiny().discriminator, rng.uniform(-1, 1, (6, 6)), LABELS, rng)


def test_projection_passes_g_its_gradient_without_learning_itself(rng):
    """G's step: dL/d(fake) through the frozen D; D's gradients stay zero."""
    model = hold_weights(tiny())
    z, labels = rng.standard_normal((4, 3)), np.array([3, 1, 1, 0])
    model.generator_step(model.generator(z, labels), labels)
    assert not any(p.grad.any() for p in model.discriminator.parameters())
    assert any(p.grad.any() for p in model.generator.parameters())


@pytest.mark.parametrize("saved, wanted", [("concat", "projection"), ("projection", "concat")])
def test_a_state_with_the_other_kind_of_d_is_refused_by_name(saved, wanted):
    """CGANs saved before the projection D became the default hold a concat D."""
    state = tiny(discriminator=saved).state_dict()
    model = tiny(discriminator=wanted)
    before = model.state_dict()
    with pytest.raises(
        ValueError,
        match=rf"CGAN.load_state_dict: this state holds a '{saved}' discriminator, this "
        rf"CGAN a '{wanted}' one; build it with discriminator='{saved}' to load the state",
    ):
        model.load_state_dict(state)
    for part in ("generator", "discriminator"):  # nothing changed
        for key, value in before[part].items():
            np.testing.assert_array_equal(model.state_dict()[part][key], value)
    tiny(discriminator=saved, seed=5).load_state_dict(state)  # the matching kind loads


def test_samples_come_from_the_average_of_g_and_old_checkpoints_from_the_live_g(rng, tmp_path):
    """ema 0.998 by default (CGANConfig; ACGAN keeps 0.999): generate() draws from
    the moving average of G, which training updates; a checkpoint saved before the field
    existed upgrades to ema 0, the live G it trained with."""
    from minigan.checkpoint import load_checkpoint, save_checkpoint, upgrade

    assert CGAN.default_config().ema == 0.998  # ACGAN: 0.999
    with pytest.raises(ValueError, match=r"ema must lie in \[0, 1\) \(0: no average\), got 1"):
        CGANConfig(ema=1)
    model = tiny(ema=0.9)
    n = 6
    real = rng.uniform(-1, 1, (n, model.config.image_size))
    labels, z = np.arange(n) % 10, rng.standard_normal((n, model.config.latent_dim))
    model.train_step(real, labels)
    model.train_step(real, labels)  # after one step the average is G itself (ema.py)
    np.testing.assert_array_equal(
        model.generate(z, labels), model.generator_ema.averaged(z, labels)
    )
    assert not np.allclose(model.generate(z, labels), model.generator(z, labels))
    old = tiny(ema=0.0)
    config = {k: v for k, v in old.config.to_dict().items() if k != "ema"}
    save_checkpoint(tmp_path / "old.npz", {"gan": old.state_dict(), "config": config})
    state = upgrade(load_checkpoint(tmp_path / "old.npz"))
    assert state["config"]["ema"] == 0.0
    loaded = CGAN(CGANConfig(**state["config"]), seed=1, dtype=np.float64)
    loaded.load_state_dict(state["gan"])
    np.testing.assert_array_equal(loaded.generate(z, labels), old.generate(z, labels))
