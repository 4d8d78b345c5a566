"""Shared test set-up: GPU tests run only where CuPy finds a GPU; the CuPy stand-in."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from minigan import nn


def _gpu_unavailable_reason() -> str | None:
    try:
        from minigan.backend import get_backend

        get_backend("cupy")
    except Exception as error:  # noqa: BLE001 - BackendUnavailableError, or a broken CUDA install
        return f"GPU tests skipped: {error}"
    return None


FULL_REASON = (
    "trains a shipped judge with its full recipe (minutes of CPU), as a user's first "
    "evaluation does: run these with pytest -m full"
)


def pytest_collection_modifyitems(config, items):
    if "full" not in (config.getoption("markexpr") or ""):  # opt-in: pytest -m full
        for item in items:
            if "full" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=FULL_REASON))
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    reason = _gpu_unavailable_reason()
    if reason is not None:
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def fake_cupy(monkeypatch):
    """The strict CuPy stand-in (tests/fake_cupy.py), installed as ``cupy`` for one test.

    ``get_backend("cupy")`` then finds it through its ordinary ``import cupy``. Its
    counters start at zero; its record of names used (``fake_cupy.RECORD``) is kept
    for the whole session.
    """
    import fake_cupy

    fake_cupy.cupy.reset()
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy.cupy)
    yield fake_cupy.cupy
    fake_cupy.cupy.reset()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# --- gradient-check report ---------------------------------------------------
# Every gradient check records the relative errors it reached; the summary at the
# end of the run lists the worst one per test, so the figures are always visible.

GRADCHECK_TOLERANCE = 1e-7
_gradcheck_results: list[tuple[str, str, float]] = []


@pytest.fixture
def assert_gradients_match(request):
    """Assert every relative error from ``check_module``/``check_loss`` is tiny, and log it."""

    def check(errors: dict[str, float] | float, tolerance: float = GRADCHECK_TOLERANCE):
        if not isinstance(errors, dict):
            errors = {"pred": errors}
        worst_name = max(errors, key=errors.get)
        _gradcheck_results.append((request.node.name, worst_name, errors[worst_name]))
        bad = {name: err for name, err in errors.items() if not err < tolerance}
        assert not bad, f"relative errors above {tolerance:g}: {bad} (all: {errors})"

    return check


# With its random draw fixed, a noise or augmentation layer is affine in x (y = x * m,
# y = x + std n, DiffAugment's steps), so central differences carry no truncation
# error, only rounding ~1e-16 |f| / h: the largest step is the most accurate. h = 1
# leaves ~1e-15.
AFFINE_STEP = 1.0


class SameDraw(nn.Module):
    """A random layer whose generator is reseeded before every forward: the same draw
    (mask, noise, augmentation) each time, which is what a finite-difference check needs."""

    def __init__(self, layer, seed=3):
        self.layer, self.seed = layer, seed

    def forward(self, x):
        self.layer.rng = np.random.default_rng(self.seed)
        return self.layer(x)

    def backward(self, grad_out, input_grad=True, create_graph=False):
        return self.layer.backward(grad_out, input_grad, create_graph)


def hold_weights(model):
    """``model`` with both learning rates 0 (a config takes only positive ones): its steps
    compute every gradient and move no weight, as a finite-difference check needs."""
    model.g_optimizer.lr = model.d_optimizer.lr = 0.0
    return model


def weight_count(gan) -> int:
    """Entries in G's and D's parameters: what ``parameter_count(config)`` must equal."""
    return sum(p.data.size for p in gan.generator.parameters() + gan.discriminator.parameters())


def d_gradient_errors_with_masks_held(gan, x, step: float = 1e-5) -> dict[str, float]:
    """Relative errors of D's parameter gradients of BCE(D(x), 1) against central
    differences, D's random layers (Dropout, noise) held fixed by reseeding the model's
    noise stream before every pass, so that each pass draws the same masks."""
    from minigan.gradcheck import numerical_gradient, relative_error

    def d_loss():
        gan.reseed_noise(7)  # the same masks at every call
        return gan.loss.forward(gan.discriminator.forward(x), 1.0)

    gan.discriminator.zero_grad()
    d_loss()
    gan.discriminator.backward(gan.loss.backward())
    return {
        name: relative_error(p.grad, numerical_gradient(d_loss, p.data, step))
        for name, p in gan.discriminator.named_parameters()
    }


def penalty_gradient_errors(model, x_hat) -> tuple[dict, dict[str, float]]:
    """WGAN-GP's penalty gradient with respect to every critic parameter: the analytic
    gradients (by name) and their relative errors against central differences of the
    penalty itself, recomputed for each nudge (default step 1e-5)."""
    from minigan.gradcheck import numerical_gradient, relative_error

    D = model.discriminator
    D.zero_grad()
    penalty, _ = model.gradient_penalty(x_hat)
    analytic = {name: p.grad.copy() for name, p in D.named_parameters()}
    assert float(penalty) > 0

    def P():
        return model.gradient_penalty(x_hat)[0]

    errors = {
        name: relative_error(analytic[name], numerical_gradient(P, p.data))
        for name, p in D.named_parameters()
    }
    return analytic, errors


def pytest_terminal_summary(terminalreporter):
    if not _gradcheck_results:
        return
    terminalreporter.section("gradient checks (float64 central differences)")
    worst: dict[str, tuple[str, float]] = {}
    for test, name, err in _gradcheck_results:
        if test not in worst or err > worst[test][1]:
            worst[test] = (name, err)
    for test, (name, err) in sorted(worst.items()):
        terminalreporter.write_line(f"{err:9.2e}  {test}  (worst: {name})")
    overall = max(err for _, err in worst.values())
    terminalreporter.write_line(
        f"{len(_gradcheck_results)} checks; worst relative error {overall:.2e} "
        f"(tolerance {GRADCHECK_TOLERANCE:g})"
    )


@pytest.fixture
def trained(tmp_path):
    """A run folder of examples/mnist_gan.py holding a small 2-epoch run (on the data the
    test module's autouse ``mnist_or_synthetic`` provides, which runs first)."""
    from test_mnist_gan_example import run

    out = tmp_path / "run"
    assert run("--epochs", "2", "--out", str(out)) == 0
    return out


def assert_network_matches_torch(ours, x, rng) -> None:
    """``ours`` (float64) against its ``to_torch`` twin: the output, dL/dx and every
    parameter's gradient for a random dL/dy, to float64 rounding (skipped without torch)."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity skipped")
    from minigan.testing.pytorch import to_torch

    theirs = to_torch(ours)
    y = ours(x)
    g = rng.standard_normal(y.shape)
    dx = ours.backward(g)
    x_t = torch.from_numpy(x).requires_grad_(True)
    y_t = theirs(x_t)
    y_t.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=1e-9, atol=1e-11)
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, grads[name].grad.numpy(), rtol=1e-9, atol=1e-11)


def load_example(name: str, module_name: str):
    """``examples/<name>.py`` imported as a module of its own name (each test file its own
    copy, so that one's monkeypatching never reaches another's)."""
    path = Path(__file__).resolve().parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def error_line(capsys) -> str:
    """The one line a failure prints to stderr ("error: ..." or "interrupted...: ..."),
    without progress bars; never a traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(("error:", "interrupted"))]
    assert len(lines) == 1, err
    return lines[0]


