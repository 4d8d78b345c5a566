"""The CuPy stand-in itself: strict where it must be, faithful where it may not differ.

If the stand-in let an implicit transfer through, every CuPy-path test would pass
for the wrong reason; these tests show that each strict rule does fail.
"""

from __future__ import annotations

import operator
import re

import numpy as np
import pytest
from fake_cupy import RECORD, ImplicitTransferError

from minigan.backend import get_backend, to_host


@pytest.fixture
def x(fake_cupy):
    return fake_cupy.asarray(np.array([[1.0, -2.0], [3.0, 4.0]], dtype=np.float32))


IMPLICIT = {
    "float": (lambda x: float(x[0, 0]), r"float\(\)"),
    "int": (lambda x: int(x[0, 0]), r"int\(\)"),
    "bool (an if)": (lambda x: 1 if x[0, 0] > 0 else 0, r"bool\(\)"),
    "index": (lambda x: operator.index(x[0, 0].astype(np.int64)), r"use as a Python index"),
    "complex": (lambda x: complex(x[0, 0]), r"complex\(\)"),
    "numpy.asarray": (lambda x: np.asarray(x), r"numpy.asarray\(\)"),
    "item": (lambda x: x[0, 0].item(), r"\.item\(\)"),
    "tolist": (lambda x: x.tolist(), r"\.tolist\(\)"),
    "iteration": (lambda x: [row for row in x], r"iteration"),
    "repr": (lambda x: repr(x), r"repr\(\)"),
    "str": (lambda x: str(x), r"str\(\)"),
    "format": (lambda x: f"{x[0, 0]:.3f}", r"format\(\)"),
    "numpy ufunc": (lambda x: np.exp(x), r"numpy.exp called on a device array"),
    "numpy function": (lambda x: np.concatenate([x, x]), r"numpy.concatenate called on"),
    "numpy reduction": (lambda x: np.mean(x), r"numpy.mean called on a device array"),
}


@pytest.mark.parametrize("case", IMPLICIT)
def test_every_implicit_transfer_raises_naming_the_callers_line(case, x):
    action, what = IMPLICIT[case]
    line = action.__code__.co_firstlineno
    with pytest.raises(ImplicitTransferError, match=rf"^tests/test_fake_cupy.py:{line}: {what}"):
        action(x)


MIXING = {
    "device + host": lambda x: x + np.ones(2, np.float32),
    "host + device": lambda x: np.ones(2, np.float32) + x,
    "in place": lambda x: x.__iadd__(np.ones(2, np.float32)),
    "a function": lambda x: get_backend("cupy").xp.maximum(x, np.zeros(2, np.float32)),
    "a list of arrays": lambda x: get_backend("cupy").xp.concatenate([x, np.ones((1, 2))]),
    "assignment": lambda x: x.__setitem__(Ellipsis, np.zeros((2, 2), np.float32)),
}


@pytest.mark.parametrize("case", MIXING)
def test_mixing_a_device_array_with_a_host_array_is_a_type_error(case, x):
    line = MIXING[case].__code__.co_firstlineno
    with pytest.raises(TypeError, match=rf"^tests/test_fake_cupy.py:{line}: .*host numpy"):
        MIXING[case](x)


def test_scalars_mix_with_device_arrays_and_results_stay_on_the_device(fake_cupy, x):
    host = np.array([[1.0, -2.0], [3.0, 4.0]], dtype=np.float32)
    for got, expected in [
        (x * 2.0, host * 2.0),
        (np.float32(2) * x, np.float32(2) * host),
        (np.float32(2) < x, np.float32(2) < host),
        (1 / (1 + x), 1 / (1 + host)),
        (x.sum(axis=0, keepdims=True), host.sum(axis=0, keepdims=True)),
        (x.mean(), host.mean()),
        (x[fake_cupy.asarray([1, 0])], host[[1, 0]]),
        (x @ x.T, host @ host.T),
    ]:
        assert isinstance(got, fake_cupy.ndarray)
        np.testing.assert_array_equal(got.get(), expected)
        assert got.get().dtype == np.asarray(expected).dtype


