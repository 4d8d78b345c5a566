"""StackGAN: JoinText's gradient, both stages' steps against central differences of their
objectives written term by term and against torch autograd, the two-stage plan, sampling,
the state (resumed bit-identically, refused all or nothing), the config, and a run of
steps through the strict CuPy stand-in with no host sync."""

import dataclasses

import numpy as np
import pytest
from conftest import assert_network_matches_torch, errors_and_cancelled  # noqa: F401 (the shared fixtures' module)

from minigan import nn
from minigan.backend import get_backend, to_host
from minigan.gradcheck import check_module
from minigan.models.stackgan import (
    SKETCH_CLIP,
    JoinText,
    StackGAN,
    StackGANConfig,
    TextProjection,
    count_parameters,
    downsample,
    sketch_logits,
)

# Tiny networks (every layer of the four is there: CA, BatchNorm1d and 2d, up-blocks, the
# encoder, a residual block, both D's with their text heads) on 28x28 images.
TINY = StackGANConfig(latent_dim=4, text_dim=5, c_dim=3, d_text_dim=3, g1_channels=4,
                      g2_channels=4, d_channels=2, residual_blocks=1, batch_size=4,
                      ema=0.0, stage1_share=0.5, kl_weight=0.5)  # fmt: skip
# (kl_weight 0.5, not the default 0.01: the KL's share of CA's gradient is then large
# enough that a wrong KL gradient could not hide in the checks' tolerance.)
# Central differences of the objectives: L is smooth in every weight except at the kinks
# of ReLU and LeakyReLU; a step of 1e-6 crosses none of them at these random points
# (BatchNorm keeps G's pre-activations O(1) away from 0 but for a few), leaving a
# truncation error ~1e-12 and a rounding error ~1e-16 * |L| / 1e-6 ~ 1e-10 (L ~ 1).
STEP = 1e-6


def tiny(dtype=np.float64, **changes) -> StackGAN:
    return StackGAN(dataclasses.replace(TINY, **changes), seed=0, dtype=dtype)


def batch(n=4, seed=1, dtype=np.float64, side=28):
    rng = np.random.default_rng(seed)
    real = np.tanh(2 * rng.standard_normal((n, 1, side, side))).astype(dtype)
    text = rng.standard_normal((n, TINY.text_dim)).astype(dtype)
    return real, text


def hold(model: StackGAN) -> StackGAN:
    """All four learning rates 0: each step computes every gradient and moves nothing."""
    for optimizer in model.optimizers.values():
        optimizer.lr = 0.0
    return model


def bce(logits, target):
    return np.mean(np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits))))


def roll(text):
    return np.concatenate([text[1:], text[:1]])


# --- TextProjection ---------------------------------------------------------------------------


class ProjectionOfFeatures(nn.Module):
    """TextProjection with its captions held fixed: a module of the feature maps alone, so
    check_module nudges f and the Linear's W and b."""

    def __init__(self, projection, text):
        self.projection, self.text = projection, text

    def forward(self, f):
        return self.projection(f, self.text)

    def backward(self, grad_out, input_grad=True, create_graph=False):
        return self.projection.backward(grad_out)


def projection(rng, features=3, text_dim=5):
    return TextProjection(nn.Linear(text_dim, features, rng=rng, dtype=np.float64))


def test_text_projection_backward_matches_finite_differences(rng, assert_gradients_match):
    # r = sum_k (W e + b)_k mean(f)_k is linear in f, in W and in b, each alone: central
    # differences nudging one entry carry no truncation error at any step, and a large
    # step only shrinks the rounding error: h = 0.1.
    module = ProjectionOfFeatures(projection(rng), rng.standard_normal((4, 5)))
    errors = check_module(module, rng.standard_normal((4, 3, 4, 4)), h=0.1)
    assert set(errors) == {"input", "projection.embed.weight", "projection.embed.bias"}
    assert_gradients_match(errors)


def test_text_projection_is_the_inner_product_of_the_text_code_and_the_mean_features(rng):
    proj = projection(rng)
    f, e = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 5))
    r = proj(f, e)
    v = e @ proj.embed.weight.data.T + proj.embed.bias.data
    np.testing.assert_allclose(r[:, 0], (v * f.mean(axis=(2, 3))).sum(axis=1), rtol=1e-13)
    g = rng.standard_normal(r.shape)
    df = proj.backward(g)
    np.testing.assert_allclose(df, np.broadcast_to((g * v / 16)[:, :, None, None], f.shape))


