"""The workshop's threads and fast twins (minigan.threads) and the hook they enter by.

The promise: importing minigan installs no twin (every layer runs its formula); each
twin gives its formula's numbers bit for bit, with any number of threads, for both
dtypes and odd shapes; CuPy arrays always run the formula; every slice of split work
runs exactly once, a failing slice's error reaches the caller after every slice has
stopped, and one thread means one plain call.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from minigan import backend, nn
from minigan import threads as workshop
from minigan.backend import fast_kernel, install_fast_kernel, remove_fast_kernels
from minigan.models import DCGAN, GAN, DCGANConfig, GANConfig
from minigan.optim import Adam, adam_update
from minigan.threads import (
    TWINS,
    blas_threads_from_environment,
    get_num_threads,
    parallel_slices,
    set_num_threads,
    threads_worth_using,
    use_formulas,
)

DTYPES = [np.float32, np.float64]
THREADS = [1, 2, 3]


@pytest.fixture
def threads(monkeypatch):
    """``set_num_threads`` for one test, splitting even tiny passes; formulas again after."""
    monkeypatch.setattr(workshop, "PARALLEL_MIN_ELEMENTS", 1)
    yield set_num_threads
    use_formulas()


def assert_same_bits(got, expected, where=""):
    """Equal bit for bit (so -0.0 differs from 0.0), same dtype, shape and memory layout."""
    if expected is None:
        assert got is None, where
        return
    assert (got.dtype, got.shape) == (expected.dtype, expected.shape), where
    assert layout(got) == layout(expected), where
    if got.tobytes(order="A") != expected.tobytes(order="A"):
        np.testing.assert_array_equal(got, expected, err_msg=where)
        raise AssertionError(f"{where}: equal values, different bits (a signed zero?)")


def layout(a):
    """The strides of the axes longer than 1: the order of the memory (NumPy keeps it
    through elementwise operations, and it decides how later sums are ordered)."""
    return [stride for size, stride in zip(a.shape, a.strides) if size > 1]


# --- the hook -----------------------------------------------------------------------------


def test_importing_minigan_installs_no_twin_and_never_imports_the_workshop():
    code = (
        "import sys\n"
        "import minigan.nn, minigan.optim, minigan.ema, minigan.losses, minigan.gradcheck\n"
        "import minigan.models\n"
        "from minigan import backend\n"
        "assert not backend._twins, backend._twins\n"
        "assert 'minigan.threads' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_hook_sends_numpy_arrays_to_the_twin_and_back_to_the_formula_after():
    @fast_kernel
    def double(x):
        """2x, as a formula."""
        return 2 * x

    assert double.formula(np.ones(2)).tolist() == [2, 2] and double.__doc__ == "2x, as a formula."
    calls = []
    install_fast_kernel(double, lambda x: calls.append(x) or 3 * x)
    try:
        assert double(np.ones(2)).tolist() == [3, 3] and len(calls) == 1
    finally:
        remove_fast_kernels()
    assert double(np.ones(2)).tolist() == [2, 2] and len(calls) == 1


def test_only_marked_formulas_take_a_twin():
    with pytest.raises(TypeError, match="is not marked with @fast_kernel"):
        install_fast_kernel(np.add, np.subtract)


def test_set_num_threads_installs_every_twin_and_use_formulas_removes_them(threads):
    assert not backend._twins and get_num_threads() == 1
    threads(2)
    assert get_num_threads() == 2
    assert backend._twins == {kernel.formula: twin for kernel, twin in TWINS.items()}
    assert set(TWINS) == {adam_update}  # the one twin that paid (bench_kernels.py)
    use_formulas()
    assert not backend._twins and get_num_threads() == 1


def test_using_restores_the_formulas_or_the_twins_it_found(threads):
    with workshop.using(3):
        assert get_num_threads() == 3 and len(backend._twins) == len(TWINS)
    assert get_num_threads() == 1 and not backend._twins  # the formulas, as before
    threads(2)
    with pytest.raises(RuntimeError, match="inside"), workshop.using(1):
        assert get_num_threads() == 1
        raise RuntimeError("inside")
    assert get_num_threads() == 2 and len(backend._twins) == len(TWINS)


def test_cupy_arrays_always_run_the_formulas(threads, fake_cupy):
    """With every twin replaced by one that fails, a CuPy stand-in model still trains."""

    def refuse(*args, **kwargs):
        raise AssertionError("a twin got a CuPy array")

    threads(2)
    for kernel in TWINS:
        install_fast_kernel(kernel, refuse)
    gpu = backend.get_backend("cupy")
    gan = DCGAN(dataclasses.replace(DCGAN_SMALL, d_norm="batch"), seed=1, backend=gpu)
    batch = np.random.default_rng(0).uniform(-1, 1, (16, *DCGAN_SMALL.image_shape))
    gan.train_step(gpu.asarray(batch.astype(np.float32)))
    with pytest.raises(AssertionError, match="a twin got a CuPy array"):
        adam_update(*(np.zeros(3, np.float32) for _ in range(4)), 1, 0.1, (0.5, 0.9), 1e-8)


# --- the twin against its formula, bit for bit ----------------------------------------------


@pytest.mark.parametrize("size", [1, 7, 1001, (1 << 17) + 3])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("count", THREADS)
def test_adam_twin_equals_its_formula(threads, size, dtype, count):
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(size).astype(dtype) for _ in range(2)] + [
        np.zeros(size, dtype) for _ in range(2)
    ]
    formula, fast = [a.copy() for a in arrays], [a.copy() for a in arrays]
    threads(count)
    for t in range(1, 7):
        g = rng.standard_normal(size).astype(dtype)
        formula[1][...] = fast[1][...] = g
        adam_update.formula(*formula, t, 0.01, (0.5, 0.999), 1e-8)
        adam_update(*fast, t, 0.01, (0.5, 0.999), 1e-8)
    for name, a, b in zip(("p", "g", "m", "v"), fast, formula):
        assert_same_bits(a, b, name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_with_its_twin_equals_adam_as_written(threads, dtype):
    """The fast path is the formula's arithmetic in the formula's order: equal, not close."""
    r = np.random.default_rng(3)
    models = [
        nn.Sequential(nn.Linear(5, 7, rng=np.random.default_rng(0), dtype=dtype), nn.Tanh())
        for _ in range(2)
    ]
    formula, fast = (Adam(m.parameters(), lr=0.01, betas=(0.5, 0.999)) for m in models)
    for _ in range(6):
        grads = [r.standard_normal(p.shape).astype(dtype) for p in models[0].parameters()]
        for model in models:
            for p, g in zip(model.parameters(), grads):
                p.grad[...] = g
        use_formulas()
        formula.step()
        threads(1)
        fast.step()
    np.testing.assert_array_equal(formula.data, fast.data)
    assert formula.data.dtype == dtype


def test_the_adam_twin_reuses_one_work_buffer_per_array():
    p = np.zeros(5)
    assert workshop.scratch_like(p) is workshop.scratch_like(p)
    key = id(p)
    del p
    assert key not in workshop._scratch  # dropped with its array


# --- whole models: formulas against twins at 1, 2 and 3 threads -------------------------------


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


# Small networks of every kind the family uses (the DCGAN default's and the paper's, the MLP
# GAN), so that Adam's twin updates buffers of many sizes, split across the threads.
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
@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_give_bit_identical_training(threads, model, dtype):
    """Every weight, moment and running statistic after two steps: the formulas, then the
    twin of Adam's update with 1, 2 and 3 threads splitting it."""
    make = lambda: MODELS[model](dtype)
    shape = make()[1]
    batches = np.random.default_rng(0).uniform(-1, 1, (2, 16, *shape)).astype(dtype)
    use_formulas()
    expected = _trained_weights(make, batches)
    assert len(expected) > 10
    for count in THREADS:
        threads(count)
        got = _trained_weights(make, batches)
        assert got.keys() == expected.keys()
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


