"""The labelled models (CGAN, ACGAN, SGAN): the conditional MLP's backward, each model's D
and G gradients (finite differences, PyTorch), the labelled subset, resume, bad input,
label accuracy, and learning on real MNIST."""

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import hold_weights

from minigan import data, nn
from minigan.checkpoint import load_checkpoint, save_checkpoint
from minigan.gradcheck import numerical_gradient, relative_error
from minigan.losses import log_softmax
from minigan.metrics import per_class_accuracy
from minigan.models import CGAN, MODELS, SGAN, check_labels, choose_labelled
from minigan.models.conditional import ConditionalMLP
from minigan.models.sgan_losses import logsumexp

LABELLED = ["cgan", "acgan", "sgan"]
TINY = {"latent_dim": 3, "hidden": 7, "image_size": 6, "batch_size": 4}
TINY_EXTRA = {
    "cgan": {"embed_dim": 3, "arch": "mlp"},  # conv: tests/test_cgan_conv.py
    "acgan": {"embed_dim": 3, "arch": "mlp", "d_dropout": 0.0},  # conv: tests/test_acgan.py
    "sgan": {"d_hidden": (8, 5), "labels": 20},
}
TRAIN_LABELS = np.tile(np.arange(10), 4)  # a tiny "training set": 4 of each digit


def tiny(name, seed=0, dtype=np.float64, **changes):
    cls = MODELS[name]
    config = dataclasses.replace(cls.default_config(), **TINY, **TINY_EXTRA[name])
    return cls(dataclasses.replace(config, **changes), seed=seed, dtype=dtype)


def train_images(dtype=np.float64, n=40):
    return np.random.default_rng(3).uniform(-1, 1, (n, 6)).astype(dtype)


def step(model, real, labels):
    """One training step, labels given as each model takes them."""
    return model.train_step(real, labels) if model.conditional else model.train_step(real)


def grads(module):
    return {name: p.grad.copy() for name, p in module.named_parameters()}


def gradient_errors(module, loss, analytic):
    """Relative error of every parameter gradient of ``module`` against central differences."""
    return {
        name: relative_error(analytic[name], numerical_gradient(loss, p.data))
        for name, p in module.named_parameters()
    }


def softplus(x):
    return np.logaddexp(0.0, x)


def bce_logits(s, t):
    """mean BCE on logits, written out: softplus(s) - t s (independent of minigan.losses)."""
    return float(np.mean(softplus(s) - t * s))


def cross_entropy(logits, labels):
    return float(-log_softmax(logits)[np.arange(len(labels)), labels].mean())


# --- the conditional MLP ------------------------------------------------------------


def conditional_mlp(rng, dtype=np.float64):
    embed = nn.Embedding(10, 3, rng=rng, dtype=dtype, check_range=False)
    net = nn.Sequential(
        nn.Linear(4 + 3, 5, rng=rng, dtype=dtype), nn.Tanh(), nn.Linear(5, 2, rng=rng, dtype=dtype)
    )
    return ConditionalMLP(embed, net)


def test_conditional_mlp_backward_matches_finite_differences(rng, assert_gradients_match):
    """Concat + Embedding + Sequential: h = 1e-5 on a smooth (tanh) net, O(h^2) ~ 1e-10."""
    model = conditional_mlp(np.random.default_rng(0))
    x = rng.standard_normal((6, 4))
    labels = np.array([7, 2, 7, 0, 7, 9])  # three sevens: their gradients must add up
    R = rng.standard_normal((6, 2))

    def L():
        return (model(x, labels) * R).sum()

    L()
    dx = model.backward(R)
    analytic = grads(model)
    errors = gradient_errors(model, L, analytic)
    errors["x"] = relative_error(dx, numerical_gradient(L, x))
    assert_gradients_match(errors)
    unused = [k for k in range(10) if k not in labels]
    assert not analytic["embed.weight"][unused].any()  # rows nobody looked up: no gradient
    L()
    assert model.backward(R, input_grad=False) is None  # the embedding still learns
    assert model.embed.weight.grad[7].any()