def test_text_projection_matches_torch(rng):
    torch = pytest.importorskip("torch")
    from minigan.testing.pytorch import to_torch

    proj = projection(rng)
    f, e = rng.standard_normal((3, 3, 4, 4)), rng.standard_normal((3, 5))
    r = proj(f, e)
    g = rng.standard_normal(r.shape)
    embed_t = to_torch(proj.embed)
    f_t = torch.from_numpy(f).requires_grad_(True)
    r_t = (embed_t(torch.from_numpy(e)) * f_t.mean(dim=(2, 3))).sum(dim=1, keepdim=True)
    r_t.backward(torch.from_numpy(g))
    np.testing.assert_allclose(r, r_t.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(proj.backward(g), f_t.grad.numpy(), rtol=1e-12)
    for p, tp in zip(proj.embed.parameters(), embed_t.parameters(), strict=True):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12)


def test_text_projection_errors_are_one_line(rng):
    proj = projection(rng)
    with pytest.raises(ValueError, match=r"expected feature maps") as info:
        proj(np.zeros((2, 3)), np.zeros((2, 5)))
    assert "\n" not in str(info.value)
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        projection(rng).backward(np.zeros((2, 1)))


# --- JoinText ---------------------------------------------------------------------------------


class JoinAsOne(nn.Module):
    """JoinText with its two inputs packed in one array, so check_module can nudge both:
    x = [h flattened | c]."""

    def __init__(self, shape, k):
        self.join, self.shape, self.k = JoinText(), shape, k

    def forward(self, x):
        _, f, h, w = self.shape
        return self.join(x[:, : f * h * w].reshape(self.shape), x[:, f * h * w :])

    def backward(self, grad_out, input_grad=True, create_graph=False):
        dh, dc = self.join.backward(grad_out)
        return np.concatenate([dh.reshape(dh.shape[0], -1), dc], axis=1)


def test_join_text_backward_matches_finite_differences(rng, assert_gradients_match):
    # y is linear in (h, c) (copies), so central differences carry no truncation error at
    # any step; a large step only shrinks the rounding error: h = 0.1.
    shape, k = (2, 3, 4, 5), 2
    x = rng.standard_normal((2, 3 * 4 * 5 + k))
    errors = check_module(JoinAsOne(shape, k), x, h=0.1)
    assert_gradients_match(errors)


def test_join_text_replicates_the_code_and_backward_sums_it_over_space(rng):
    h, c = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 5))
    join = JoinText()
    y = join(h, c)
    assert y.shape == (2, 8, 4, 4)
    np.testing.assert_array_equal(y[:, :3], h)
    for i in range(4):
        for j in range(4):
            np.testing.assert_array_equal(y[:, 3:, i, j], c)
    g = rng.standard_normal(y.shape)
    dh, dc = join.backward(g)
    np.testing.assert_array_equal(dh, g[:, :3])
    np.testing.assert_allclose(dc, g[:, 3:].sum(axis=(2, 3)), rtol=1e-14)
    np.testing.assert_allclose((y * g).sum(), (h * dh).sum() + (c * dc).sum(), rtol=1e-12)


def test_join_text_matches_torch(rng):
    torch = pytest.importorskip("torch")
    h, c = rng.standard_normal((3, 2, 4, 4)), rng.standard_normal((3, 5))
    join = JoinText()
    y = join(h, c)
    g = rng.standard_normal(y.shape)
    h_t = torch.from_numpy(h).requires_grad_(True)
    c_t = torch.from_numpy(c).requires_grad_(True)
    y_t = torch.cat([h_t, c_t[:, :, None, None].expand(-1, -1, 4, 4)], dim=1)
    y_t.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(y, y_t.detach().numpy())
    dh, dc = join.backward(g)
    np.testing.assert_allclose(dh, h_t.grad.numpy(), rtol=1e-14)
    np.testing.assert_allclose(dc, c_t.grad.numpy(), rtol=1e-12)


def test_join_text_errors_are_one_line():
    join = JoinText()
    cases = [
        (lambda: join(np.zeros((2, 3)), np.zeros((2, 1))), r"expected feature maps"),
        (lambda: join(np.zeros((2, 3, 4, 4)), np.zeros((3, 1))), r"expected text code \(2, code\)"),
        (lambda: join(np.zeros((2, 3, 4, 4)), np.zeros((2, 1), np.float32)), r"dtype"),
    ]
    for make, message in cases:
        with pytest.raises((ValueError, TypeError), match=message) as info:
            make()
        assert "\n" not in str(info.value)
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        JoinText().backward(np.zeros((2, 4, 4, 4)))