def errors_and_cancelled(network, objective, step: float, checks: int):
    """Relative errors of ``network``'s parameter gradients against central differences
    of ``objective`` (step ``step``, ``checks`` entries each), and the biases whose gradient
    is exactly 0: a bias followed by a normalisation that subtracts a mean (BatchNorm's
    over the batch, InstanceNorm's over each map), so a constant added to it cancels."""
    from minigan.gradcheck import numerical_gradient, relative_error

    errors, cancelled = {}, []
    for name, p in network.named_parameters():
        numeric = numerical_gradient(objective, p.data, step, num_checks=checks)
        if name.endswith("bias") and np.abs(numeric[~np.isnan(numeric)]).max() < 1e-8:
            assert np.abs(p.grad).max() < 1e-12, name
            cancelled.append(name)
        else:
            errors[name] = relative_error(p.grad, numeric)
    return errors, cancelled


def assert_labelled_resume_is_bit_identical(make, batches, split: int = 5) -> None:
    """Train ``make(seed=1)`` on the (images, labels) ``batches`` straight through; then
    again, stopped after ``split`` steps, its state loaded into ``make(seed=2)`` and
    trained on: every weight, both optimizers and G's average must be equal. The noise
    stream (z, y', dropout masks) restarts at the split, as at every epoch."""

    def train(model, part):
        for real, labels in part:
            model.train_step(real, labels)

    straight = make(seed=1)
    straight.reseed_noise(10)
    train(straight, batches[:split])
    straight.reseed_noise(11)
    train(straight, batches[split:])
    first = make(seed=1)
    first.reseed_noise(10)
    train(first, batches[:split])
    resumed = make(seed=2)
    resumed.load_state_dict(first.state_dict())
    resumed.reseed_noise(11)
    train(resumed, batches[split:])
    a, b = straight.state_dict(), resumed.state_dict()
    for part in ("generator", "discriminator", "g_optimizer", "d_optimizer"):
        for key, value in a[part].items():
            np.testing.assert_array_equal(value, b[part][key], err_msg=f"{part} {key}")
    for key, value in a["generator_ema"]["weights"].items():
        np.testing.assert_array_equal(value, b["generator_ema"]["weights"][key], err_msg=key)