def test_conditional_mlp_matches_pytorch_embedding_cat_mlp(rng):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity test skipped")
    from minigan.testing.pytorch import to_torch

    model = conditional_mlp(np.random.default_rng(0))
    net_t = to_torch(model.net)
    embed_t = to_torch(model.embed)
    x, labels = rng.standard_normal((6, 4)), np.array([7, 2, 7, 0, 7, 9])
    R = rng.standard_normal((6, 2))
    x_t = torch.from_numpy(x).requires_grad_(True)
    y_t = net_t(torch.cat([x_t, embed_t(torch.from_numpy(labels))], dim=1))
    (y_t * torch.from_numpy(R)).sum().backward()
    y = model(x, labels)
    dx = model.backward(R)
    np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(model.embed.weight.grad, embed_t.weight.grad.numpy(), rtol=1e-10)
    for (name, p), p_t in zip(model.net.named_parameters(), net_t.parameters()):
        np.testing.assert_allclose(p.grad, p_t.grad.numpy(), rtol=1e-10, err_msg=name)


# --- each model's D and G gradients -------------------------------------------------
# lr = 0: the optimizer's step leaves the weights where they were, and the gradients
# the step computed stay in .grad, to be compared with finite differences of the loss
# written out here independently. h = 1e-5; the nets' LeakyReLU/ReLU kinks are far
# (>> 1e-5) from every pre-activation at these seeds, so the loss is smooth there.


def fixed_batch(rng, n=4):
    real = rng.uniform(-1, 1, (n, 6))
    return real, np.array([1, 1, 3, 9])[:n], rng.standard_normal((n, 3)), np.array([3, 1, 1, 0])


@pytest.mark.parametrize("name", ["cgan", "acgan"])
def test_conditional_d_step_gradient_matches_finite_differences(rng, assert_gradients_match, name):
    model = hold_weights(tiny(name))
    real, labels, z, fake_labels = fixed_batch(rng)
    fake = model.generator(z, fake_labels)
    model.discriminator_step(real, labels, fake, fake_labels)
    D = model.discriminator
    targets = np.r_[np.full(4, model.config.real_label), np.zeros(4)][:, None]
    x, y = np.concatenate([real, fake]), np.concatenate([labels, fake_labels])

    def d_loss():
        if name == "cgan":  # BCE(D(x, y), 0.9) and BCE(D(G(z, y'), y'), 0), mean over 2n
            return bce_logits(D(x, y), targets)
        out = D(x)  # ACGAN (twin): BCE; c's CE on the real half, the twin's on the fake
        classes = cross_entropy(out[:4, 1:11], y[:4]) + cross_entropy(out[4:, 11:], y[4:])
        return bce_logits(out[:, :1], targets) + classes / 2

    assert_gradients_match(gradient_errors(D, d_loss, grads(D)))


@pytest.mark.parametrize("name", ["cgan", "acgan"])
def test_conditional_g_step_gradient_matches_finite_differences(rng, assert_gradients_match, name):
    """G's loss through the frozen D (the label part of D's input gradient dropped)."""
    model = hold_weights(tiny(name))
    _, _, z, fake_labels = fixed_batch(rng)
    model.generator_step(model.generator(z, fake_labels), fake_labels)
    D, G = model.discriminator, model.generator
    assert not any(p.grad.any() for p in D.parameters())  # D did not learn from G's loss

    def g_loss():
        fake = G(z, fake_labels)
        if name == "cgan":
            return bce_logits(D(fake, fake_labels), 1.0)
        out = D(fake)  # ACGAN (twin): minus the twin's CE, weighted (tests/test_acgan.py)
        twin = model.config.twin_weight * cross_entropy(out[:, 11:], fake_labels)
        return bce_logits(out[:, :1], 1.0) + cross_entropy(out[:, 1:11], fake_labels) - twin

    assert_gradients_match(gradient_errors(G, g_loss, grads(G)))