def test_downsample_averages_each_2x2_block(rng):
    x = rng.standard_normal((2, 1, 28, 28))
    y = downsample(x)
    assert y.shape == (2, 1, 14, 14)
    np.testing.assert_allclose(y[:, :, 3, 5], x[:, :, 6:8, 10:12].mean(axis=(2, 3)), rtol=1e-14)


# --- the objectives, term by term ---------------------------------------------------------------


def networks(model, stage):
    return getattr(model.generator, f"stage{stage}"), getattr(model.discriminator, f"stage{stage}")


def d_inputs(model, stage, real):
    return downsample(real) if stage == 1 else real


def make_fake(model, stage, z, text):
    """Stage-I: G_0(z, e); Stage-II: G(G_0(z, e) frozen, e). Draws CA's eps from the stream."""
    G, _ = networks(model, stage)
    if stage == 1:
        return G.forward(z, text)
    return G.forward(model.sketch(z, text), text)


def generator_objective(model, stage, text, seed=5):
    """L_G = BCE(D(fake, e), 1) + kl_weight * KL, one network call per term, with z and
    every eps drawn afresh from a reseeded stream (the same draw at every call)."""
    G, D = networks(model, stage)
    model.reseed_noise(seed)
    fake = make_fake(model, stage, model.sample_noise(text.shape[0]), text)
    return bce(D.forward(fake, text), 1.0) + model.config.kl_weight * float(G.ca.kl())


def discriminator_objective(model, stage, real, fake, text):
    """L_D = BCE(D(x, e), 1) + 1/2 [BCE(D(x, e'), 0) + BCE(D(fake, e), 0)]: three passes."""
    _, D = networks(model, stage)
    x = d_inputs(model, stage, real)
    return bce(D.forward(x, text), 1.0) + 0.5 * (
        bce(D.forward(x, roll(text)), 0.0) + bce(D.forward(fake, text), 0.0)
    )


def lively(model):
    """Every weight matrix and kernel ~ N(0, 1 / fan_in) instead of the paper's N(0, 0.02).
    Through five layers of 0.02, D's scores and gradients are ~1e-7, where a central
    difference's rounding (~1e-16 / STEP) is a relative error of 1e-3, and Stage-I's
    sketches are nearly flat, so that Stage-II's first pre-activations lie ~1e-4 from
    ReLU's kink, within reach of the step; now all are O(1). Every bias and BatchNorm
    parameter moves by N(0, 0.1^2) off its initial 0 (or 1): with zero biases, a patch of
    G's last maps that ReLU left all 0 draws pixels of exactly 0, and D's first convolution
    then puts a pre-activation exactly on LeakyReLU's kink."""
    rng = np.random.default_rng(12)
    for network in (model.generator, model.discriminator):
        for p in network.parameters():
            if p.data.ndim > 1:
                p.data[...] = rng.standard_normal(p.shape) / np.sqrt(np.prod(p.shape[1:]))
            else:
                p.data += 0.1 * rng.standard_normal(p.shape)
    return model


def stage_model(stage, **changes):
    """A tiny model about to train ``stage`` (weights held still), Stage-I trained a bit
    first when the stage is 2, so that its sketches are not the initial weights' blur."""
    model = lively(tiny(**changes))
    model.plan_steps(6)  # Stage-I: 3 steps, Stage-II: 3
    real, text = batch()
    if stage == 2:
        for _ in range(3):
            model.train_step(real, text)
    assert model.stage == stage
    return hold(model)


@pytest.mark.parametrize(("stage", "sketch_skip"), [(1, True), (2, True), (2, False)])
def test_the_generator_step_differentiates_the_objective_as_written(
    stage, sketch_skip, assert_gradients_match
):
    model = stage_model(stage, sketch_skip=sketch_skip)
    _, text = batch()
    G, D = networks(model, stage)
    model.reseed_noise(5)
    fake = make_fake(model, stage, model.sample_noise(4), text)
    model.generator.zero_grad()  # both stages': Stage-I's must stay 0 in Stage-II
    g_loss, kl = model.generator_step(G, D, fake, text)
    expected = generator_objective(model, stage, text)
    assert float(g_loss) + TINY.kl_weight * float(kl) == pytest.approx(expected, rel=1e-12)
    errors, cancelled = errors_and_cancelled(
        G, lambda: generator_objective(model, stage, text), STEP, checks=6
    )
    assert cancelled == (["net.0.bias"] if stage == 1 else [])  # the Linear before BatchNorm1d
    assert {"ca.fc.weight", "ca.fc.bias"} <= set(errors)  # the KL and the code's path
    assert len(errors) + len(cancelled) == len(G.parameters())
    # L_G's rounding, ~1e-16 * (the size of its terms) / STEP, reaches 2e-7 of the smallest
    # checked gradients (BatchNorm's over 4 images): the error falls as the step grows
    # (Stage-I: 9.6e-7 at 1e-7, 1.8e-7 at 1e-6, 1.4e-8 at 1e-5; Stage-II likewise), until a
    # step of 1e-5 nudges one of Stage-II's ReLUs across its kink. Hence 1e-6 here.
    assert_gradients_match(errors, 1e-6)
    assert all(not p.grad.any() for p in D.parameters())  # D frozen
    if stage == 2:  # Stage-I frozen: no gradient reaches it
        assert all(not p.grad.any() for p in model.generator.stage1.parameters())


