"""A float32 GAN stays float32: no float64 array anywhere in a training step.

NumPy upcasts silently: a float64 constant, a ``np.float64`` scalar or a float64 default
(``np.ones(n)``) in one line turns the arrays after it into float64, which doubles their
memory traffic and the time of every elementwise pass, while all results still look right.

How the step is watched: ``Float64Detector`` is an ndarray subclass. The real batch, the
noise (``GAN.sample_noise`` is wrapped) and every array the networks and optimizers hold
(parameters, gradients, Adam's flat buffers) are viewed as it, sharing their memory, so
every array the step computes from them is one too. It records

- each array of a floating dtype other than float32 that comes into being
  (``__array_finalize__``: results of ufuncs and of functions such as ``np.where``, views,
  ``astype``);
- each ufunc call with such an operand, a ``np.float64`` scalar included, so in-place
  arithmetic (``m *= np.float64(0.9)``), which computes in float64 without making a
  float64 array, is caught too;

and where it happened (the innermost minigan line). The companion tests plant such
upcasts and check the detector reports them, so a passing test means something.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import minigan
from minigan import nn
from minigan.gan import GAN, PRESETS
from minigan.optim import Adam
from minigan.threads import set_num_threads, use_formulas

BATCH = 8
MINIGAN_DIR = str(Path(minigan.__file__).parent)


def _is_wide_float(dtype: Any) -> bool:
    """A floating (or complex) dtype other than float32."""
    dtype = np.dtype(dtype)
    return dtype.kind in "fc" and dtype != np.float32


def _minigan_line() -> str:
    """'minigan/losses.py:75 (forward)' for the innermost minigan frame calling us."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(MINIGAN_DIR):
            relative = Path(filename).relative_to(Path(MINIGAN_DIR).parent)
            return f"{relative}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back
    return "outside minigan"


def _plain(x: Any) -> Any:
    return x.view(np.ndarray) if isinstance(x, Float64Detector) else x


def _watched(x: Any) -> Any:
    """Results come back as detectors (so the watch spreads); scalars are checked here."""
    if isinstance(x, np.ndarray) and not isinstance(x, Float64Detector):
        return x.view(Float64Detector)
    if isinstance(x, tuple):
        return tuple(_watched(item) for item in x)
    if isinstance(x, np.generic) and _is_wide_float(x.dtype):
        Float64Detector.found.append(f"{x.dtype} scalar result at {_minigan_line()}")
    return x


class Float64Detector(np.ndarray):
    """An ndarray that logs every non-float32 floating array or operand it leads to."""

    # What was seen, and the ufunc calls per minigan file (proof that it watched);
    # watched_steps resets both.
    found: ClassVar[list[str]] = []
    ufunc_calls: ClassVar[dict[str, int]] = {}

    def __array_finalize__(self, obj: Any) -> None:
        if _is_wide_float(self.dtype):
            Float64Detector.found.append(
                f"{self.dtype} array {self.shape} made at {_minigan_line()}"
            )

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        where = _minigan_line()
        filename = where.split(":")[0]
        Float64Detector.ufunc_calls[filename] = Float64Detector.ufunc_calls.get(filename, 0) + 1
        for x in inputs:
            dtype = getattr(x, "dtype", None)
            if dtype is not None and _is_wide_float(dtype):
                Float64Detector.found.append(
                    f"{dtype} operand of {ufunc.__name__}.{method} at {where}"
                )
        inputs = tuple(_plain(x) for x in inputs)
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(_plain(x) for x in out)
        result = getattr(ufunc, method)(*inputs, **kwargs)
        if out is not None:  # in place: hand back the caller's own arrays
            return out[0] if len(out) == 1 else out
        return _watched(result)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return _watched(super().__array_function__(func, types, args, kwargs))