def test_only_get_and_asnumpy_transfer_and_each_is_counted(fake_cupy, x):
    host = x.get()
    assert isinstance(host, np.ndarray) and host[1, 1] == 4
    host[0, 0] = 99  # a copy: the device array is untouched
    assert fake_cupy.asnumpy(x)[0, 0] == 1
    to_host(x)
    assert len(fake_cupy.reads) == 3
    # Each read names who asked (through the backend: the code that asked the backend).
    assert re.match(r"tests/test_fake_cupy.py:\d+ \(test_only_get", fake_cupy.reads[-1])
    fake_cupy.asnumpy(host)  # already on the host: no transfer
    assert len(fake_cupy.reads) == 3


def test_uploads_are_counted_and_share_no_memory_with_the_host(fake_cupy):
    host = np.zeros(3, np.float32)
    device = fake_cupy.asarray(host)
    host[0] = 5
    assert device.get()[0] == 0
    assert fake_cupy.asarray(device) is device  # already there: no copy, no upload
    device[np.array([0])]  # CuPy copies a host index array to the device
    assert len(fake_cupy.uploads) == 2


def test_views_share_memory_as_on_the_device(fake_cupy):
    flat = fake_cupy.zeros(6, dtype=np.float32)
    view = flat[2:6].reshape(2, 2)
    view[...] = 1
    view += view
    np.testing.assert_array_equal(flat.get(), [0, 0, 2, 2, 2, 2])
    out = fake_cupy.empty(6, dtype=np.float32)
    assert fake_cupy.multiply(flat, 2, out=out) is out


def test_the_random_stream_is_numpys_and_has_only_cupys_methods(fake_cupy):
    rng = fake_cupy.random.default_rng(3)
    got = rng.standard_normal((2, 3), dtype=np.float32)
    expected = np.random.default_rng(3).standard_normal((2, 3), dtype=np.float32)
    assert isinstance(got, fake_cupy.ndarray)
    np.testing.assert_array_equal(got.get(), expected)
    for missing in ("normal", "permutation", "choice", "shuffle"):
        with pytest.raises(AttributeError, match=rf"Generator has no method '{missing}'"):
            getattr(rng, missing)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'loc'"):
        rng.standard_normal(3, loc=0.0)


def test_unknown_module_names_are_refused(fake_cupy):
    with pytest.raises(AttributeError, match=r"has no cupy.errstate: nothing in minigan used it"):
        fake_cupy.errstate  # noqa: B018 - the attribute read is the test
    with pytest.raises(AttributeError, match=r"has no cupy.random.permutation"):
        fake_cupy.random.permutation  # noqa: B018


def test_names_and_keywords_are_recorded(fake_cupy, x):
    fake_cupy.zeros_like(x, dtype=np.float64)
    x.astype(np.float64, copy=False)
    assert (1, frozenset({"dtype"})) in RECORD["zeros_like"]
    assert (1, frozenset({"copy"})) in RECORD["ndarray.astype"]
    RECORD.pop("ndarray.shape", None)
    x.shape  # noqa: B018 - properties are recorded when read
    assert "ndarray.shape" in RECORD


def test_a_tolerated_implicit_read_is_allowed_and_counted(fake_cupy, x):
    def known_finding(array):
        return float(array[0, 0])

    with fake_cupy.tolerate("tests/test_fake_cupy.py", "known_finding"):
        assert known_finding(x) == 1.0
        with pytest.raises(ImplicitTransferError):
            float(x[0, 0])  # only that function is tolerated
    assert len(fake_cupy.reads) == 1 and "tolerated" in fake_cupy.reads[0]
    with pytest.raises(ImplicitTransferError):
        known_finding(x)