# --- the pool --------------------------------------------------------------------------------


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


def test_small_passes_and_other_backends_run_as_one_call(threads, monkeypatch, fake_cupy):
    threads(2)
    monkeypatch.setattr(workshop, "PARALLEL_MIN_ELEMENTS", 100)
    calls = []
    parallel_slices(calls.append, 8, elements=99, xp=np)  # too small to be worth threads
    parallel_slices(calls.append, 8, elements=10**6, xp=fake_cupy)  # the CuPy stand-in
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


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_refuses_anything_but_a_positive_integer(threads, bad):
    with pytest.raises(ValueError, match=r"threads must be an integer >= 1, got"):
        set_num_threads(bad)
    assert not backend._twins  # nothing installed


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
    monkeypatch.setattr(workshop, "numpy_uses_openblas", lambda: True)
    assert threads_worth_using() == 3
    monkeypatch.setattr(workshop, "numpy_uses_openblas", lambda: False)  # e.g. MKL: no say
    assert threads_worth_using() == 1


def test_numpy_uses_openblas_reads_numpy_s_build():
    blas = str(np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"])
    assert workshop.numpy_uses_openblas() == ("openblas" in blas.lower())


def test_the_example_sets_its_threads_and_restores_them(threads, monkeypatch):
    """--threads N installs the twins on N threads for the run (default 1: in place, one
    thread, which shares a machine best); the count is restored on the way out."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "mnist_gan.py"
    spec = importlib.util.spec_from_file_location("mnist_gan_threads", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    seen = []

    def train(args):
        seen.append((get_num_threads(), len(backend._twins)))
        return ""

    monkeypatch.setattr(example, "train", train)
    monkeypatch.setattr(example.cli, "usable_cores", lambda: 3)  # any machine allows 3 then
    assert example.main(["--threads", "3"]) == 0
    assert example.main([]) == 0  # the default: one thread
    assert seen == [(3, len(TWINS)), (1, len(TWINS))] and get_num_threads() == 1
    with pytest.raises(SystemExit):
        example.parse_args(["--threads", "0"])