def watch(gan: GAN) -> None:
    """View every array of ``gan``'s networks and optimizers, and its noise, as detectors."""
    for model in (gan.generator, gan.discriminator):
        for param in model.parameters():
            param.data = param.data.view(Float64Detector)
            param.grad = param.grad.view(Float64Detector)
    for optimizer in (gan.g_optimizer, gan.d_optimizer):
        for name, value in vars(optimizer).items():
            if isinstance(value, np.ndarray):  # data, grad, m, v, scratch: flat buffers
                setattr(optimizer, name, value.view(Float64Detector))
        # The parameters now hold detector views of the same memory: tell the optimizer,
        # whose step() checks that each parameter still holds the views it handed out.
        optimizer.views = [(p.data, p.grad) for p in optimizer.params]
    sample_noise = gan.sample_noise
    gan.sample_noise = lambda n: sample_noise(n).view(Float64Detector)


def watched_steps(gan: GAN, steps: int = 2) -> list[str]:
    """Run ``steps`` train steps of ``gan`` under watch; return what the detector found."""
    Float64Detector.found = []
    Float64Detector.ufunc_calls = {}
    watch(gan)
    real = np.random.default_rng(0).uniform(-1, 1, (BATCH, gan.config.image_size))
    real = real.astype(np.float32).view(Float64Detector)
    for _ in range(steps):
        stats = gan.train_step(real)
    for name, value in stats.items():
        if _is_wide_float(value.dtype):
            Float64Detector.found.append(f"train_step's {name} is {value.dtype}")
    return Float64Detector.found


@pytest.fixture(autouse=True, params=["formulas", "twins"])
def kernels(request):
    """Every test twice: with the formulas (the state after ``import minigan``) and with
    the workshop's twins installed (``minigan.threads``, as the example script runs)."""
    use_formulas()
    if request.param == "twins":
        set_num_threads(1)
    yield request.param
    use_formulas()


@pytest.mark.parametrize("generator_loss", ["non_saturating", "saturating"])
@pytest.mark.parametrize("preset", ["classic", "default"])
def test_float32_train_step_makes_no_float64_array(preset, generator_loss, kernels):
    config = PRESETS[preset]
    config = type(config)(**{**config.to_dict(), "generator_loss": generator_loss})
    gan = GAN(config, seed=0, dtype=np.float32)

    found = watched_steps(gan)

    report = "\n".join(f"{found.count(item)}x {item}" for item in dict.fromkeys(found))
    assert not found, f"float64 crept into a float32 step:\n{report}"
    # The watch reached every part of the step (else the test would pass vacuously).
    watched = Float64Detector.ufunc_calls
    adam = "optim.py" if kernels == "formulas" else "threads.py"  # where Adam's update runs
    for part in ("linear.py", "activations.py", "losses.py", adam, "gan.py"):
        assert any(name.endswith(part) for name in watched), (
            f"the detector saw no ufunc call from {part}; it saw {watched}"
        )
    for param in gan.generator.parameters() + gan.discriminator.parameters():
        assert param.data.dtype == np.float32 and param.grad.dtype == np.float32


class UpcastingScale(nn.Module):
    """A deliberate bug: scales by a float64 array, then casts back to float32."""

    def __init__(self, size: int):
        self.scale = np.ones(size)  # float64: np.ones' default dtype

    def forward(self, x: Any) -> Any:
        return (x * self.scale).astype(x.dtype)

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        return (grad_out * self.scale).astype(grad_out.dtype)


def test_detector_catches_a_layer_that_upcasts_to_float64():
    gan = GAN(PRESETS["classic"], seed=0)
    gan.generator.layers.insert(2, UpcastingScale(gan.config.hidden))

    found = watched_steps(gan, steps=1)

    assert found, "the detector missed a float64 multiply inside the generator"
    assert any("float64 array" in item for item in found), found


def test_detector_catches_float64_arithmetic_in_place_in_the_optimizer(monkeypatch):
    # m *= np.float64(b1) makes no new array but computes in float64: the operand check.
    step = Adam.step

    def upcasting_step(self):
        self.m *= np.float64(1.0)
        step(self)

    monkeypatch.setattr(Adam, "step", upcasting_step)
    gan = GAN(PRESETS["default"], seed=0)

    found = watched_steps(gan, steps=1)

    assert any("float64 operand of multiply" in item for item in found), found