@pytest.mark.parametrize("stage", [1, 2])
def test_the_discriminator_step_differentiates_the_matching_aware_loss(
    stage, assert_gradients_match
):
    model = stage_model(stage)
    real, text = batch()
    _, D = networks(model, stage)
    side = 14 if stage == 1 else 28
    fake = np.tanh(np.random.default_rng(2).standard_normal((4, 1, side, side)))
    stats = model.discriminator_step(D, d_inputs(model, stage, real), fake, text)
    expected = discriminator_objective(model, stage, real, fake, text)
    assert float(stats["d_loss"]) == pytest.approx(expected, rel=1e-12)
    errors, cancelled = errors_and_cancelled(
        D, lambda: discriminator_objective(model, stage, real, fake, text), STEP, checks=8
    )
    assert cancelled == []
    assert len(errors) == len(D.parameters())
    assert_gradients_match(errors)
    # the mean probabilities of the three kinds of pair
    x = d_inputs(model, stage, real)
    for key, scores in (("d_real", D(x, text)), ("d_wrong", D(x, roll(text))),
                        ("d_fake", D(fake, text))):  # fmt: skip
        assert float(stats[key]) == pytest.approx(np.mean(1 / (1 + np.exp(-scores))), rel=1e-12)


def torch_stage(model, stage):
    """The stage's G and D in torch, from their parts (minigan.testing.pytorch.to_torch):
    functions G(input, e, eps) and D(x, e), and the twins by part name."""
    import torch

    from minigan.testing.pytorch import to_torch

    G, D = networks(model, stage)
    parts = {"ca": G.ca.fc, "g_net": G.net, "d_encoder": D.encoder,
             "d_compress": D.head.compress, "d_net": D.head.net}  # fmt: skip
    if stage == 2:
        parts["g_encoder"] = G.encoder
    if D.head.projection is not None:
        parts["d_projection"] = D.head.projection.embed
    t = {name: to_torch(part) for name, part in parts.items()}
    k = model.config.c_dim

    def join(h, c):
        return torch.cat([h, c[:, :, None, None].expand(-1, -1, *h.shape[2:])], dim=1)

    def ca(e, eps):  # the paper code's CA_NET (its ReLU if ca_relu) and KL_loss
        x = t["ca"](e)
        x = torch.relu(x) if model.config.ca_relu else x
        mu, logvar = x[:, :k], x[:, k:]
        kl = -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())
        return mu + logvar.mul(0.5).exp() * eps, kl

    def generator(source, e, eps):
        c, kl = ca(e, eps)
        if stage == 1:
            return t["g_net"](torch.cat([source, c], dim=1)), kl
        y = t["g_net"](join(t["g_encoder"](source), c))
        if not model.config.sketch_skip:
            return y, kl  # g_net ends in its Tanh
        up = torch.nn.functional.interpolate(source, scale_factor=2, mode="nearest")
        return torch.tanh(y + torch.atanh(up.clamp(-SKETCH_CLIP, SKETCH_CLIP))), kl

    def discriminator(x, e):
        f = t["d_encoder"](x)
        s = t["d_net"](join(f, t["d_compress"](e)))
        if "d_projection" not in t:
            return s
        return s + (t["d_projection"](e) * f.mean(dim=(2, 3))).sum(dim=1, keepdim=True)

    return generator, discriminator, t, parts


