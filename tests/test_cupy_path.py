"""The CuPy path on a machine without a GPU, through the strict stand-in (fake_cupy).

- every scenario of tests/cupy_scenarios.py (layers, losses, optimizers, train_step
  of every preset, checkpoints, batches, the metrics, examples/mnist_gan.py) gives
  the NumPy backend's results bit for bit;
- a training step reads nothing back from the device, and an epoch reads exactly
  what examples/mnist_gan.py documents;
- deliberate mutations of the library (a hidden sync, NumPy on a device array, a
  random-generator call CuPy lacks) fail here, though the NumPy suite passes them.
"""

from __future__ import annotations

import ast
import collections
import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cupy_scenarios import (
    GAN_CONFIGS,
    SCENARIOS,
    SMALL_RUN,
    TRAINERS,
    gan_data,
    load_example,
    small_example_world,
    take_step,
)
from fake_cupy import ImplicitTransferError

import minigan.nn.activations
from minigan import nn
from minigan.backend import get_array_module, get_backend
from minigan.checkpoint import load_checkpoint
from minigan.data import BatchIterator
from minigan.gan import GAN
from minigan.losses import CrossEntropyLoss


def assert_identical(got: Any, expected: Any, where: str = "") -> None:
    """Equal bit for bit: same keys, dtypes, shapes and bytes (so -0.0 differs from 0.0)."""
    if isinstance(expected, dict):
        assert got.keys() == expected.keys(), where
        for key in expected:
            assert_identical(got[key], expected[key], f"{where}/{key}")
    elif isinstance(expected, (np.ndarray, np.generic)):
        assert isinstance(got, (np.ndarray, np.generic)), f"{where}: {type(got)}"
        assert (got.dtype, got.shape) == (expected.dtype, expected.shape), where
        if got.tobytes() != expected.tobytes():
            np.testing.assert_array_equal(got, expected, err_msg=where)
            raise AssertionError(f"{where}: equal values, different bits (a signed zero?)")
    else:
        assert got == expected, where


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_cupy_path_gives_the_numpy_results_bit_for_bit(name, fake_cupy, tmp_path):
    expected = SCENARIOS[name]("numpy", tmp_path)
    assert fake_cupy.uploads == [], "the NumPy run used the device"
    got = SCENARIOS[name]("cupy", tmp_path)
    assert fake_cupy.uploads, "the CuPy run never put anything on the device"
    assert_identical(got, expected, name)


def test_get_backend_finds_the_stand_in_through_import_cupy(fake_cupy):
    backend = get_backend("cupy")
    assert backend.xp is fake_cupy and backend.name == "cupy"
    x = backend.asarray(np.ones((2, 3), np.float32))
    assert isinstance(x, fake_cupy.ndarray) and get_array_module(x) is fake_cupy
    backend.synchronize()


# --- no hidden syncs ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_a_training_step_reads_nothing_back_from_the_device(name, fake_cupy):
    build, data = TRAINERS[name]
    gan, batch = build("cupy"), data("cupy")
    fake_cupy.reset()
    take_step(gan, batch)  # the first step may upload its constant targets, once
    assert fake_cupy.reads == []
    fake_cupy.reset()
    for _ in range(4):
        figures = take_step(gan, batch)
    assert fake_cupy.reads == [] and fake_cupy.uploads == []
    assert all(isinstance(v, fake_cupy.ndarray) for v in figures.values()), figures.keys()


def functions(entries: list[str]) -> collections.Counter:
    """How many transfers each function asked for ("file:line (function) ...")."""
    return collections.Counter(re.search(r"\((\S+)\)", e).group(1) for e in entries)


def test_an_epoch_reads_the_figures_once_per_log_window(fake_cupy):
    example = load_example()
    gan = GAN(GAN_CONFIGS["default"], "cupy", seed=0)
    loader = BatchIterator(gan_data("numpy", 60), batch_size=10, backend="cupy")  # 6 steps
    fake_cupy.reset()
    rows = example.train_epoch(gan, loader, 0, 1, log_every=4)  # windows: steps 1-4, 5-6
    assert [row["epoch"] for row in rows] == [4 / 6, 1.0]
    assert functions(fake_cupy.reads) == {"train_epoch": 2}, fake_cupy.reads
    # The epoch's order goes up once; D's targets are made on the device.
    assert functions(fake_cupy.uploads) == {"__iter__": 1}


def test_a_whole_training_run_reads_only_what_the_example_documents(fake_cupy, tmp_path):
    example = load_example()
    out = tmp_path / "run"
    with small_example_world(example, out):
        args = [*SMALL_RUN, "--backend", "cupy", "--out", str(out), "--epochs", "1"]
        assert example.main(args) == 0
    state = load_checkpoint(out / "checkpoint.npz")

    def arrays_in(tree: dict) -> int:  # the averaged G's weights sit one level deeper
        return sum(arrays_in(v) if isinstance(v, dict) else isinstance(v, np.ndarray)
                   for v in tree.values())  # fmt: skip

    arrays_saved = arrays_in(state["gan"])
    assert functions(fake_cupy.reads) == {
        "train_epoch": 3,  # 300 images / 50 = 6 steps, --log-every 2
        "generate_unit_images": 1,  # the epoch's sample grid
        "state_dict": arrays_saved,  # the checkpoint: weights (G's average too), Adam moments
    }, fake_cupy.reads


