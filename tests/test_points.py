"""The 2-D benchmarks' networks (minigan/models/points.py) in gan, lsgan, wgan and wgan-gp:
their shapes and initial values, WGAN-GP's penalty through the packed maxout critic
(finite differences of the penalty and torch autograd), a short training of each model
on the ring, checkpoints, and the CuPy stand-in with no read-back in a step."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import weight_count
from cupy_scenarios import SCENARIOS, TRAINERS, take_step
from test_cupy_path import assert_identical

from minigan import nn
from minigan.checkpoint import upgrade
from minigan.data import ring_mixture
from minigan.gradcheck import relative_error
from minigan.models import MODELS
from minigan.models import points as P
from minigan.models.acgan import ACGANConfig
from minigan.models.gan import GANConfig
from minigan.models.wgan_gp import WGANGPConfig

FAMILY = ("gan", "lsgan", "wgan", "wgan-gp")


def point_model(name, pack=1, seed=0, dtype=np.float32, **changes):
    """Model ``name`` on the 2-D networks with its paper's recipe (``points.RECIPES``),
    no average of G, batches of 100 packs, sized for points (2,)."""
    cls = MODELS[name]
    recipe = {**P.RECIPES[name], "batch_size": 100 * pack}
    config = dataclasses.replace(
        cls.default_config(), arch="points", ema=0.0, pack=pack, **{**recipe, **changes}
    )
    return cls(cls.config_for_images(config, (2,)), seed=seed, dtype=dtype)


# --- the networks ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("pack", [1, 3])
def test_the_networks_are_the_papers_and_take_packs(name, pack, rng):
    model = point_model(name, pack)
    G, D = model.generator, model.discriminator
    linears = [m for m in G.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (2, 400), (400, 400), (400, 400), (400, 400), (400, 2),
    ]  # fmt: skip
    assert sum(isinstance(m, nn.BatchNorm1d) for m in G.modules()) == 4
    assert sum(isinstance(m, nn.ReLU) for m in G.modules()) == 4
    assert type(G[-1]) is nn.Linear  # no Tanh: the grid's modes lie at +-4
    assert not any(isinstance(m, (nn.Tanh, nn.Sigmoid)) for m in G.modules())
    maxouts = [m for m in D.modules() if isinstance(m, nn.Maxout)]
    assert [(m.in_features, m.out_features, m.pieces) for m in maxouts] == [
        (2 * pack, 200, 5), (200, 200, 5), (200, 200, 5),
    ]  # fmt: skip
    assert (type(D[0]) is nn.Pack) == (pack > 1)
    assert type(D[-1]) is nn.Linear and D[-1].out_features == 1
    z = model.sample_noise(6 * pack)
    assert z.shape == (6 * pack, 2)
    points = G(z)
    assert points.shape == (6 * pack, 2)
    assert D(points).shape == (6, 1)
    assert model.parameter_count(model.config) == weight_count(model)
    assert model.memory_bytes(model.config, 100 * pack) > 4 * 4 * weight_count(model)


def test_gan_with_probabilities_ends_in_a_sigmoid():
    D = point_model("gan", logits=False).discriminator
    assert type(D[-1]) is nn.Sigmoid and type(D[-2]) is nn.Linear


def test_g_reaches_beyond_the_unit_square():
    """A linear last layer: scale its weights and the points scale with them."""
    model = point_model("gan")
    model.generator[-1].weight.data *= 1000
    points = model.generator(model.sample_noise(100))  # BatchNorm's batch statistics
    assert np.abs(points).max() > 4


@pytest.mark.parametrize("name", FAMILY)
def test_weights_start_from_n_0_002_and_biases_from_0(name):
    model = point_model(name, pack=2)
    layers = [
        m
        for net in (model.generator, model.discriminator)
        for m in net.modules()
        if isinstance(m, (nn.Linear, nn.Maxout))
    ]
    assert len(layers) == 5 + 4
    for layer in layers:
        w = layer.weight.data
        assert np.all(layer.bias.data == 0), layer
        if w.size >= 4000:  # the std of 4,000+ draws lies within 5% of 0.02
            assert abs(w.std() - P.INIT_STD) < 0.05 * P.INIT_STD, (layer, w.std())
            assert abs(w.mean()) < 0.1 * P.INIT_STD, layer
        else:  # (2 -> 400), (400 -> 1): a looser check, as few draws wander more
            assert 0.5 * P.INIT_STD < w.std() < 1.5 * P.INIT_STD, layer
    for bn in (m for m in model.generator.modules() if isinstance(m, nn.BatchNorm1d)):
        assert bn.momentum == P.BN_MOMENTUM
        assert np.all(bn.weight.data == 1) and np.all(bn.bias.data == 0)


def test_the_same_seed_builds_the_same_networks():
    a, b = point_model("wgan-gp", pack=2, seed=3), point_model("wgan-gp", pack=2, seed=3)
    for (name, p), (_, q) in zip(
        a.discriminator.named_parameters(), b.discriminator.named_parameters(), strict=True
    ):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_samples_come_from_g_in_evaluation_mode_and_change_nothing():
    model = point_model("gan")
    ring = ring_mixture(100, 0)[0]
    for _ in range(3):
        model.train_step(ring)  # running statistics move away from (0, 1)
    bn = model.generator[1]
    before = bn.running_mean.copy(), bn.running_var.copy()
    z = model.sample_noise(7)
    points = model.generate(z)
    np.testing.assert_array_equal(bn.running_mean, before[0])
    np.testing.assert_array_equal(bn.running_var, before[1])
    model.generator.eval()
    np.testing.assert_array_equal(points, model.generator(z))
    model.generator.train()
    assert model.generator.training


# --- configs and checkpoints ------------------------------------------------------------------


def test_configs_size_points_and_refuse_what_cannot_take_them():
    for name in FAMILY:
        cls = MODELS[name]
        config = dataclasses.replace(cls.default_config(), arch="points")
        assert cls.config_for_images(config, (2,)).image_size == 2
        assert cls.config_for_images(config, (1, 28, 28)).image_size == 784
    conv = MODELS["wgan-gp"].default_config()
    assert conv.arch == "conv"
    with pytest.raises(ValueError, match="arch 'conv' takes images .* use arch 'points'"):
        MODELS["wgan-gp"].config_for_images(conv, (2,))
    with pytest.raises(ValueError, match="the GAN with convolutions is dcgan"):
        GANConfig(arch="conv")
    with pytest.raises(ValueError, match="arch must be 'mlp' or 'points'"):
        GANConfig(arch="lines")
    with pytest.raises(ValueError, match="minibatch_std and d_dropout must be 0"):
        GANConfig(arch="points", minibatch_std=4)
    with pytest.raises(ValueError, match=r"arch must be one of \('mlp', 'conv'\), got 'points'"):
        ACGANConfig(arch="points")
    with pytest.raises(ValueError, match="arch must be one of"):
        WGANGPConfig(arch="lines")


def test_an_old_gan_checkpoint_keeps_the_mlps_it_trained_with():
    old = {"gan": {"model": "gan"}, "config": {"hidden": 128}}
    assert upgrade(old)["config"]["arch"] == "mlp"
    new = {"gan": {"model": "gan"}, "config": {"arch": "points"}}
    assert upgrade(new)["config"]["arch"] == "points"


@pytest.mark.parametrize("name", FAMILY)
def test_a_state_saved_from_the_point_networks_loads_back(name):
    model = point_model(name, pack=2)
    model.train_step(ring_mixture(200, 0)[0])
    twin = point_model(name, pack=2, seed=5)
    twin.load_state_dict(model.state_dict())
    z = model.sample_noise(10)
    np.testing.assert_array_equal(twin.generate(z), model.generate(z))


# --- WGAN-GP's penalty through the packed maxout critic ------------------------------------------


def penalty_model(pack=2):
    """WGAN-GP on the 2-D networks in float64, and a batch of x^ (8 points: 8/pack packs)."""
    model = point_model("wgan-gp", pack=pack, dtype=np.float64, batch_size=8)
    rng = np.random.default_rng(0)
    x_hat = rng.standard_normal((8, 2))
    # The weights' small N(0, 0.02^2) start gives grad norms near 0; scale D's last layer
    # so the penalty's norms straddle 1 and both signs of (||g|| - 1) are exercised.
    model.discriminator[-1].weight.data *= 1.5e3
    return model, x_hat


def test_the_penalty_norms_straddle_one():
    model, x_hat = penalty_model()
    model.gradient_penalty(x_hat)
    norms = model.penalty.norms
    assert norms.min() < 1 < norms.max(), norms


@pytest.mark.parametrize("pack", [1, 2])
def test_penalty_gradient_matches_finite_differences_of_the_penalty(pack, assert_gradients_match):
    """dP/dw from the double backward (Pack, Maxout, Linear) against central differences
    of P itself, for the 12 largest entries of each weight's gradient and 12 random ones
    (a weight has 200,000 entries, most of them pieces that win nowhere: gradient 0).

    h = 1e-5: between ties, g is linear in each weight and P = lambda mean (||g|| - 1)^2
    is smooth in g, so the central difference's truncation error is O(h^2) ~ 1e-10 of
    the gradient's scale, and float64 rounding ~1e-16 |P| / h ~ 1e-11; nudging one
    weight by 1e-5 moves pieces by ~1e-5, too little to change a winner but with tiny
    probability.
    """
    model, x_hat = penalty_model(pack)
    D = model.discriminator
    D.zero_grad()
    model.gradient_penalty(x_hat)
    analytic = {name: p.grad.copy() for name, p in D.named_parameters()}

    def penalty():
        return float(model.gradient_penalty(x_hat)[0])

    errors = {}
    h = 1e-5
    pick = np.random.default_rng(1)
    for name, p in D.named_parameters():
        flat = analytic[name].ravel()
        largest = np.argsort(-np.abs(flat))[:12]
        chosen = np.unique(
            np.concatenate([largest, pick.choice(flat.size, min(12, flat.size), replace=False)])
        )
        data = p.data.reshape(-1)
        numeric = np.full(flat.shape, np.nan)
        for i in chosen:
            original = data[i]
            data[i] = original + h
            up = penalty()
            data[i] = original - h
            down = penalty()
            data[i] = original
            numeric[i] = (up - down) / (2 * h)
        errors[name] = relative_error(flat, numeric)
        if name.endswith("bias"):  # g does not depend on any bias
            assert not np.any(analytic[name]), name
    assert_gradients_match(errors, 1e-6)


def test_penalty_matches_torch_autograd():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity skipped")
    from minigan.testing.pytorch import to_torch

    model, x_hat = penalty_model(pack=2)
    D = model.discriminator
    theirs = to_torch(D)
    D.zero_grad()
    penalty, grad_norm = model.gradient_penalty(x_hat)

    x_t = torch.from_numpy(x_hat).requires_grad_(True)
    scores = theirs(x_t)
    (g,) = torch.autograd.grad(scores.sum(), x_t, create_graph=True)
    norms = g.reshape(scores.shape[0], -1).norm(dim=1)
    p_t = model.config.gp_weight * ((norms - 1) ** 2).mean()
    p_t.backward()
    np.testing.assert_allclose(float(penalty), float(p_t.detach()), rtol=1e-12)
    np.testing.assert_allclose(float(grad_norm), float(norms.mean().detach()), rtol=1e-12)
    grads = dict(theirs.named_parameters())
    for name, p in D.named_parameters():
        expected = grads[name].grad
        expected = np.zeros(p.shape) if expected is None else expected.numpy()
        scale = np.abs(expected).max() + 1e-300
        np.testing.assert_allclose(p.grad / scale, expected / scale, atol=1e-11, err_msg=name)


# --- training on the ring ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("pack", [1, 2])
def test_each_model_trains_on_the_ring_through_the_model_api(name, pack):
    """A few steps (batches of 20 packs: the test's size), every figure finite, D's
    parameters moved, and G's points anywhere in the plane as (n, 2)."""
    model = point_model(name, pack, batch_size=20 * pack)
    ring = ring_mixture(400, 0)[0]
    before = [p.data.copy() for p in model.discriminator.parameters()]
    steps = 2 * model.d_steps_per_g_step()
    for i in range(steps):
        batch = ring[(i * 20 * pack) % 400 :][: 20 * pack]
        stats = model.train_step(batch)
    assert stats.keys() == {*model.stats}
    for key, value in stats.items():
        assert np.isfinite(value), (name, key)
    assert any(not np.array_equal(p.data, b) for p, b in zip(
        model.discriminator.parameters(), before, strict=True))  # fmt: skip
    points = model.generate(model.sample_noise(50))
    assert points.shape == (50, 2) and np.isfinite(points).all()


def test_wgan_clips_every_weight_of_the_maxout_critic():
    model = point_model("wgan")
    model.train_step(ring_mixture(100, 0)[0])
    for name, p in model.discriminator.named_parameters():
        assert np.abs(p.data).max() <= model.config.clip, name


# --- the CuPy stand-in ------------------------------------------------------------------------------

POINT_TRAINERS = [f"{name}+points" for name in FAMILY]


@pytest.mark.parametrize("name", POINT_TRAINERS)
def test_a_step_on_the_point_networks_reads_nothing_back(name, fake_cupy):
    build, data = TRAINERS[name]
    model, batch = build("cupy"), data("cupy")
    take_step(model, batch)
    fake_cupy.reset()
    for _ in range(4):
        figures = take_step(model, batch)
    assert fake_cupy.reads == [] and fake_cupy.uploads == []
    assert all(isinstance(v, fake_cupy.ndarray) for v in figures.values())


@pytest.mark.parametrize("name", POINT_TRAINERS)
def test_the_point_networks_on_the_stand_in_match_numpy_bit_for_bit(name, fake_cupy, tmp_path):
    scenario = SCENARIOS[f"train_step[{name}]"]
    assert_identical(scenario("cupy", tmp_path), scenario("numpy", tmp_path))