@pytest.mark.parametrize("stage", [1, 2])
@pytest.mark.parametrize(
    ("ca_relu", "d_projection", "sketch_skip"),
    [(False, True, True), (True, True, True), (False, False, True), (False, True, False)],
)
def test_both_steps_agree_with_torch_autograd(stage, ca_relu, d_projection, sketch_skip):
    """L_G and L_D of the stage by autograd, on the same networks and the same draws:
    every parameter gradient agrees to float64 rounding (CA with and without its ReLU, D
    with and without its projection term, Stage-II's G with and without the sketch skip)."""
    torch = pytest.importorskip("torch")
    bce_t = torch.nn.functional.binary_cross_entropy_with_logits
    model = stage_model(stage, ca_relu=ca_relu, d_projection=d_projection,
                        sketch_skip=sketch_skip)  # fmt: skip
    real, text = batch()
    G, D = networks(model, stage)
    generator, discriminator, t, parts = torch_stage(model, stage)
    model.reseed_noise(5)
    z = model.sample_noise(4)
    source = z if stage == 1 else model.sketch(z, text)
    fake = G.forward(source, text)
    eps = torch.from_numpy(G.ca._saved[3].copy())
    e = torch.from_numpy(text)
    fake_t, kl_t = generator(torch.from_numpy(source), e, eps)
    np.testing.assert_allclose(fake, fake_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    # D's step first (as train_step), on the fakes G just drew
    model.discriminator_step(D, d_inputs(model, stage, real), fake, text)
    x = torch.from_numpy(d_inputs(model, stage, real))
    ones, zeros = torch.ones(4, 1, dtype=torch.float64), torch.zeros(4, 1, dtype=torch.float64)
    d_loss = bce_t(discriminator(x, e), ones) + 0.5 * (
        bce_t(discriminator(x, torch.from_numpy(roll(text))), zeros)
        + bce_t(discriminator(fake_t.detach(), e), zeros)
    )
    d_loss.backward()
    assert ("d_projection" in t) == d_projection
    for name in ("d_encoder", "d_compress", "d_net") + (("d_projection",) if d_projection else ()):
        for (p_name, p), tp in zip(
            parts[name].named_parameters(), t[name].parameters(), strict=True
        ):
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=f"{name}.{p_name}")  # fmt: skip
    # then G's, through the frozen D
    for net in t.values():
        net.zero_grad()
    G.zero_grad()
    model.generator_step(G, D, fake, text)
    g_loss = bce_t(discriminator(fake_t, e), ones) + model.config.kl_weight * kl_t
    g_loss.backward()
    for name in ("ca", "g_net") + (("g_encoder",) if stage == 2 else ()):
        for (p_name, p), tp in zip(
            parts[name].named_parameters(), t[name].parameters(), strict=True
        ):
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=f"{name}.{p_name}")  # fmt: skip


# --- the plan, the stages and sampling ---------------------------------------------------------


def arrays_of(module):
    return {k: v.copy() for k, v in module.state_dict().items()}


def test_stage_one_trains_first_then_stage_two_with_stage_one_frozen():
    model = tiny(ema=0.9)
    real, text = batch()
    with pytest.raises(RuntimeError, match=r"call plan_steps\(total_steps\) first"):
        model.train_step(real, text)
    model.plan_steps(5)  # round(0.5 * 5) = 2 steps of Stage-I, 3 of Stage-II
    assert model.stage1_steps == 2
    stages = []
    before = {name: arrays_of(getattr(model, part).stage2) for part, name in
              (("generator", "g2"), ("discriminator", "d2"))}  # fmt: skip
    for _ in range(2):
        stages.append(model.stage)
        stats = model.train_step(real, text)
        assert set(stats) == set(StackGAN.stats)
    for name, part in (("g2", "generator"), ("d2", "discriminator")):  # Stage-II untouched
        for key, value in arrays_of(getattr(model, part).stage2).items():
            np.testing.assert_array_equal(value, before[name][key], err_msg=f"{name}/{key}")
    frozen = {"g1": arrays_of(model.generator.stage1), "d1": arrays_of(model.discriminator.stage1),
              "avg1": arrays_of(model.averages[0].averaged)}  # fmt: skip
    for _ in range(3):
        stages.append(model.stage)
        stats = model.train_step(real, text)
        assert set(stats) == set(StackGAN.stats)
    assert stages == [1, 1, 2, 2, 2] and model.stage == 2
    for name, module in (("g1", model.generator.stage1), ("d1", model.discriminator.stage1),
                         ("avg1", model.averages[0].averaged)):  # fmt: skip
        for key, value in arrays_of(module).items():  # weights and BatchNorm's statistics
            np.testing.assert_array_equal(value, frozen[name][key], err_msg=f"{name}/{key}")
    with pytest.raises(ValueError, match="total_steps must be an integer >= 1"):
        model.plan_steps(0)