def sgan_for_gradients():
    """Noise std 0 (the layers still draw), and 10 labels with batch 10: all used each step."""
    model = hold_weights(tiny("sgan", input_noise=0.0, hidden_noise=0.0, labels=10, batch_size=10))
    model.set_labelled(train_images(), TRAIN_LABELS)
    return model


def test_sgan_d_step_gradient_matches_finite_differences(rng, assert_gradients_match):
    """CE(labelled) + (L(real, 1) + L(fake, 0)) / 2, with L = BCE on logsumexp; D's ReLUs
    and weight norms, every parameter (v and b of each layer, g of the last)."""
    model = sgan_for_gradients()
    real, fake = rng.uniform(-1, 1, (4, 6)), rng.uniform(-1, 1, (4, 6))
    model.discriminator_step(real, fake)
    D, (x_lab, y_lab) = model.discriminator, model._labelled

    def d_loss():
        sup = cross_entropy(D(x_lab), y_lab)
        return sup + 0.5 * (
            bce_logits(logsumexp(D(real)), 1.0) + bce_logits(logsumexp(D(fake)), 0.0)
        )

    assert_gradients_match(gradient_errors(D, d_loss, grads(D)))


def test_sgan_feature_matching_gradient_matches_finite_differences(rng, assert_gradients_match):
    """||mean f(G(z)) - mean f(x)||^2 with f = D's last hidden ReLU, through frozen D into G."""
    model = sgan_for_gradients()
    real, z = rng.uniform(-1, 1, (5, 6)), rng.standard_normal((4, 3))
    model.generator_step(real, model.generator(z))
    f, G = model.lower, model.generator
    assert not any(p.grad.any() for p in model.discriminator.parameters())
    assert len(f) == len(model.discriminator) - 2 and isinstance(f[-1], nn.ReLU)

    def g_loss():
        d = f(G(z)).mean(axis=0) - f(real).mean(axis=0)
        return float((d * d).sum())

    # The biases of the Linear layers under a BatchNorm: the batch mean subtracted
    # cancels any constant shift, so dL/db = 0 exactly; relative error means nothing
    # there, both gradients must be ~0 instead.
    analytic = grads(G)
    assert isinstance(G[1], nn.BatchNorm1d) and isinstance(G[4], nn.BatchNorm1d)
    shifted = {"0.bias", "3.bias"}
    for name, p in G.named_parameters():
        if name in shifted:
            assert np.abs(analytic[name]).max() < 1e-12
            assert np.abs(numerical_gradient(g_loss, p.data)).max() < 1e-8
    errors = gradient_errors(G, g_loss, analytic)
    assert_gradients_match({k: v for k, v in errors.items() if k not in shifted})


def test_sgan_noise_layers_draw_from_the_model_stream_and_are_off_in_classify():
    model = tiny("sgan")
    model.set_labelled(train_images(), TRAIN_LABELS)
    noise = [m for m in model.discriminator if isinstance(m, nn.GaussianNoise)]
    assert [m.std for m in noise] == [0.6, 0.5, 0.5]
    assert all(m.rng is model.noise_rng for m in noise)
    model.reseed_noise(5)
    assert all(m.rng is model.noise_rng for m in noise)
    x = train_images()[:7]
    np.testing.assert_array_equal(model.classify(x), model.classify(x))  # no noise: the same
    assert model.discriminator.training  # back in training mode
    assert not np.array_equal(model.discriminator(x), model.discriminator(x))  # noise on


# --- the interface ------------------------------------------------------------------