def run_twice_and_resume(main, flags, tmp_path) -> dict:
    """Through the command line ``main``: a run of 2 epochs, and a run of 1 resumed to 2;
    both networks must end bit-identical. Returns the straight run's checkpoint; the two
    run folders are ``tmp_path / "straight"`` and ``tmp_path / "resumed"``."""
    from minigan.checkpoint import load_checkpoint

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main([*flags, "--epochs", "2", "--out", str(straight)]) == 0
    assert main([*flags, "--epochs", "1", "--out", str(resumed)]) == 0
    assert main(["--resume", "--epochs", "2", "--out", str(resumed)]) == 0
    one, two = (load_checkpoint(p / "checkpoint.npz") for p in (straight, resumed))
    for part in ("generator", "discriminator"):
        for key, value in one["gan"][part].items():
            np.testing.assert_array_equal(two["gan"][part][key], value, err_msg=key)
    return one


def assert_samples_come_from_the_average_in_eval_mode(model, real, labels, z) -> None:
    """After 3 steps, ``model.generate`` runs G's average on BatchNorm's running
    statistics: a sample depends on its own z alone, drawing changes no state nor leaves
    either G in evaluation mode, and the average's buffers are the live G's."""
    for _ in range(3):
        model.train_step(real, labels)
    averaged = model.generator_ema.averaged
    state = {k: v.copy() for k, v in averaged.state_dict().items()}
    both = model.generate(z, labels)
    np.testing.assert_array_equal(model.generate(z[:2], labels[:2]), both[:2])
    for key, value in averaged.state_dict().items():
        np.testing.assert_array_equal(value, state[key], err_msg=key)
    assert averaged.training and model.generator.training
    running = dict(averaged.named_buffers())  # copied from the live G at every update
    for name, value in model.generator.named_buffers():
        np.testing.assert_array_equal(running[name], value, err_msg=name)


