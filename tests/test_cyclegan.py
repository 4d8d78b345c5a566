"""CycleGAN: its objective's gradients (finite differences, torch autograd), the pool of
fakes, the rate's schedule, its state, and its checks."""

import dataclasses

import numpy as np
import pytest
from conftest import errors_and_cancelled, hold_weights

from minigan.models import MODELS, CycleGAN, CycleGANConfig
from minigan.models.cyclegan import ImagePool

# Tiny networks on 8x8 images: every layer of the paper's G and D is there (reflection
# pads, the 7x7 convolutions, both strides, a residual block, InstanceNorm, the PatchGAN).
TINY = CycleGANConfig(image_size=8, base_channels=2, residual_blocks=1, d_layers=1,
                      batch_size=2, pool_size=0)  # fmt: skip
# The gradient checks use 16x16 images: G's innermost maps are then 4x4, where at 8x8 they
# are 2x2, whose InstanceNorm, over 4 pixels, bends the objective so sharply that no step
# is both past the rounding and inside the curvature. At 16x16 a step of 1e-6 leaves a
# truncation error ~1e-12 and a rounding error ~1e-16 * |L| / 1e-6 ~ 1e-9 (L ~ 10), and
# nudges no ReLU, LeakyReLU or |x| across its kink at these random points.
STEP, CHECK_SIDE = 1e-6, 16


def tiny(dtype=np.float64, **changes) -> CycleGAN:
    return CycleGAN(dataclasses.replace(TINY, **changes), seed=0, dtype=dtype)


def domains(n: int = 2, seed: int = 1, dtype=np.float64, side: int = 8):
    a, b = np.random.default_rng(seed).uniform(-1, 1, (2, n, 1, side, side))
    return a.astype(dtype), b.astype(dtype)


def l1(x, y):
    return np.abs(x - y).mean()


def generator_objective(model: CycleGAN, a, b) -> float:
    """L_G written out from the module doc, one network call per term (no stacking, no
    twins): what the model's step must differentiate."""
    G, D, cfg = model.generator, model.discriminator, model.config
    fake_b, fake_a = G.ab.forward(a), G.ba.forward(b)
    rec_a, rec_b = G.ba.forward(fake_b), G.ab.forward(fake_a)
    idt_b, idt_a = G.ab.forward(b), G.ba.forward(a)
    gan = ((D.b.forward(fake_b) - 1) ** 2).mean() + ((D.a.forward(fake_a) - 1) ** 2).mean()
    cycle = l1(rec_a, a) + l1(rec_b, b)
    identity = l1(idt_b, b) + l1(idt_a, a)
    return gan + cfg.cycle_weight * (cycle + cfg.identity_weight * identity)


def discriminator_objective(model: CycleGAN, a, b, fake_a, fake_b) -> float:
    D = model.discriminator
    return 0.5 * (
        ((D.b.forward(b) - 1) ** 2).mean() + (D.b.forward(fake_b) ** 2).mean()
        + ((D.a.forward(a) - 1) ** 2).mean() + (D.a.forward(fake_a) ** 2).mean()
    )  # fmt: skip


def test_the_generator_step_differentiates_the_objective_as_written(assert_gradients_match):
    """Both G's at once: the stacked passes, the twins and the gradient crossing each cycle
    give dL_G/dtheta, against central differences of L_G written term by term."""
    model = hold_weights(tiny(image_size=CHECK_SIDE))
    a, b = domains(side=CHECK_SIDE)
    _, _, stats = model.generator_step(a, b)
    cfg = model.config
    expected = generator_objective(model, a, b)
    reported = float(stats["g_gan"]) + cfg.cycle_weight * (
        float(stats["cycle"]) + cfg.identity_weight * float(stats["identity"])
    )
    assert reported == pytest.approx(expected, rel=1e-12)
    errors, cancelled = errors_and_cancelled(
        model.generator, lambda: generator_objective(model, a, b), STEP, checks=6
    )
    assert len(errors) + len(cancelled) == 2 * 2 * (6 + 2 * TINY.residual_blocks)  # both G's
    assert len(cancelled) == 2 * (5 + 2 * TINY.residual_blocks)  # all but the last conv's
    assert_gradients_match(errors)
    assert all(not p.grad.any() for p in model.discriminator.parameters())  # D frozen


def test_the_discriminator_step_differentiates_both_ds_objectives(assert_gradients_match):
    model = hold_weights(tiny(image_size=CHECK_SIDE))
    a, b = domains(side=CHECK_SIDE)
    fake_a, fake_b = domains(seed=2, side=CHECK_SIDE)
    loss = model.discriminator_step(a, b, fake_a, fake_b)
    assert float(loss) == pytest.approx(discriminator_objective(model, a, b, fake_a, fake_b))

    def objective():
        return discriminator_objective(model, a, b, fake_a, fake_b)

    errors, cancelled = errors_and_cancelled(model.discriminator, objective, STEP, checks=8)
    assert cancelled == ["a.2.bias", "b.2.bias"]  # the one inner convolution's, in each D
    assert_gradients_match(errors)