@pytest.mark.parametrize("name", LABELLED)
def test_every_labelled_model_steps_and_reports_its_stats(rng, name):
    model = tiny(name, dtype=np.float32)
    if name == "sgan":
        model.set_labelled(train_images(np.float32), TRAIN_LABELS)
    real = rng.uniform(-1, 1, (4, 6)).astype(np.float32)
    stats = step(model, real, np.array([0, 9, 9, 4]))
    assert set(stats) == set(type(model).stats)
    for key, value in stats.items():
        assert isinstance(value, np.ndarray) and value.shape == () and np.isfinite(value), key
        assert value.dtype == np.float32, key
    assert model.steps == 1
    if model.conditional:
        labels = model.sample_labels(50)
        assert labels.dtype == np.int64 and labels.min() >= 0 and labels.max() <= 9
        assert model.generate(model.sample_noise(3), np.array([7, 7, 1])).shape == (3, 6)
    else:
        assert model.classify(real).shape == (4, 10)
        assert 0 <= model.error_rate(real, np.array([0, 9, 9, 4])) <= 1


def test_the_labelled_subset_is_balanced_seeded_and_sorted():
    labels = np.random.default_rng(0).integers(0, 10, 5000)
    chosen = choose_labelled(labels, 100, seed=3)
    assert chosen.dtype == np.int64 and len(set(chosen)) == 100
    assert (np.diff(chosen) > 0).all()
    assert (np.bincount(labels[chosen], minlength=10) == 10).all()
    np.testing.assert_array_equal(chosen, choose_labelled(labels, 100, seed=3))
    assert not np.array_equal(chosen, choose_labelled(labels, 100, seed=4))


def test_sgan_chooses_its_labelled_set_by_its_seed_and_saves_it():
    a, b = tiny("sgan", seed=1), tiny("sgan", seed=2)
    for model in (a, b):
        model.set_labelled(train_images(), TRAIN_LABELS)
    np.testing.assert_array_equal(a.labelled_indices, choose_labelled(TRAIN_LABELS, 20, 1))
    assert not np.array_equal(a.labelled_indices, b.labelled_indices)
    np.testing.assert_array_equal(a.state_dict()["labelled_indices"], a.labelled_indices)
    b.load_state_dict(a.state_dict())  # b holds a training set: it gathers a's subset
    np.testing.assert_array_equal(b._labelled[0], a._labelled[0])
    np.testing.assert_array_equal(b._labelled[1], a._labelled[1])


def test_sgan_with_more_labels_than_a_batch_draws_them_from_its_stream():
    model = tiny("sgan")  # 20 labelled, batch 4
    model.set_labelled(train_images(), TRAIN_LABELS)
    x, y = model.labelled_batch()
    assert x.shape == (4, 6) and y.shape == (4,)
    assert set(y) <= set(TRAIN_LABELS[model.labelled_indices])


# --- resume -------------------------------------------------------------------------


@pytest.mark.parametrize("name", LABELLED)
def test_resume_mid_training_through_a_checkpoint_file_is_bit_identical(rng, name, tmp_path):
    """7 steps, save to a file, load into a fresh model (another seed), 7 more: the same as
    14 straight. The noise stream restarts at the split in both runs, as the training loop
    reseeds it every epoch; SGAN's labelled subset comes back from the state."""
    batches = [rng.uniform(-1, 1, (4, 6)).astype(np.float32) for _ in range(14)]
    labels = [rng.integers(0, 10, 4) for _ in range(14)]
    images = train_images(np.float32)

    def make(seed):
        model = tiny(name, seed=seed, dtype=np.float32, lr=0.01)
        if name == "sgan":
            model.set_labelled(images, TRAIN_LABELS)
        return model

    def train(model, part):
        for i in part:
            step(model, batches[i], labels[i])

    straight = make(1)
    straight.reseed_noise(10)
    train(straight, range(7))
    straight.reseed_noise(11)
    train(straight, range(7, 14))

    first = make(1)
    first.reseed_noise(10)
    train(first, range(7))
    save_checkpoint(tmp_path / "state.npz", {"model": first.state_dict()})
    resumed = tiny(name, seed=2, dtype=np.float32, lr=0.01)
    resumed.load_state_dict(load_checkpoint(tmp_path / "state.npz")["model"])
    if name == "sgan":  # after loading: the saved subset, not seed 2's
        resumed.set_labelled(images, TRAIN_LABELS)
        np.testing.assert_array_equal(resumed.labelled_indices, straight.labelled_indices)
    resumed.reseed_noise(11)
    train(resumed, range(7, 14))

    a, b = straight.state_dict(), resumed.state_dict()
    assert a["steps"] == b["steps"] == 14 and b["model"] == name
    if name == "sgan":
        np.testing.assert_array_equal(a["d_average"], b["d_average"])
    for part in ("generator", "discriminator", "g_optimizer", "d_optimizer"):
        for key, value in a[part].items():
            np.testing.assert_array_equal(value, b[part][key], err_msg=f"{part} {key}")