def test_generate_shows_stage_one_upsampled_until_stage_two_trains():
    model = tiny()
    real, text = batch()
    model.plan_steps(2)
    model.reseed_noise(3)
    z = model.sample_noise(4)
    state = arrays_of(model.generator)

    def drawn(fn):
        model.reseed_noise(8)
        return fn(z, text)

    early = drawn(model.generate)
    sketch, full = drawn(model.generate_stages)
    assert sketch.shape == (4, 1, 14, 14) and full.shape == early.shape == (4, 1, 28, 28)
    np.testing.assert_array_equal(early, sketch.repeat(2, axis=2).repeat(2, axis=3))
    model.train_step(real, text)  # Stage-I's one step; Stage-II has not trained yet
    assert model.stage == 2
    sketch, _ = drawn(model.generate_stages)
    np.testing.assert_array_equal(drawn(model.generate), sketch.repeat(2, 2).repeat(2, 3))
    model.train_step(real, text)
    sketch, full = drawn(model.generate_stages)
    np.testing.assert_array_equal(drawn(model.generate), full)
    assert np.abs(full).max() <= 1 and np.abs(sketch).max() <= 1
    # sampling runs both G's in evaluation mode: it changed no running statistic
    model2 = tiny()
    before = arrays_of(model2.generator)
    model2.generate_stages(z, text)
    for key, value in arrays_of(model2.generator).items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    assert all(m.training for m in model2.generator.modules())
    assert state  # (the first model's state was taken before it trained)


def test_generate_checks_its_inputs():
    model = tiny()
    z = model.sample_noise(3)
    _, text = batch(3)
    with pytest.raises(ValueError, match=r"text embeddings"):
        model.generate(z, text[:, :4])
    with pytest.raises(ValueError, match=r"text embeddings"):
        model.generate_stages(z, text[:2])
    with pytest.raises(ValueError, match=r"z"):
        model.generate(z[:, :3], text)
    real, text = batch()
    model.plan_steps(3)
    with pytest.raises(ValueError, match="no other image's caption"):
        model.train_step(real[:1], text[:1])
    with pytest.raises(ValueError, match="text embeddings"):
        model.train_step(real, text[:3])
    with pytest.raises((ValueError, TypeError), match="real batch"):
        model.train_step(real[:, :, :14, :14], text)


# --- the state -----------------------------------------------------------------------------------


def every_array(model):
    state = model.state_dict()
    arrays = {}
    for part in ("generator", "discriminator"):
        arrays |= {f"{part}/{k}": v for k, v in state[part].items()}
    for key in model.optimizers:
        arrays |= {f"{key}/{k}": np.asarray(v) for k, v in state[key].items() if k in "mvt"}
    for stage, average in state.get("generator_ema", {}).items():
        arrays |= {f"ema/{stage}/{k}": v for k, v in average["weights"].items()}
    return arrays


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_a_loaded_state_continues_bit_identically(cut):
    """Steps, save after ``cut`` of 4 (inside Stage-I, at the switch, inside Stage-II),
    load into a fresh model that was never planned, go on: the same as 4 straight."""
    real, text = batch(dtype=np.float32)
    straight, first = tiny(np.float32, ema=0.9), tiny(np.float32, ema=0.9)
    for model, steps in ((straight, 4), (first, cut)):
        model.plan_steps(4)
        model.reseed_noise(5)
        for i in range(steps):
            if i == cut:
                model.reseed_noise(6)
            model.train_step(real, text[::-1].copy() if i % 2 else text)
    resumed = StackGAN(first.config, seed=7, dtype=np.float32)  # other weights, replaced
    resumed.load_state_dict(first.state_dict())
    assert (resumed.steps, resumed.stage1_steps, resumed.total_steps) == (cut, 2, 4)
    resumed.reseed_noise(6)
    for i in range(cut, 4):
        resumed.train_step(real, text[::-1].copy() if i % 2 else text)
    got, expected = every_array(resumed), every_array(straight)
    assert got.keys() == expected.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    drawn = []
    for model in (resumed, straight):
        model.reseed_noise(1)
        drawn.append(model.generate(model.sample_noise(3), text[:3]))
    np.testing.assert_array_equal(*drawn)


def test_a_state_that_does_not_fit_is_refused_and_changes_nothing():
    model = tiny(ema=0.9)
    model.plan_steps(4)
    before = every_array(model)
    good = tiny(ema=0.9).state_dict()
    cases = [
        ({**good, "model": "dcgan"}, ValueError, "saved by a 'dcgan' model"),
        ({k: v for k, v in good.items() if k != "plan"}, KeyError, r"no \['plan'\]"),
        ({k: v for k, v in good.items() if k != "d2_optimizer"}, KeyError, "d2_optimizer"),
        ({**good, "plan": {"total_steps": 3, "stage1_steps": 5}}, ValueError, "not a step count"),
        ({k: v for k, v in good.items() if k != "generator_ema"}, KeyError, "generator_ema"),
        (tiny(c_dim=4, ema=0.9).state_dict(), ValueError, "shape"),
    ]
    for state, error, message in cases:
        with pytest.raises(error, match=message):
            model.load_state_dict(state)
    with pytest.raises(ValueError, match="keeps none"):
        tiny(ema=0.0).load_state_dict(good)
    for key, value in every_array(model).items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    assert model.stage1_steps == 2 and model.steps == 0


