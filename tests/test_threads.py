"""Threads for NumPy's elementwise passes (minigan.backend: parallel_slices and friends).

The promise: any number of threads gives bit-identical results, every slice of the
work runs exactly once, a failing slice's error reaches the caller after every slice
has stopped, and one thread (the default) or CuPy means one plain call.
"""

from __future__ import annotations

import dataclasses
import os
import threading

import numpy as np
import pytest

from minigan import backend, nn
from minigan.backend import (
    blas_threads_from_environment,
    get_num_threads,
    parallel_elementwise,
    parallel_multiply,
    parallel_slices,
    set_num_threads,
    threads_worth_using,
)
from minigan.models import DCGAN, GAN, DCGANConfig, GANConfig


@pytest.fixture
def threads(monkeypatch):
    """Set the thread count for one test (restored after), and split even tiny passes."""
    monkeypatch.setattr(backend, "_threads", backend._threads)
    monkeypatch.setattr(backend, "PARALLEL_MIN_ELEMENTS", 1)
    return set_num_threads


def test_one_thread_is_the_default_and_runs_inline():
    assert get_num_threads() == 1
    calls = []
    parallel_slices(lambda part: calls.append((part, threading.get_ident())), 10, 10**9, np)
    assert calls == [(slice(0, 10), threading.get_ident())]


@pytest.mark.parametrize("count, length", [(2, 10), (3, 10), (3, 2), (4, 7)])
def test_the_slices_cover_every_item_once(threads, count, length):
    threads(count)
    seen, lock, parts = np.zeros(length, int), threading.Lock(), []

    def work(part):
        with lock:
            seen[part] += 1
            parts.append((part.stop - part.start, threading.get_ident()))

    parallel_slices(work, length, elements=length, xp=np)
    np.testing.assert_array_equal(seen, 1)
    sizes = sorted(size for size, _ in parts)
    assert len(parts) == min(count, length) and sizes[-1] - sizes[0] <= 1  # even slices
    assert (length // min(count, length), threading.get_ident()) in parts  # one is the caller's


def test_small_passes_and_other_backends_run_as_one_call(threads, monkeypatch):
    threads(2)
    monkeypatch.setattr(backend, "PARALLEL_MIN_ELEMENTS", 100)
    calls = []
    parallel_slices(calls.append, 8, elements=99, xp=np)  # too small to be worth threads
    parallel_slices(calls.append, 8, elements=10**6, xp=object())  # e.g. cupy
    assert calls == [slice(0, 8), slice(0, 8)]


def test_a_failing_slice_raises_after_every_slice_has_stopped(threads):
    threads(2)
    finished = []

    def work(part):
        if part.start == 0:  # the caller's slice fails at once ...
            raise ValueError("slice failed")
        threading.Event().wait(0.2)  # ... while the pool's slice still runs
        finished.append(part)

    with pytest.raises(ValueError, match="slice failed"):
        parallel_slices(work, 2, elements=2, xp=np)
    assert finished == [slice(1, 2)]  # it had finished before the error reached us


def test_a_slice_that_splits_work_again_runs_it_in_one_call(threads):
    """A slice asking for the pool it occupies would wait for itself forever."""
    threads(2)
    inner = []

    def work(part):
        parallel_slices(inner.append, 4, elements=10**6, xp=np)

    runner = threading.Thread(target=parallel_slices, args=(work, 2, 2, np), daemon=True)
    runner.start()
    runner.join(timeout=10)
    assert not runner.is_alive(), "nested parallel_slices deadlocked"
    assert inner == [slice(0, 4), slice(0, 4)]


def test_elementwise_pieces_follow_the_outermost_memory_axis(threads):
    threads(2)
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(3, 4, 2).transpose(2, 0, 1)  # axis 1 outer
    y = np.empty_like(x)
    shapes = []

    def double(x, y):
        shapes.append(x.shape)
        np.multiply(x, 2, out=y)

    parallel_elementwise(double, x, y)
    np.testing.assert_array_equal(y, 2 * x)
    assert sorted(shapes) == [(2, 1, 4), (2, 2, 4)]  # the 3 rows of axis 1, split 1 + 2


def test_elementwise_skips_axes_of_length_one(threads):
    threads(2)
    x = np.ones((1, 6, 1), np.float32)  # the longest stride is the length-1 axis 0
    shapes = []
    parallel_elementwise(lambda a: shapes.append(a.shape), x)
    assert sorted(shapes) == [(1, 3, 1), (1, 3, 1)]


def test_multiply_of_differently_laid_out_arrays(threads):
    threads(2)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 3, 5, 6))  # C order
    b = np.ascontiguousarray(rng.standard_normal((3, 5, 6, 4))).transpose(3, 0, 1, 2)  # rows
    np.testing.assert_array_equal(parallel_multiply(a, b), a * b)
    np.testing.assert_array_equal(parallel_multiply(b, a), b * a)
    assert parallel_multiply(b, a).strides == b.strides  # laid out like its first operand


def test_cupy_arrays_take_one_call(threads, fake_cupy):
    threads(2)
    x = fake_cupy.ones((64, 64, 64), dtype=fake_cupy.float32)
    calls = []
    parallel_elementwise(lambda a: calls.append(a.shape), x)
    assert calls == [(64, 64, 64)]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_refuses_anything_but_a_positive_integer(threads, bad):
    with pytest.raises(ValueError, match=r"threads must be an integer >= 1, got"):
        set_num_threads(bad)