# --- the one read CrossEntropyLoss documents ---------------------------------------------


def test_cross_entropy_reads_the_label_range_once_and_explicitly(fake_cupy):
    be = get_backend("cupy")
    logits = be.asarray(np.zeros((4, 3), np.float32))
    labels = be.asarray(np.array([0, 1, 2, 0]))
    fake_cupy.reset()
    CrossEntropyLoss()(logits, labels)
    assert functions(fake_cupy.reads) == {"check_label_range": 1}, fake_cupy.reads


# --- mutations the suite must catch ------------------------------------------------------


def mutant(function: Any, old: str, new: str, **extra_globals: Any) -> Any:
    """``function`` with the text ``old`` of its source replaced by ``new`` (same lines).

    Compiled under the function's own file name and line numbers, so the stand-in's
    errors name the library's real file and line.
    """
    lines, first = inspect.getsourcelines(function)
    source = textwrap.dedent("".join(lines))
    assert source.count(old) == 1, (
        f"the mutation anchor {old!r} is not (once) in {function.__qualname__} any more: "
        f"update this test to the new code"
    )
    assert new.count("\n") == old.count("\n")
    tree = ast.parse(source.replace(old, new))
    ast.increment_lineno(tree, first - 1)
    namespace = {**function.__globals__, **extra_globals}
    exec(compile(tree, inspect.getsourcefile(function), "exec"), namespace)  # noqa: S102
    return namespace[function.__name__]


def line_of(function: Any, text: str) -> str:
    """``minigan/gan.py:212``: where ``text`` is in ``function``'s file."""
    lines, first = inspect.getsourcelines(function)
    number = first + next(i for i, line in enumerate(lines) if text in line)
    path = Path(inspect.getsourcefile(function)).resolve()
    return f"{path.relative_to(Path(__file__).resolve().parent.parent).as_posix()}:{number}"


def numpy_passes_and_the_stand_in_fails(scenario: str, tmp_path: Path, error: Any, match: str):
    SCENARIOS[scenario]("numpy", tmp_path)  # the NumPy suite alone would not notice
    with pytest.raises(error, match=match):
        SCENARIOS[scenario]("cupy", tmp_path)


def test_a_float_of_the_loss_inside_train_step_is_caught(fake_cupy, monkeypatch, tmp_path):
    old = "return stats"
    new = 'float(stats["d_loss"]); return stats'  # one line: the same numbering
    monkeypatch.setattr(GAN, "train_step", mutant(GAN.train_step, old, new))
    site = re.escape(line_of(GAN.train_step, old))
    numpy_passes_and_the_stand_in_fails(
        "train_step[default]", tmp_path, ImplicitTransferError, rf"^{site}: float\(\) of a device"
    )


def test_numpy_asarray_on_a_device_array_in_a_layer_is_caught(fake_cupy, monkeypatch, tmp_path):
    old = "self.save_for_backward(x,"
    new = "self.save_for_backward(np.asarray(x),"
    monkeypatch.setattr(nn.Linear, "forward", mutant(nn.Linear.forward, old, new))
    site = re.escape(line_of(nn.Linear.forward, old))
    numpy_passes_and_the_stand_in_fails(
        "layers", tmp_path, ImplicitTransferError, rf"^{site}: numpy.asarray\(\)"
    )


def test_a_numpy_function_on_a_device_array_is_caught(fake_cupy, monkeypatch, tmp_path):
    sigmoid = minigan.nn.activations.sigmoid
    old, new = "xp.exp(-xp.abs(x))", "np.exp(-xp.abs(x))"
    monkeypatch.setattr(minigan.nn.activations, "sigmoid", mutant(sigmoid, old, new, np=np))
    site = re.escape(line_of(sigmoid, old))
    numpy_passes_and_the_stand_in_fails(
        "layers", tmp_path, ImplicitTransferError, rf"^{site}: numpy.exp called on a device"
    )


@pytest.mark.parametrize(
    "new, numpy_accepts",
    [
        # NumPy's Generator.normal has no dtype either: both backends refuse this one.
        ("normal(0.0, 1.0, (n, self.config.latent_dim), dtype=self.dtype)", False),
        # NumPy accepts this; CuPy's Generator has no normal().
        ("normal(size=(n, self.config.latent_dim)).astype(self.dtype)", True),
    ],
)
def test_random_calls_cupy_does_not_support_are_caught(
    new, numpy_accepts, fake_cupy, monkeypatch, tmp_path
):
    old = "standard_normal((n, self.config.latent_dim), dtype=self.dtype)"
    monkeypatch.setattr(GAN, "sample_noise", mutant(GAN.sample_noise, old, new))
    if not numpy_accepts:
        with pytest.raises(TypeError):
            SCENARIOS["train_step[default]"]("numpy", tmp_path)
    else:
        SCENARIOS["train_step[default]"]("numpy", tmp_path)
    with pytest.raises(AttributeError, match=r"cupy.random.Generator has no method 'normal'"):
        SCENARIOS["train_step[default]"]("cupy", tmp_path)