# --- the config and the sizes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image_size": 64}, "image_size must be one of"),
        ({"channels": 2}, "channels must be 1"),
        ({"g1_channels": 5}, "g1_channels must be even"),
        ({"c_dim": 0}, "c_dim must be a positive integer"),
        ({"batch_size": 1}, "batch_size must be >= 2"),
        ({"stage1_share": 1.0}, r"stage1_share must lie in \(0, 1\)"),
        ({"kl_weight": -1.0}, "kl_weight must be a number >= 0"),
        ({"ema": 1.0}, r"ema must lie in \[0, 1\)"),
        ({"lr": 0.0}, "lr must be a positive number"),
        ({"g_lr": -1.0}, "g_lr must be a positive number"),
    ],
)
def test_the_config_refuses_what_cannot_train(change, message):
    with pytest.raises(ValueError, match=message) as info:
        dataclasses.replace(TINY, **change)
    assert "\n" not in str(info.value)


def test_config_for_images_takes_28_and_32_and_refuses_the_rest():
    assert StackGAN.config_for_images(TINY, (1, 28, 28)).image_shape == (1, 28, 28)
    assert StackGAN.config_for_images(TINY, (3, 32, 32)).image_shape == (3, 32, 32)
    for shape in ((1, 64, 64), (1, 28, 32), (2, 28, 28)):
        with pytest.raises(ValueError, match="StackGAN takes square grey or RGB images") as info:
            StackGAN.config_for_images(TINY, shape)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"channels": 3, "image_size": 32, "residual_blocks": 2},
        {"d_projection": False},
        {"sketch_skip": False},
    ],
)
def test_the_parameter_count_from_the_config_is_the_built_networks(changes):
    model = tiny(np.float32, **changes)
    built = sum(p.data.size for net in (model.generator, model.discriminator)
                for p in net.parameters())  # fmt: skip
    assert StackGAN.parameter_count(model.config) == count_parameters(model.config) == built
    assert StackGAN.memory_bytes(model.config, 16) > StackGAN.memory_bytes(model.config, 8)
    real = np.zeros((4, *model.image_shape), np.float32)
    model.plan_steps(2)
    for _ in range(2):
        model.train_step(real, np.zeros((4, TINY.text_dim), np.float32))


def test_the_defaults_are_the_papers_where_the_module_doc_says_so():
    config = StackGANConfig()
    assert (config.lr, config.betas) == (2e-4, (0.5, 0.999))  # D's; G's own: g_lr
    assert StackGAN(dataclasses.replace(TINY, g_lr=None)).optimizers["g1_optimizer"].lr == 2e-4
    rates = {key: opt.lr for key, opt in tiny(g_lr=1e-3).optimizers.items()}
    assert rates == {"g1_optimizer": 1e-3, "d1_optimizer": 2e-4,
                     "g2_optimizer": 1e-3, "d2_optimizer": 2e-4}  # fmt: skip
    assert not config.ca_relu  # the paper's text (the module doc says why not its code's)
    assert config.sketch_skip  # a departure (the module doc argues it); off: the paper's G
    assert isinstance(tiny(sketch_skip=False).generator.stage2.net.layers[-1], nn.Tanh)
    model = tiny()
    assert model.generator.stage1.ca.relu is None and model.generator.stage2.ca.relu is None
    assert tiny(ca_relu=True).generator.stage2.ca.relu is not None
    assert config.batch_size == 64
    assert config.text_dim >= 31  # the caption vocabulary's size
    assert StackGAN.captioned and not StackGAN.conditional and not StackGAN.translation
    assert set(StackGAN.stats) == {"d_loss", "g_loss", "kl", "d_real", "d_wrong", "d_fake"}


# --- the strict CuPy stand-in ---------------------------------------------------------------------


def steps_on(backend):
    """Four steps (two of each stage) of a tiny StackGAN with averages, then samples."""
    be = get_backend(backend)
    model = StackGAN(dataclasses.replace(TINY, ema=0.9), be, seed=0)
    model.plan_steps(4)
    real, text = batch(dtype=np.float32)
    real, text = be.asarray(real), be.asarray(text)
    stats = [model.train_step(real, text) for _ in range(4)]
    model.reseed_noise(2)
    sketch, full = model.generate_stages(model.sample_noise(3), text[:3])
    return model, stats, sketch, full