# --- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cgan", "acgan"])
def test_float_labels_and_wrong_shapes_are_refused_in_the_step(rng, name):
    model = tiny(name)
    real = rng.uniform(-1, 1, (4, 6))
    with pytest.raises(TypeError, match=r"train_step: labels must be integer class indices, "
                       r"got dtype float64; convert with labels.astype\('int64'\)"):  # fmt: skip
        model.train_step(real, np.array([1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match=r"train_step: expected labels \(4,\), got \(3,\)"):
        model.train_step(real, np.array([1, 2, 3]))
    assert model.steps == 0


@pytest.mark.parametrize("name", ["cgan", "acgan"])
def test_generate_refuses_labels_out_of_range_or_float(name):
    model = tiny(name)
    z = model.sample_noise(3)
    message = r"generate: labels must lie in \[0, 10\) for 10 classes \(the digits 0-9\), " \
              r"got values from 0 to 12"  # fmt: skip
    with pytest.raises(ValueError, match=message):
        model.generate(z, np.array([0, 12, 3]))
    with pytest.raises(ValueError, match="got values from -1 to 3"):
        model.generate(z, np.array([-1, 2, 3]))
    with pytest.raises(TypeError, match="generate: labels must be integer class indices"):
        model.generate(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"generate: expected labels \(3,\), got \(2,\)"):
        model.generate(z, np.array([0, 1]))


def test_check_labels_is_the_one_check_at_load_time():
    check_labels("load", np.array([0, 9, 3], dtype=np.uint8))  # MNIST's dtype passes
    with pytest.raises(ValueError, match=r"^load: labels must lie in \[0, 10\) .* from 0 to 10"):
        check_labels("load", np.array([0, 10]))
    with pytest.raises(TypeError, match="^load: labels must be integer class indices, got dtype"):
        check_labels("load", np.array([0.5]))


NOT_A_MULTIPLE = "the number of labelled examples must be a positive multiple of 10"


@pytest.mark.parametrize(
    "n, message",
    [
        (95, f"{NOT_A_MULTIPLE} \\(the same count of each digit\\), got 95"),
        (0, f"{NOT_A_MULTIPLE} .* got 0"),
        (True, f"{NOT_A_MULTIPLE} .* got True"),
        (
            50,
            "50 labelled examples asked for, but the training set has only 40; ask for at most 40",
        ),
        (
            40,
            (
                "40 labelled examples need 4 of each digit, but the training set has fewer of "
                "\\{3: 3\\} \\(digit: count\\); ask for at most 30"
            ),
        ),
    ],
)
def test_choose_labelled_refuses_impossible_requests(n, message):
    labels = TRAIN_LABELS.copy()
    if n == 40:
        labels[3] = 4  # one 3 fewer, one 4 more
    with pytest.raises(ValueError, match=f"^choose_labelled: {message}"):
        choose_labelled(labels, n, seed=0)


def test_choose_labelled_refuses_labels_it_cannot_trust():
    with pytest.raises(TypeError, match="labels must be a NumPy array .* got list"):
        choose_labelled([0, 1], 10, seed=0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        choose_labelled(np.arange(20), 10, seed=0)
    with pytest.raises(TypeError, match="must be integer class indices"):
        choose_labelled(np.zeros(20), 10, seed=0)


def test_sgan_refuses_to_train_without_a_labelled_set_and_bad_sets():
    model = tiny("sgan")
    with pytest.raises(RuntimeError, match=r"train_step: no labelled set; call "
                       r"model.set_labelled\(train_images, train_labels\) first"):  # fmt: skip
        model.train_step(train_images()[:4])
    with pytest.raises(ValueError, match="set_labelled: 40 images but 30 labels"):
        model.set_labelled(train_images(), TRAIN_LABELS[:30])
    with pytest.raises(TypeError, match="set_labelled: labels must be a NumPy array on the host"):
        model.set_labelled(train_images(), list(TRAIN_LABELS))
    with pytest.raises(ValueError, match="set_labelled: labels must lie in"):
        model.set_labelled(train_images(), TRAIN_LABELS + 1)
    with pytest.raises(ValueError, match="labels must be a multiple of 10 .* got 25"):
        dataclasses.replace(SGAN.default_config(), labels=25)


def test_sgan_refuses_a_state_whose_subset_does_not_fit_untouched():
    saved = tiny("sgan", seed=1)
    saved.set_labelled(train_images(n=60), np.tile(np.arange(10), 6))
    state = saved.state_dict()
    state["labelled_indices"] = np.array([0, 59] * 10)
    model = tiny("sgan", seed=2)
    model.set_labelled(train_images(), TRAIN_LABELS)  # 40 images: index 59 does not exist
    before = model.state_dict()
    with pytest.raises(ValueError, match="indexes images up to 59, but the training set has 40"):
        model.load_state_dict(state)
    np.testing.assert_array_equal(model.labelled_indices, before["labelled_indices"])
    for key, value in model.state_dict()["discriminator"].items():
        np.testing.assert_array_equal(value, before["discriminator"][key])
    state["labelled_indices"] = np.arange(10)
    with pytest.raises(ValueError, match=r"shape \(10,\), the config asks for 20 labelled"):
        model.load_state_dict(state)
    del state["labelled_indices"]
    with pytest.raises(KeyError, match="the state has no \\['labelled_indices'\\]"):
        model.load_state_dict(state)


def test_sgan_refuses_a_state_of_the_older_recipe_untouched():
    """States saved before the data-dependent init, G's batch norm and the average
    (no 'recipe' key) hold other networks: one clear error, nothing changed."""
    model = tiny("sgan")
    state = model.state_dict()
    del state["recipe"], state["d_average"]
    before = model.state_dict()
    with pytest.raises(
        ValueError,
        match=r"SGAN.load_state_dict: this state holds an SGAN of recipe 1, this SGAN is "
        r"recipe 2: other networks and training; it cannot be loaded: train a new run",
    ):
        model.load_state_dict(state)
    for key, value in model.state_dict()["discriminator"].items():
        np.testing.assert_array_equal(value, before["discriminator"][key])
    state = model.state_dict()
    state["d_average"] = state["d_average"][:-1]
    with pytest.raises(ValueError, match=r"'d_average' holds \(\d+,\) values, D has"):
        model.load_state_dict(state)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"init_batch": 1}, "init_batch must be 0 .* or at least 2 images, got 1"),
        ({"v_std": 0.0}, r"v_std must be > 0 \(or None\), got 0.0"),
        ({"average": 1.0}, r"average must lie in \[0, 1\) \(0: no averaging\), got 1.0"),
    ],
)
def test_sgan_config_refuses_bad_recipe_settings(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SGAN.default_config(), **changes)


