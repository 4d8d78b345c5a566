"""Threads for NumPy's elementwise passes (minigan.backend: parallel_slices and friends).

The promise: any number of threads gives bit-identical results, every slice of the
work runs exactly once, a failing slice's error reaches the caller after every slice
has stopped, and one thread (the default) or CuPy means one plain call.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from minigan import backend, nn
from minigan.backend import (
    blas_threads_from_environment,
    get_num_threads,
    parallel_elementwise,
    parallel_slices,
    set_num_threads,
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
        if part.start > 0:  # the pool thread's slice fails ...
            raise ValueError("slice failed")
        threading.Event().wait(0.05)  # ... while the caller's slice still runs
        finished.append(part)

    with pytest.raises(ValueError, match="slice failed"):
        parallel_slices(work, 2, elements=2, xp=np)
    assert finished == [slice(0, 1)]


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


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_refuses_anything_but_a_positive_integer(threads, bad):
    with pytest.raises(ValueError, match=r"threads must be an integer >= 1, got"):
        set_num_threads(bad)


def test_blas_threads_follow_the_environment(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert blas_threads_from_environment() == 3
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    assert blas_threads_from_environment() == 5
    monkeypatch.setenv("OMP_NUM_THREADS", "many")  # not a count: ignored
    assert blas_threads_from_environment() >= 1


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


DCGAN_SMALL = DCGANConfig(batch_size=6, base_channels=8, d_fc_width=16, g_fc_width=16, ema=0.9)
DCGAN_PAPER = dataclasses.replace(
    DCGAN_SMALL, d_norm="batch", g_full_res_channels=0, d_fc_width=0, g_fc_width=0
)
MODELS = {  # (model, the shape of one image)
    "dcgan": lambda dtype: (DCGAN(DCGAN_SMALL, seed=1, dtype=dtype), DCGAN_SMALL.image_shape),
    "dcgan_paper": lambda dtype: (DCGAN(DCGAN_PAPER, seed=1, dtype=dtype), DCGAN_PAPER.image_shape),
    "gan": lambda dtype: (GAN(GANConfig(batch_size=6, hidden=32), seed=1, dtype=dtype), (784,)),
}


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threads_give_bit_identical_training(threads, model, dtype):
    """Every weight, moment and running statistic after two steps, with 1, 2 and 3 threads
    splitting every pass (im2col, col2im, BatchNorm, the activations, Adam)."""
    make = lambda: MODELS[model](dtype)
    shape = make()[1]
    batches = np.random.default_rng(0).uniform(-1, 1, (2, 6, *shape)).astype(dtype)
    threads(1)
    expected = _trained_weights(make, batches)
    assert len(expected) > 10
    for count in (2, 3):
        threads(count)
        got = _trained_weights(make, batches)
        assert got.keys() == expected.keys()
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_batchnorm_eval_mode_is_bit_identical_with_threads(threads):
    bn = nn.BatchNorm2d(5, dtype=np.float64)
    bn.running_mean[:] = np.arange(5)
    bn.running_var[:] = np.arange(1, 6)
    bn.eval()
    x = np.random.default_rng(0).standard_normal((3, 5, 4, 4))
    g = np.random.default_rng(1).standard_normal(x.shape)
    threads(1)
    y1, dx1 = bn.forward(x), bn.backward(g)
    threads(2)
    y2, dx2 = bn.forward(x), bn.backward(g)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(dx1, dx2)