def test_the_gradients_agree_with_torch_autograd():
    """The same networks in torch (minigan.testing.pytorch.to_torch), L_G and L_D by
    autograd: every parameter gradient agrees to float64 rounding."""
    torch = pytest.importorskip("torch")
    from minigan.testing.pytorch import to_torch

    model = hold_weights(tiny())
    a, b = domains()
    fake_a, fake_b, _ = model.generator_step(a, b)
    G, D = model.generator, model.discriminator
    t = {name: to_torch(net) for name, net in
         (("ab", G.ab), ("ba", G.ba), ("a", D.a), ("b", D.b))}  # fmt: skip
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    mse, l1_loss, cfg = torch.nn.functional.mse_loss, torch.nn.functional.l1_loss, model.config
    t_fake_b, t_fake_a = t["ab"](ta), t["ba"](tb)
    ones = lambda s: torch.ones_like(s)
    s_b, s_a = t["b"](t_fake_b), t["a"](t_fake_a)
    loss = mse(s_b, ones(s_b)) + mse(s_a, ones(s_a))
    loss = loss + cfg.cycle_weight * (
        l1_loss(t["ba"](t_fake_b), ta) + l1_loss(t["ab"](t_fake_a), tb)
    )
    idt = l1_loss(t["ab"](tb), tb) + l1_loss(t["ba"](ta), ta)
    (loss + cfg.cycle_weight * cfg.identity_weight * idt).backward()
    for key, net in (("ab", G.ab), ("ba", G.ba)):
        for (name, p), tp in zip(net.named_parameters(), t[key].parameters(), strict=True):
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=f"G_{key}.{name}")  # fmt: skip
    # D's step, on the fakes G just drew (the pool is off in TINY).
    for net in t.values():
        net.zero_grad()
    model.discriminator_step(a, b, fake_a, fake_b)
    d_loss = 0
    for key, real, fake in (
        ("b", tb, torch.from_numpy(fake_b)),
        ("a", ta, torch.from_numpy(fake_a)),
    ):
        s_real, s_fake = t[key](real), t[key](fake)
        d_loss = d_loss + 0.5 * (mse(s_real, ones(s_real)) + mse(s_fake, torch.zeros_like(s_fake)))
    d_loss.backward()
    for key in ("a", "b"):
        net = getattr(D, key)
        for (name, p), tp in zip(net.named_parameters(), t[key].parameters(), strict=True):
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=f"D_{key}.{name}")  # fmt: skip


def reference_pool(size, fakes_per_step, rng):
    """The paper code's ImagePool.query (util/image_pool.py), one image at a time, with the
    coin and slot drawn as the model draws them."""
    pool, shown_per_step = [], []
    for fakes in fakes_per_step:
        shown = []
        for fake in fakes:
            if len(pool) < size:
                pool.append(fake.copy())
                shown.append(fake)
                continue
            coin = rng.random((1, 1, 1, 1))[0, 0, 0, 0]
            slot = int(rng.integers(0, size, size=1)[0])
            if coin < 0.5:  # the paper: p > 0.5 keeps the fake; the same coin, mirrored
                shown.append(pool[slot].copy())
                pool[slot] = fake.copy()
            else:
                shown.append(fake)
        shown_per_step.append(np.stack(shown))
    return shown_per_step, np.stack(pool)


def test_the_pool_fills_then_swaps_as_the_papers_code_does():
    steps = np.random.default_rng(0).standard_normal((6, 4, 1, 2, 2))
    rng = np.random.default_rng(3)
    pool = ImagePool(5, (1, 2, 2), np, np.float64)
    got = [pool.query(fakes, rng) for fakes in steps]
    expected, stored = reference_pool(5, steps, np.random.default_rng(3))
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)
    np.testing.assert_array_equal(pool.images, stored)
    assert pool.count == 5
    swapped = sum((g != s).any(axis=(1, 2, 3)).sum() for g, s in zip(got[2:], steps[2:]))
    assert 0 < swapped < 16  # some fakes were swapped for stored ones, not all


def test_an_empty_pool_passes_fakes_through():
    fakes = np.ones((3, 1, 2, 2))
    assert ImagePool(0, (1, 2, 2), np, np.float64).query(fakes, None) is fakes