def test_steps_through_the_cupy_stand_in_read_nothing_back(fake_cupy):
    model_np, stats_np, sketch_np, full_np = steps_on("numpy")
    model_cp, stats_cp, sketch_cp, full_cp = steps_on("cupy")
    assert fake_cupy.reads == []  # four steps across the switch, and sampling: no sync
    for got, expected in zip(stats_cp, stats_np, strict=True):
        for key in expected:
            np.testing.assert_array_equal(to_host(got[key]), expected[key], err_msg=key)
    np.testing.assert_array_equal(to_host(sketch_cp), sketch_np)
    np.testing.assert_array_equal(to_host(full_cp), full_np)
    got, expected = every_array(model_cp), every_array(model_np)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def test_a_checkpoint_from_before_the_projection_resumes_without_it():
    from minigan.checkpoint import upgrade

    config = dataclasses.asdict(TINY)
    del config["d_projection"]  # a run saved before the field existed
    state = upgrade({"gan": {"model": "stackgan"}, "config": config})
    assert state["config"]["d_projection"] is False
    old = StackGAN(StackGANConfig(**state["config"]), seed=0)
    assert all(net.head.projection is None for net in (old.discriminator.stage1,
                                                       old.discriminator.stage2))  # fmt: skip
    assert all(net.head.projection is not None for net in (tiny().discriminator.stage1,
                                                           tiny().discriminator.stage2))  # fmt: skip


def test_a_checkpoint_from_before_the_sketch_skip_resumes_without_it():
    from minigan.checkpoint import upgrade

    config = dataclasses.asdict(TINY)
    del config["sketch_skip"]  # a run saved before the field existed
    state = upgrade({"gan": {"model": "stackgan"}, "config": config})
    assert state["config"]["sketch_skip"] is False
    old = StackGAN(StackGANConfig(**state["config"]), seed=0).generator.stage2
    assert not old.skip and old.tanh is None and isinstance(old.net.layers[-1], nn.Tanh)
    new = tiny().generator.stage2
    assert new.skip and not isinstance(new.net.layers[-1], nn.Tanh)
    # the same weights either way: an old checkpoint's arrays load into the old layout
    assert old.state_dict().keys() == new.state_dict().keys()


# --- Stage-II's sketch skip ---------------------------------------------------------------------


def test_sketch_logits_are_the_enlarged_sketchs_pre_activation(rng):
    sketch = np.tanh(2 * rng.standard_normal((3, 1, 14, 14)))
    sketch[0, 0, :2, :2] = [[1.0, -1.0], [0.9999, -0.9999]]  # Tanh's rounding to +-1
    a = sketch_logits(sketch)
    assert a.shape == (3, 1, 28, 28) and np.isfinite(a).all()
    enlarged = sketch.repeat(2, axis=2).repeat(2, axis=3)
    np.testing.assert_allclose(np.tanh(a), np.clip(enlarged, -SKETCH_CLIP, SKETCH_CLIP),
                               rtol=1e-12, atol=1e-15)  # fmt: skip
    np.testing.assert_allclose(a, np.arctanh(np.clip(enlarged, -SKETCH_CLIP, SKETCH_CLIP)),
                               rtol=1e-12, atol=1e-15)  # fmt: skip
    assert np.abs(a).max() == pytest.approx(np.arctanh(SKETCH_CLIP), rel=1e-12)
    assert sketch_logits(sketch.astype(np.float32)).dtype == np.float32


def test_stage_two_with_the_skip_draws_its_sketch_when_its_correction_is_zero(rng):
    """s = tanh(y + a(s0)): with G's last convolution zeroed (y = 0), Stage-II draws the
    sketch enlarged; without the skip, tanh(0) = 0 everywhere (the paper's G)."""
    sketch = np.tanh(rng.standard_normal((2, 1, 14, 14)))
    text = rng.standard_normal((2, TINY.text_dim))
    for skip in (True, False):
        G = lively(tiny(sketch_skip=skip)).generator.stage2
        last = [layer for layer in G.net.layers if isinstance(layer, nn.Conv2d)][-1]
        last.weight.data[...] = 0
        last.bias.data[...] = 0
        drawn = G.forward(sketch, text)
        expected = sketch.repeat(2, axis=2).repeat(2, axis=3) if skip else 0 * drawn
        np.testing.assert_allclose(drawn, expected, rtol=1e-12, atol=1e-15)