def test_sgan_starts_d_from_a_data_dependent_init_once():
    """Noise off: on the images chosen for the init, every unit of every layer of D
    (each hidden layer, the logits) has mean 0 and std 1; a loaded model is not re-initialised."""
    model = tiny("sgan", input_noise=0.0, hidden_noise=0.0, init_batch=30)
    images = train_images()
    model.set_labelled(images, TRAIN_LABELS)
    assert model.initialised
    np.testing.assert_array_equal(model.d_average, model.d_optimizer.data)  # classify: these
    pick = np.random.default_rng([0, 3]).choice(40, 30, replace=False)
    x = images[pick]
    for layer in model.discriminator:
        x = layer(x)
        if isinstance(layer, nn.WeightNormLinear):
            np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-12)
            np.testing.assert_allclose(x.std(axis=0), 1, rtol=1e-12)
    hidden = [m for m in model.discriminator if isinstance(m, nn.WeightNormLinear)][:-1]
    assert all(not m.train_scale for m in hidden)  # their g stays where the init put it
    loaded = tiny("sgan", seed=5, input_noise=0.0, hidden_noise=0.0, init_batch=30)
    loaded.load_state_dict(model.state_dict())
    loaded.set_labelled(images, TRAIN_LABELS)  # loaded: set_labelled must not re-initialise
    for key, value in loaded.state_dict()["discriminator"].items():
        np.testing.assert_array_equal(value, model.state_dict()["discriminator"][key])
    fresh = tiny("sgan", init_batch=0)  # no data-dependent init asked for
    before = fresh.state_dict()["discriminator"]
    fresh.set_labelled(images, TRAIN_LABELS)
    for key, value in fresh.state_dict()["discriminator"].items():
        np.testing.assert_array_equal(value, before[key])


