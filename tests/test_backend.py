import sys
import types

import numpy as np
import pytest

from minigan.backend import (
    Backend,
    BackendUnavailableError,
    backend_of,
    get_array_module,
    get_backend,
    to_host,
)


def test_numpy_backend_round_trips_arrays():
    be = get_backend("numpy")
    x = be.asarray([[1.0, 2.0]], dtype="float32")
    assert be.xp is np and x.dtype == np.float32
    host = to_host(x)
    assert isinstance(host, np.ndarray)
    np.testing.assert_array_equal(host, [[1.0, 2.0]])
    be.synchronize()  # a no-op, but callable


def test_get_array_module_finds_numpy_for_numpy_arrays():
    assert get_array_module(np.zeros(3), np.ones(2)) is np
    assert backend_of(np.zeros(3)) == get_backend("numpy")


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"unknown backend 'torch'; valid backends are 'numpy', 'cupy'"
    ):
        get_backend("torch")


def test_cupy_without_cupy_installed_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail
    with pytest.raises(
        BackendUnavailableError, match=r"needs CuPy.*pip install \"minigan\[cuda12\]\""
    ):
        get_backend("cupy")


def test_get_backend_passes_a_backend_through():
    be = get_backend("numpy")
    assert get_backend(be) is be
    assert isinstance(be, Backend) and repr(be) == "Backend('numpy')"


def test_numpy_rng_is_seeded():
    be = get_backend("numpy")
    a = be.default_rng(7).standard_normal(5)
    b = be.default_rng(7).standard_normal(5)
    np.testing.assert_array_equal(a, b)


def test_to_host_copy_shares_no_memory():
    x = np.arange(4.0)
    y = to_host(x)
    y[0] = 99
    assert x[0] == 0


@pytest.mark.gpu
def test_cupy_backend_round_trips_and_coexists_with_numpy():
    import cupy

    be = get_backend("cupy")
    x = be.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert isinstance(x, cupy.ndarray) and get_array_module(x) is cupy
    assert get_array_module(np.zeros(2)) is np
    np.testing.assert_array_equal(to_host(x), np.arange(6).reshape(2, 3))
    assert get_backend("numpy").asarray(x).__class__ is np.ndarray
    be.synchronize()


def test_cupy_without_a_gpu_says_so(monkeypatch):
    fake_cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    with pytest.raises(
        BackendUnavailableError, match=r"CuPy is installed but finds no usable CUDA GPU"
    ):
        get_backend("cupy")