def test_set_num_threads_takes_numpy_integers(threads):
    set_num_threads(np.int64(3))
    assert get_num_threads() == 3 and type(get_num_threads()) is int


def test_blas_threads_follow_the_environment(monkeypatch):
    for name in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert blas_threads_from_environment() == len(os.sched_getaffinity(0))  # every core
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert blas_threads_from_environment() == 5
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")  # OpenBLAS's own variable first
    assert blas_threads_from_environment() == 3
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "many")  # not a count: ignored
    assert blas_threads_from_environment() == 5


def test_threads_pay_only_when_openblas_threads_sleep(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    assert threads_worth_using() == 1  # its idle threads spin on the cores we would use
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "4")
    monkeypatch.setattr(backend, "numpy_uses_openblas", lambda: True)
    assert threads_worth_using() == 3
    monkeypatch.setattr(backend, "numpy_uses_openblas", lambda: False)  # e.g. MKL: no say
    assert threads_worth_using() == 1


def test_numpy_uses_openblas_reads_numpy_s_build():
    blas = str(np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"])
    assert backend.numpy_uses_openblas() == ("openblas" in blas.lower())


def _trained_weights(make, batches):
    gan, _ = make()
    for batch in batches:
        gan.train_step(batch)
    return {name: np.array(array) for name, array in flat_state(gan.state_dict())}


def flat_state(state, prefix=""):
    """(dotted name, array) for every array in a nested state_dict."""
    for key, value in state.items():
        if isinstance(value, dict):
            yield from flat_state(value, f"{prefix}{key}.")
        elif isinstance(value, np.ndarray):
            yield prefix + key, value


# Batches of 16: BatchNorm1d's rows (16 values each, strided) are long enough for NumPy's
# summation order to depend on how they are split (as it did, until they were kept whole).
DCGAN_SMALL = DCGANConfig(batch_size=16, base_channels=8, d_fc_width=16, g_fc_width=16, ema=0.9)
DCGAN_PAPER = dataclasses.replace(
    DCGAN_SMALL, d_norm="batch", g_full_res_channels=0, d_fc_width=0, g_fc_width=0
)
MODELS = {  # (model, the shape of one image)
    "dcgan": lambda dtype: (DCGAN(DCGAN_SMALL, seed=1, dtype=dtype), DCGAN_SMALL.image_shape),
    "dcgan_paper": lambda dtype: (DCGAN(DCGAN_PAPER, seed=1, dtype=dtype), DCGAN_PAPER.image_shape),
    "gan": lambda dtype: (GAN(GANConfig(batch_size=16, hidden=32), seed=1, dtype=dtype), (784,)),
}


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threads_give_bit_identical_training(threads, model, dtype):
    """Every weight, moment and running statistic after two steps, with 1, 2 and 3 threads
    splitting every pass (im2col, col2im, BatchNorm, the activations, Adam)."""
    make = lambda: MODELS[model](dtype)
    shape = make()[1]
    batches = np.random.default_rng(0).uniform(-1, 1, (2, 16, *shape)).astype(dtype)
    threads(1)
    expected = _trained_weights(make, batches)
    assert len(expected) > 10
    for count in (2, 3):
        threads(count)
        got = _trained_weights(make, batches)
        assert got.keys() == expected.keys()
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


@pytest.mark.parametrize(
    "layer, shape",
    [
        (nn.BatchNorm1d, (64, 3)),  # strided rows (a transposed view), long ones
        (nn.BatchNorm1d, (1000, 4)),
        (nn.BatchNorm2d, (8, 5, 6, 6)),
    ],
)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_is_bit_identical_with_threads(threads, layer, shape, training, dtype):
    rng = np.random.default_rng(0)
    x, g = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    running_mean = rng.standard_normal(shape[1])
    results = []
    for count in (1, 2, 3):
        threads(count)
        bn = layer(shape[1], dtype=dtype)
        bn.running_mean[:], bn.running_var[:] = running_mean, 1.5
        bn.weight.data[:], bn.bias.data[:] = 0.5, 0.25
        bn.train(training)
        y, dx = bn.forward(x), bn.backward(g)
        results.append([y, dx, bn.weight.grad, bn.bias.grad, bn.running_mean, bn.running_var])
    for got in results[1:]:
        for a, b in zip(got, results[0]):
            np.testing.assert_array_equal(a, b)


def test_the_example_sets_its_threads_and_restores_them(threads, monkeypatch):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "mnist_gan.py"
    spec = importlib.util.spec_from_file_location("mnist_gan_threads", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    seen = []
    monkeypatch.setattr(example, "train", lambda args: seen.append(get_num_threads()) or "")
    monkeypatch.setattr(example, "threads_worth_using", lambda: 2)
    assert example.main(["--threads", "3"]) == 0
    assert example.main([]) == 0  # the default: threads_worth_using()
    assert seen == [3, 2] and get_num_threads() == 1
    with pytest.raises(SystemExit):
        example.parse_args(["--threads", "0"])