def test_sgan_classifies_with_the_moving_average_of_ds_weights(rng):
    """avg_0 = w_0, then avg_t = d avg_(t-1) + (1 - d) w_t with d = min(0.999, t / (10 + t));
    classify uses it, and gives D its own weights back."""
    model = tiny("sgan", lr=0.01)
    model.set_labelled(train_images(), TRAIN_LABELS)
    expected = None
    for t in range(4):
        model.train_step(rng.uniform(-1, 1, (4, 6)))
        w = model.d_optimizer.data.copy()
        d = t / (10 + t)
        expected = w if expected is None else d * expected + (1 - d) * w
    np.testing.assert_allclose(model.d_average, expected, rtol=1e-12, atol=1e-15)
    x = train_images()[:5]
    model.discriminator.eval()
    live = model.discriminator(x)
    model.d_optimizer.data[...] = model.d_average
    averaged = model.discriminator(x)
    model.d_optimizer.data[...] = w
    model.discriminator.train()
    np.testing.assert_array_equal(model.classify(x), averaged)
    assert not np.allclose(averaged, live)
    np.testing.assert_array_equal(model.d_optimizer.data, w)  # D's own weights are back
    model.config.average = 0.0  # no averaging: the latest weights
    np.testing.assert_array_equal(model.classify(x), live)


def test_a_labelled_state_is_refused_by_another_model():
    state = tiny("cgan").state_dict()
    with pytest.raises(ValueError, match="saved by a 'cgan' model, not 'sgan'"):
        tiny("sgan").load_state_dict(state)
    with pytest.raises(ValueError, match="saved by a 'sgan' model, not 'acgan'"):
        tiny("acgan").load_state_dict(tiny("sgan").state_dict())


# --- label accuracy -------------------------------------------------------------------


def test_per_class_accuracy_counts_each_asked_digit():
    asked = np.array([7, 7, 7, 7, 1, 1, 0])
    predicted = np.array([7, 7, 1, 7, 1, 2, 0])
    acc = per_class_accuracy(predicted, asked)
    assert acc[7] == 0.75 and acc[1] == 0.5 and acc[0] == 1.0
    assert np.isnan(acc[[2, 3, 4, 5, 6, 8, 9]]).all()  # never asked: no score, not 0 or 1
    with pytest.raises(ValueError, match="per_class_accuracy: 2 predictions for 7 asked-for"):
        per_class_accuracy(predicted[:2], asked)
    with pytest.raises(ValueError, match=r"asked must lie in \[0, 10\)"):
        per_class_accuracy(predicted, asked + 3)


# --- learning on real MNIST ---------------------------------------------------------


def real_mnist_available() -> bool:
    root = os.environ.get("MINIGAN_DATA")
    return bool(root) and (Path(root) / "mnist" / "train-images-idx3-ubyte.gz").is_file()