def test_the_rate_holds_for_half_the_run_then_falls_linearly_to_zero():
    model = tiny(pool_size=3)
    a, b = domains()
    model.plan_steps(10)
    rates = []
    for _ in range(10):
        model.train_step(a, b)
        rates.append(model.g_optimizer.lr)
        assert model.d_optimizer.lr == model.g_optimizer.lr
    lr = TINY.lr
    assert rates == pytest.approx([lr] * 6 + [lr * 0.8, lr * 0.6, lr * 0.4, lr * 0.2])
    with pytest.raises(ValueError, match="total_steps must be an integer >= 1"):
        model.plan_steps(0)


def every_array(model: CycleGAN) -> dict[str, np.ndarray]:
    state = model.state_dict()
    arrays = {}
    for part in ("generator", "discriminator"):
        arrays |= {f"{part}/{k}": v for k, v in state[part].items()}
    for part in ("g_optimizer", "d_optimizer"):
        arrays |= {f"{part}/{k}": np.asarray(v) for k, v in state[part].items() if k in "mvt"}
    arrays |= {f"pool/{d}": p["images"] for d, p in state["pools"].items()}
    return arrays


def test_a_loaded_state_continues_bit_identically(rng):
    """Two steps, save, load into a new model, two more: as four steps straight (the pools
    and Adam's moments included), float32 as training runs."""
    a, b = domains(dtype=np.float32)
    straight, first = tiny(np.float32, pool_size=3), tiny(np.float32, pool_size=3)
    for model in (straight, first):
        model.plan_steps(4)
        model.reseed_noise(5)
        model.train_step(a, b)
        model.train_step(b, a)
    resumed = CycleGAN(first.config, seed=7, dtype=np.float32)  # other weights, replaced
    resumed.load_state_dict(first.state_dict())
    resumed.plan_steps(4)
    for model in (straight, resumed):
        model.reseed_noise(6)
        model.train_step(a, b)
        model.train_step(b, a)
    got, expected = every_array(resumed), every_array(straight)
    assert got.keys() == expected.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def test_a_state_with_a_wrong_pool_is_refused_and_changes_nothing():
    model, other = tiny(pool_size=3), tiny(pool_size=4)
    before = every_array(model)
    state = {**CycleGAN(model.config, seed=9).state_dict(), "pools": other.state_dict()["pools"]}
    with pytest.raises(ValueError, match="pool_size or images differ"):
        model.load_state_dict(state)
    bad_count = {d: {**p, "count": 9} for d, p in model.state_dict()["pools"].items()}
    with pytest.raises(ValueError, match=r"count 9 outside \[0, 3\]"):
        model.load_state_dict({**state, "pools": bad_count})
    state.pop("pools")
    with pytest.raises(KeyError, match="no \\['pools'\\]"):
        model.load_state_dict(state)
    for key, value in every_array(model).items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_translate_checks_its_input_and_a_cyclegan_draws_no_noise():
    model = tiny()
    a, _ = domains()
    assert model.translate(a, "AB").shape == a.shape
    assert model.translate(a, "BA").shape == a.shape
    with pytest.raises(ValueError, match="direction must be 'AB' or 'BA'"):
        model.translate(a, "AA")
    with pytest.raises(ValueError, match="images"):
        model.translate(a[:, :, :4], "AB")
    with pytest.raises(TypeError, match="translate"):
        model.generate(None)
    with pytest.raises(TypeError, match="translate"):
        model.sample_noise(3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image_size": 30}, "multiple of 4"),
        ({"channels": 2}, "channels must be 1"),
        ({"cycle_weight": -1.0}, "cycle_weight must be a number >= 0"),
        ({"pool_size": -1}, "pool_size must be an integer >= 0"),
        ({"residual_blocks": 0}, "residual_blocks must be a positive integer"),
        ({"lr": 0.0}, "lr must be a positive number"),
    ],
)
def test_the_config_refuses_what_cannot_train(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TINY, **change)


@pytest.mark.parametrize(
    "changes", [{}, {"channels": 3, "image_size": 32}, {"d_layers": 4, "residual_blocks": 2}]
)
def test_the_parameter_count_from_the_config_is_the_built_networks(changes):
    model = tiny(np.float32, **changes)
    built = sum(p.data.size for net in (model.generator, model.discriminator)
                for p in net.parameters())  # fmt: skip
    assert CycleGAN.parameter_count(model.config) == built
    assert CycleGAN.memory_bytes(model.config, 16) > CycleGAN.memory_bytes(model.config, 8)


def test_the_defaults_are_the_papers_where_the_module_doc_says_so():
    config = MODELS["cyclegan"].default_config()
    assert (config.cycle_weight, config.identity_weight, config.pool_size) == (10.0, 0.5, 50)
    assert (config.lr, config.betas) == (2e-4, (0.5, 0.999))
    assert CycleGAN.translation and not CycleGAN.conditional and not CycleGAN.labelled