def assert_projection_d_matches_torch(D, x, labels, rng, atol: float = 0.0) -> None:
    """A projection discriminator, psi(phi(x)) + embed(y) . phi(x), against its torch
    twin: scores, dL/dx and every parameter's gradient for a random dL/ds; ``atol``
    for the parameters' gradients (0: relative only)."""
    import torch

    from minigan.testing.pytorch import to_torch

    phi_t, psi_t, embed_t = to_torch(D.features), to_torch(D.head), to_torch(D.embed)
    R = rng.standard_normal((len(x), 1))
    x_t = torch.from_numpy(x).requires_grad_(True)
    f_t = phi_t(x_t)
    s_t = psi_t(f_t) + (embed_t(torch.from_numpy(labels)) * f_t).sum(dim=1, keepdim=True)
    (s_t * torch.from_numpy(R)).sum().backward()
    s = D(x, labels)
    dx = D.backward(R)
    np.testing.assert_allclose(s, s_t.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(D.embed.weight.grad, embed_t.weight.grad.numpy(), rtol=1e-10)
    pairs = [*zip(D.features.parameters(), phi_t.parameters()), (D.head.weight, psi_t.weight)]
    for p, p_t in pairs:
        np.testing.assert_allclose(p.grad, p_t.grad.numpy(), rtol=1e-10, atol=atol)


def sample_with_image_shape(main, run, shape, tmp_path, capsys) -> tuple[Path, str]:
    """``run``'s checkpoint saved again with ``image_shape`` = ``shape`` (as a damaged or
    edited file would hold it), then ``--sample 3`` from it through the command line
    ``main``, which must fail: (the bad checkpoint's path, its one error line)."""
    from minigan.checkpoint import load_checkpoint, save_checkpoint

    state = load_checkpoint(run / "checkpoint.npz")
    state["image_shape"] = shape
    bad = tmp_path / "bad.npz"
    save_checkpoint(bad, state)
    capsys.readouterr()
    args = ["--sample", "3", "--checkpoint", str(bad), "--output", str(tmp_path / "p.npy")]
    assert main(args) == 1
    return bad, error_line(capsys)


def train_reading_nothing(model, backend: str, fake_cupy, steps: int) -> None:
    """A small conv-family model's step, then ``steps`` more on one batch of 4 random
    12x12 images: on the stand-in (``backend`` "cupy") not one of them reads from the
    device or uploads to it."""
    from minigan.backend import get_backend

    images = np.random.default_rng(3).uniform(-1, 1, (4, 144)).astype(np.float32)
    batch = get_backend(backend).asarray(images)
    model.train_step(batch)
    fake_cupy.reset()
    for _ in range(steps):
        model.train_step(batch)
    if backend == "cupy":
        assert fake_cupy.reads == [] and fake_cupy.uploads == []


def parameter_gradient_errors(module, loss, skip=()) -> dict[str, float]:
    """Each parameter's .grad (as the step left it) against the central difference of
    ``loss()`` in that parameter, as relative errors by name; ``skip`` names left out."""
    from minigan.gradcheck import numerical_gradient, relative_error

    analytic = {name: p.grad.copy() for name, p in module.named_parameters()}
    return {
        name: relative_error(analytic[name], numerical_gradient(loss, p.data))
        for name, p in module.named_parameters()
        if name not in skip
    }


def labelled_conv_batch(rng):
    """The labelled models' tiny convolutional batch: 4 real 4x4 images with labels
    [1, 1, 3, 9], and 4 noise vectors of 3 with the labels asked of G, [3, 1, 1, 0]."""
    real = rng.uniform(-1, 1, (4, 16))
    return real, np.array([1, 1, 3, 9]), rng.standard_normal((4, 3)), np.array([3, 1, 1, 0])


def assert_biases_before_batchnorm_do_nothing(G, loss, names) -> None:
    """A bias right before a BatchNorm has no effect (the mean is subtracted): its
    gradient is 0 both ways, up to rounding, where a relative error means nothing."""
    from minigan.gradcheck import numerical_gradient

    for name in names:
        p = dict(G.named_parameters())[name]
        assert np.abs(p.grad).max() < 1e-12
        assert np.abs(numerical_gradient(loss, p.data)).max() < 1e-9