needs_mnist = pytest.mark.skipif(not real_mnist_available(), reason="needs real MNIST")


@pytest.fixture(scope="module")
def mnist():
    images, labels = data.load_mnist("train")
    return images[:20000], labels[:20000].astype(np.int64)


def train_on_mnist(model, mnist, steps):
    images, labels = mnist
    x = data.to_gan_range(images)
    if not model.conditional:
        model.set_labelled(x, labels)
    n, history = model.config.batch_size, []
    for i in range(steps):
        s = i * n % (len(x) - n)
        stats = step(model, x[s : s + n], labels[s : s + n])
        history.append({k: float(v) for k, v in stats.items()})
    return history


@pytest.mark.slow
@needs_mnist
@pytest.mark.parametrize("name", LABELLED)
def test_300_steps_on_mnist_keep_every_loss_finite(name, mnist):
    """Defaults, narrowed to keep it to seconds (G hidden 256; SGAN's D 784-250-250-10).

    Measured (seed 0): SGAN's test error on 2000 test digits falls from 0.90 to about
    0.3 in 300 steps (100 labels); the CGAN and ACGAN losses stay finite and D's real
    and fake outputs separate.
    """
    cls = MODELS[name]
    changes = {"hidden": 256} | ({"d_hidden": (250, 250)} if name == "sgan" else {})
    model = cls(dataclasses.replace(cls.default_config(), **changes), seed=0)
    history = train_on_mnist(model, mnist, 300)
    assert all(np.isfinite(v) for row in history for v in row.values())
    # ACGAN's G also plays against the twin classifier, and its D separates real from
    # fake more slowly: measured (seed 0) 0.048 here (the paper's ACGAN: 0.105), while
    # its class head names 88% of the real digits (the last 50 steps' mean).
    separation = 0.03 if name == "acgan" else 0.1
    assert np.mean([r["d_real"] - r["d_fake"] for r in history[-50:]]) > separation
    if name == "acgan":
        assert np.mean([r["d_class_acc"] for r in history[-50:]]) > 0.7
    if name == "sgan":
        test_images, test_labels = data.load_mnist("test")
        x = data.to_gan_range(test_images[:2000])
        assert model.error_rate(x, test_labels[:2000].astype(np.int64)) < 0.5


@pytest.mark.slow
@needs_mnist
def test_cgan_asked_for_digit_k_draws_k_more_often_than_chance(mnist):
    """800 steps of the MLP CGAN (hidden 256; the recipe that was the default before the
    convolutions, which need more steps than a test can afford to read their labels),
    then 50 samples per digit judged by the project's classifier
    (``minigan.metrics.classifier``'s MLP, trained here for one epoch on 10000 digits:
    about 1 s, ~93% test accuracy; the cached Evaluator would cost a 35 s training on a
    fresh machine). Chance is 10% per digit. Measured (seed 0): mean label accuracy 0.90,
    nine digits at 1.0, the fives at 0 (with the concat D it was 0.62: six digits at 1.0,
    the others 0-0.18; the issue's 90% target is for a full run).
    """
    from minigan.metrics.classifier import classify, train_classifier

    images, labels = mnist
    judge = train_classifier(images[:10000], labels[:10000], epochs=1, progress=False)
    mlp = {"arch": "mlp", "hidden": 256, "batch_size": 100, "lr": 2e-4, "ema": 0.999}
    model = CGAN(dataclasses.replace(CGAN.default_config(), **mlp), seed=0)
    train_on_mnist(model, mnist, 800)
    asked = np.repeat(np.arange(10), 50)
    model.reseed_noise(0)
    samples = (model.generate(model.sample_noise(500), asked) + 1) / 2
    accuracy = per_class_accuracy(classify(judge, samples)[0].argmax(axis=1), asked)
    assert accuracy.mean() > 0.4, accuracy  # chance: 0.1
    assert (accuracy >= 0.5).sum() >= 5, accuracy
