"""A strict CuPy stand-in: the GPU code path runs, and is checked, on any CPU machine.

The ``fake_cupy`` fixture (tests/conftest.py) installs ``cupy`` below as
``sys.modules["cupy"]`` for one test, so ``get_backend("cupy")`` finds it through
its ordinary ``import cupy``. Its ``ndarray`` wraps a NumPy array that stands for
memory on a GPU; every device operation runs NumPy on the wrapped arrays, so a
result equals the NumPy backend's bit for bit. Where a GPU is expensive or
different, it is strict:

- every implicit device->host transfer raises ``ImplicitTransferError``, naming
  the file and line that asked: ``np.asarray(x)`` (``__array__``), ``float(x)``,
  ``int(x)``, ``bool(x)`` (so ``if loss > 1:``), ``operator.index(x)``,
  ``x.item()``, ``x.tolist()``, ``for v in x``, and printing values
  (``repr``/``str``/``format``). On a GPU each of these waits for the device;
- only ``x.get()`` and ``cupy.asnumpy(x)`` transfer, and each is counted in
  ``cupy.reads`` with the place that asked (``cupy.uploads`` counts the other
  direction: ``cupy.asarray(host)`` and host arrays used as indices);
- a device array meeting a host ``numpy.ndarray`` in one operation raises
  ``TypeError``, as in CuPy (Python and NumPy scalars are fine, as in CuPy);
- NumPy functions given a device array raise ``ImplicitTransferError``. CuPy
  would dispatch many of them to itself (``__array_ufunc__``); minigan's rule
  is stricter, ``xp = get_array_module(x)``, and this enforces it;
- it offers only names that CuPy has (``cupy.random``'s ``Generator`` has no
  ``normal`` and no ``permutation``, for instance), with CuPy's parameters, and
  records every name and keyword used in ``RECORD``, which
  tests/test_cupy_api_surface.py compares with the real ``cupy`` package.

``cupy.random.default_rng(seed)`` draws NumPy's stream for the same seed (a real
GPU draws another one), which is what makes bit-for-bit comparisons possible.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import types
from collections import defaultdict
from collections.abc import Iterator
from numbers import Number
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent  # the repository: sites are named from here
THIS_FILE = str(Path(__file__).resolve())

# name used -> the calls made with it, as (number of positional arguments, keyword names).
# Names are paths in the real package: "exp", "random.Generator.standard_normal",
# "ndarray.sum", "cuda.Stream.synchronize". Kept for the whole test session.
RECORD: dict[str, set[tuple[int, frozenset[str]]]] = defaultdict(set)


class ImplicitTransferError(Exception):
    """Code read a device array back to the host without saying so (a hidden GPU sync).

    Deliberately not a TypeError or ValueError, which library code may catch.
    """


# --- where the code that called us is ----------------------------------------------------


def _frames() -> Iterator[types.FrameType]:
    """The calling frames, innermost first, skipping this file."""
    frame = sys._getframe(1)
    while frame is not None:
        if str(Path(frame.f_code.co_filename).resolve()) != THIS_FILE:
            yield frame
        frame = frame.f_back


def _site(frame: types.FrameType) -> str:
    """``minigan/losses.py:204`` for a frame (a path under the repository, else absolute)."""
    path = Path(frame.f_code.co_filename).resolve()
    name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    return f"{name}:{frame.f_lineno}"


def _asking_site() -> str:
    """The first caller outside this file and outside minigan/backend.py.

    An explicit read usually goes through ``Backend.to_host``; the useful place to
    report is the code that asked the backend, not the backend.
    """
    frames = [f for f in _frames() if not f.f_code.co_filename.endswith("minigan/backend.py")]
    # Name the enclosing function, not a comprehension (a frame of its own before 3.12).
    names = [f.f_code.co_name for f in frames]
    function = next((n for n in names if not n.startswith("<")), names[0])
    return f"{_site(frames[0])} ({function})"


# --- recording ----------------------------------------------------------------------------


def _note(name: str, args: tuple = (), kwargs: dict | None = None, called: bool = True) -> None:
    calls = RECORD[name]
    if called:
        calls.add((len(args), frozenset(kwargs or ())))


def _recorded(name: str):
    """Decorator: record each call of the function as ``name``."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            _note(name, args[1:] if name.startswith(_METHOD_PREFIXES) else args, kwargs)
            return fn(*args, **kwargs)

        return wrapper

    return decorate


_METHOD_PREFIXES = ("ndarray.", "random.Generator.", "cuda.Stream.")


# --- moving between "host" and "device" ----------------------------------------------------


def _wrap(value: Any) -> Any:
    """NumPy result -> device result. Scalars become 0-d arrays, as CuPy returns them."""
    if isinstance(value, np.ndarray):
        return ndarray._of(value)
    if isinstance(value, np.generic):
        return ndarray._of(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    return value


def _unwrap(value: Any, what: str) -> Any:
    """Device operand -> the NumPy array it stands for; a host array here is an error."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, np.ndarray):
        raise TypeError(
            f"{_site(next(_frames()))}: {what} got a host numpy.ndarray next to device "
            f"arrays; CuPy raises TypeError here too: move it with cupy.asarray first"
        )
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, what) for v in value)
    return value


def _implicit(what: str) -> None:
    """Raise for an implicit device->host transfer, unless the asking code is tolerated."""
    frame = next(_frames())
    for suffix, function in cupy.tolerated:
        if frame.f_code.co_filename.endswith(suffix) and frame.f_code.co_name == function:
            cupy.reads.append(f"{_site(frame)} ({function}) implicit {what}, tolerated")
            return
    raise ImplicitTransferError(
        f"{_site(frame)}: {what} of a device array is an implicit device->host transfer "
        f"(on a GPU, a sync); read it explicitly with minigan.backend.to_host(x) or x.get(), "
        f"where it is meant"
    )


# --- the array ---------------------------------------------------------------------------


class ndarray:  # CuPy's name
    """A NumPy array standing for an array in GPU memory. Create with ``cupy.asarray``."""

    __slots__ = ("_a",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any):
        raise TypeError("the CuPy stand-in makes arrays with cupy.asarray, empty, zeros_like...")

    @classmethod
    def _of(cls, array: np.ndarray) -> ndarray:
        self = object.__new__(cls)
        self._a = array
        return self

    # Attributes that need no transfer.
    shape = property(lambda self: (_note("ndarray.shape", called=False), self._a.shape)[1])
    dtype = property(lambda self: (_note("ndarray.dtype", called=False), self._a.dtype)[1])
    size = property(lambda self: (_note("ndarray.size", called=False), self._a.size)[1])
    ndim = property(lambda self: (_note("ndarray.ndim", called=False), self._a.ndim)[1])
    itemsize = property(lambda self: (_note("ndarray.itemsize", called=False), self._a.itemsize)[1])
    nbytes = property(lambda self: (_note("ndarray.nbytes", called=False), self._a.nbytes)[1])
    flags = property(lambda self: (_note("ndarray.flags", called=False), self._a.flags)[1])
    T = property(lambda self: (_note("ndarray.T", called=False), ndarray._of(self._a.T))[1])

    def __len__(self) -> int:
        _note("ndarray.__len__")
        return len(self._a)  # the shape only: no transfer

    # Implicit transfers: each raises (see the module docstring).
    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        _implicit("numpy.asarray() (__array__)")
        return self._a.copy()

    def __float__(self) -> float:
        _implicit("float()")
        return float(self._a)

    def __int__(self) -> int:
        _implicit("int()")
        return int(self._a)

    def __index__(self) -> int:
        _implicit("use as a Python index (__index__)")
        return self._a.__index__()

    def __complex__(self) -> complex:
        _implicit("complex()")
        return complex(self._a)

    def __bool__(self) -> bool:
        _implicit("bool() (an `if` or `and` on it)")
        return bool(self._a)

    def __iter__(self) -> Iterator[Any]:
        _implicit("iteration (for ... in)")
        return iter(_wrap(v) for v in self._a)

    def __repr__(self) -> str:
        _implicit("repr() (printing its values)")
        return f"fake cupy {self._a!r}"

    def __str__(self) -> str:
        _implicit("str() (printing its values)")
        return str(self._a)

    def __format__(self, spec: str) -> str:
        _implicit("format() (printing its values)")
        return format(self._a, spec)

    @_recorded("ndarray.item")
    def item(self) -> Any:
        _implicit(".item()")
        return self._a.item()

    @_recorded("ndarray.tolist")
    def tolist(self) -> Any:
        _implicit(".tolist()")
        return self._a.tolist()

    # The explicit transfer.
    @_recorded("ndarray.get")
    def get(self, stream: Any = None, order: str = "C", out: Any = None, blocking: bool = True):
        """Device -> host copy: the one way back, counted in ``cupy.reads``."""
        cupy.reads.append(_asking_site())
        if out is not None:
            out[...] = self._a
            return out
        return np.array(self._a, order=order, copy=True)

    @_recorded("ndarray.set")
    def set(self, arr: np.ndarray, stream: Any = None) -> None:
        """Host -> device copy into this array (counted in ``cupy.uploads``)."""
        cupy.uploads.append(_asking_site())
        self._a[...] = arr

    # NumPy's protocols: NumPy functions must not be given device arrays.
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any):
        others = [x for x in inputs if x is not self]
        if method == "__call__" and not kwargs and len(inputs) == 2 and len(others) == 1:
            other = others[0]
            # `np.float32(2) * x` arrives here (and `np.float32(2) < x` with the scalar
            # made a 0-d array): an operator with a scalar, which CuPy allows.
            if isinstance(other, (Number, np.generic)) or (
                isinstance(other, np.ndarray) and other.ndim == 0
            ):
                return _wrap(ufunc(*(x._a if x is self else x for x in inputs)))
            if isinstance(other, np.ndarray):
                _unwrap(other, f"the operator {ufunc.__name__}")  # raises: host array
        raise ImplicitTransferError(
            f"{_site(next(_frames()))}: numpy.{ufunc.__name__} called on a device array; "
            f"NumPy works on host arrays only: use xp = get_array_module(x) and "
            f"xp.{ufunc.__name__}"
        )

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any):
        raise ImplicitTransferError(
            f"{_site(next(_frames()))}: numpy.{func.__name__} called on a device array; "
            f"NumPy works on host arrays only: use xp = get_array_module(x) and "
            f"xp.{func.__name__}"
        )

    # Indexing.
    def __getitem__(self, slices: Any) -> ndarray:
        _note("ndarray.__getitem__")
        return _wrap(self._a[self._index(slices)])

    def __setitem__(self, slices: Any, value: Any) -> None:
        _note("ndarray.__setitem__")
        if isinstance(value, np.ndarray) and value.ndim > 0:
            raise TypeError(
                f"{_site(next(_frames()))}: assigning a host numpy.ndarray into a device "
                f"array (CuPy accepts only scalars and cupy arrays here): use cupy.asarray"
            )
        self._a[self._index(slices)] = _unwrap(value, "__setitem__")

    @staticmethod
    def _index(key: Any) -> Any:
        parts = key if isinstance(key, tuple) else (key,)
        converted = []
        for part in parts:
            if isinstance(part, ndarray):
                part = part._a
            elif isinstance(part, (np.ndarray, list)):
                cupy.uploads.append(f"{_asking_site()} (a host index array)")  # CuPy copies it
                part = np.asarray(part)
            converted.append(part)
        return tuple(converted) if isinstance(key, tuple) else converted[0]

    # Methods, with CuPy's parameters (a subset where NumPy lacks one).
    @_recorded("ndarray.astype")
    def astype(self, dtype, order="K", casting=None, subok=None, copy=True) -> ndarray:
        result = self._a.astype(dtype, order=order, casting=casting or "unsafe", copy=copy)
        return self if result is self._a else ndarray._of(result)

    @_recorded("ndarray.copy")
    def copy(self, order="C") -> ndarray:
        return ndarray._of(self._a.copy(order=order))

    @_recorded("ndarray.reshape")
    def reshape(self, *shape, order="C") -> ndarray:
        return ndarray._of(self._a.reshape(*shape, order=order))

    @_recorded("ndarray.ravel")
    def ravel(self, order="C") -> ndarray:
        return ndarray._of(self._a.ravel(order=order))

    @_recorded("ndarray.transpose")
    def transpose(self, *axes) -> ndarray:
        return ndarray._of(self._a.transpose(*axes))

    @_recorded("ndarray.fill")
    def fill(self, value) -> None:
        self._a.fill(_unwrap(value, "fill"))

    @_recorded("ndarray.clip")
    def clip(self, min=None, max=None, out=None) -> ndarray:  # CuPy's parameter names
        return _with_out(self._a.clip, out, _unwrap(min, "clip"), _unwrap(max, "clip"))

    @_recorded("ndarray.sum")
    def sum(self, axis=None, dtype=None, out=None, keepdims=False) -> ndarray:
        return _with_out(self._a.sum, out, axis=axis, dtype=dtype, keepdims=keepdims)

    @_recorded("ndarray.mean")
    def mean(self, axis=None, dtype=None, out=None, keepdims=False) -> ndarray:
        return _with_out(self._a.mean, out, axis=axis, dtype=dtype, keepdims=keepdims)

    @_recorded("ndarray.max")
    def max(self, axis=None, out=None, keepdims=False) -> ndarray:
        return _with_out(self._a.max, out, axis=axis, keepdims=keepdims)

    @_recorded("ndarray.min")
    def min(self, axis=None, out=None, keepdims=False) -> ndarray:
        return _with_out(self._a.min, out, axis=axis, keepdims=keepdims)

    @_recorded("ndarray.all")
    def all(self, axis=None, out=None, keepdims=False) -> ndarray:
        return _with_out(self._a.all, out, axis=axis, keepdims=keepdims)

    @_recorded("ndarray.any")
    def any(self, axis=None, out=None, keepdims=False) -> ndarray:
        return _with_out(self._a.any, out, axis=axis, keepdims=keepdims)

    @_recorded("ndarray.argmax")
    def argmax(self, axis=None, out=None, keepdims=False) -> ndarray:
        return _with_out(self._a.argmax, out, axis=axis, keepdims=keepdims)

    @_recorded("ndarray.argmin")
    def argmin(self, axis=None, out=None, keepdims=False) -> ndarray:
        return _with_out(self._a.argmin, out, axis=axis, keepdims=keepdims)

    @_recorded("ndarray.dot")
    def dot(self, b, out=None) -> ndarray:
        return _with_out(self._a.dot, out, _unwrap(b, "dot"))


def _with_out(method: Any, out: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a NumPy method, passing ``out`` through as the device array it is."""
    if out is None:
        return _wrap(method(*args, **kwargs))
    method(*args, out=_unwrap(out, "out="), **kwargs)
    return out


def _operator(name: str, ufunc: np.ufunc, kind: str):
    """``x + y``, ``y + x`` (reflected) or ``x += y`` (in place), computed by ``ufunc``."""

    def apply(self: ndarray, other: Any) -> Any:
        _note(f"ndarray.{name}")
        if not isinstance(other, (ndarray, np.ndarray, Number, np.generic)):
            return NotImplemented
        other = _unwrap(other, f"the operator {name}")
        if kind == "reflected":
            return _wrap(ufunc(other, self._a))
        if kind == "in place":
            ufunc(self._a, other, out=self._a)
            return self
        return _wrap(ufunc(self._a, other))

    apply.__name__ = name
    return apply


_ARITHMETIC = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "truediv": np.true_divide,
    "floordiv": np.floor_divide,
    "mod": np.remainder,
    "pow": np.power,
    "matmul": np.matmul,
    "and": np.bitwise_and,
    "or": np.bitwise_or,
    "xor": np.bitwise_xor,
}
for _name, _ufunc in _ARITHMETIC.items():
    setattr(ndarray, f"__{_name}__", _operator(f"__{_name}__", _ufunc, "plain"))
    setattr(ndarray, f"__r{_name}__", _operator(f"__r{_name}__", _ufunc, "reflected"))
    setattr(ndarray, f"__i{_name}__", _operator(f"__i{_name}__", _ufunc, "in place"))
_COMPARISONS = {
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
    "eq": np.equal,
    "ne": np.not_equal,
}
for _name, _ufunc in _COMPARISONS.items():
    setattr(ndarray, f"__{_name}__", _operator(f"__{_name}__", _ufunc, "plain"))
for _name, _ufunc in {"neg": np.negative, "pos": np.positive, "abs": np.absolute,
                      "invert": np.invert}.items():  # fmt: skip

    def _unary(self: ndarray, _ufunc: np.ufunc = _ufunc, _name: str = _name) -> ndarray:
        _note(f"ndarray.__{_name}__")
        return _wrap(_ufunc(self._a))

    setattr(ndarray, f"__{_name}__", _unary)


# --- module functions --------------------------------------------------------------------


def _device_function(name: str, numpy_function: Any):
    """``cupy.<name>``: NumPy's function on the device arrays' data; results stay on device."""

    def function(*args: Any, **kwargs: Any) -> Any:
        _note(name, args, kwargs)
        out = kwargs.get("out")
        result = numpy_function(
            *_unwrap(args, f"cupy.{name}"),
            **{k: _unwrap(v, f"cupy.{name}") for k, v in kwargs.items()},
        )
        return out if isinstance(out, ndarray) else _wrap(result)

    function.__name__ = function.__qualname__ = name
    return function


# Elementwise functions (ufuncs in CuPy) and other array functions that take and give
# device arrays. Each exists in CuPy; the API-surface test checks every one used.
DEVICE_FUNCTIONS = (
    "abs", "absolute", "add", "subtract", "multiply", "divide", "true_divide", "negative",
    "power", "square", "sqrt", "exp", "log", "log1p", "expm1", "tanh", "maximum", "minimum", "floor",
    "greater", "isfinite", "isnan", "clip", "where", "concatenate", "stack", "matmul", "dot", "sum",
    "mean", "zeros_like", "ones_like", "empty_like", "full_like", "zeros", "ones", "empty",
    "full", "arange", "linspace", "eye",
)  # fmt: skip
# NumPy's own objects, which CuPy re-exports (dtypes and dtype helpers).
NUMPY_NAMES = (
    "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool_",
    "floating", "integer", "dtype", "issubdtype", "finfo", "iinfo",
)  # fmt: skip


class _Namespace(types.ModuleType):
    """A module whose public attribute reads are recorded (as ``prefix + name``)."""

    def __init__(self, name: str, prefix: str):
        super().__init__(name)
        self._prefix = prefix

    # The stand-in's own attributes (counters), not CuPy's: never recorded.
    _OWN = frozenset({"reads", "uploads", "tolerated", "reset", "tolerate"})

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if not name.startswith("_") and name not in _Namespace._OWN:
            _note(super().__getattribute__("_prefix") + name, called=False)
        return value

    def __getattr__(self, name: str) -> Any:
        full = f"cupy.{self._prefix}{name}"
        raise AttributeError(
            f"the CuPy stand-in (tests/fake_cupy.py) has no {full}: nothing in minigan "
            f"used it before. If real CuPy has it (see docs.cupy.dev), add it there"
        )


class Generator:
    """``cupy.random.Generator``, drawing NumPy's stream for the same seed.

    Only the methods CuPy's Generator has, with its parameters: it has no ``normal``
    or ``permutation``, for instance.
    """

    def __init__(self, seed: Any = None):
        self._numpy = np.random.default_rng(seed)

    def __getattr__(self, name: str) -> Any:
        methods = sorted(n for n in vars(Generator) if not n.startswith("_"))
        raise AttributeError(
            f"{_site(next(_frames()))}: cupy.random.Generator has no method {name!r} "
            f"(the stand-in offers CuPy's {', '.join(methods)})"
        )

    @_recorded("random.Generator.standard_normal")
    def standard_normal(self, size=None, dtype=np.float64, out=None) -> ndarray:
        return _with_out(self._numpy.standard_normal, out, size, dtype=dtype)

    @_recorded("random.Generator.random")
    def random(self, size=None, dtype=np.float64, out=None) -> ndarray:
        return _with_out(self._numpy.random, out, size, dtype=dtype)

    @_recorded("random.Generator.uniform")
    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64) -> ndarray:
        return _wrap(np.asarray(self._numpy.uniform(low, high, size)).astype(dtype))

    @_recorded("random.Generator.integers")
    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False) -> ndarray:
        return _wrap(self._numpy.integers(low, high, size, dtype=dtype, endpoint=endpoint))


class Stream:
    """``cupy.cuda.Stream``: NumPy has finished every operation when it returns."""

    @_recorded("cuda.Stream.synchronize")
    def synchronize(self) -> None:
        pass


class FakeCupy(_Namespace):
    """The ``cupy`` module of the stand-in, with its transfer counters.

    Attributes:
        reads: one entry per explicit device->host transfer, naming who asked.
        uploads: one entry per host->device transfer.
        tolerated: ``(file suffix, function name)`` pairs whose implicit reads are
            allowed (and counted in ``reads``); see ``tolerate``.
    """

    def __init__(self) -> None:
        super().__init__("cupy", "")
        self.__doc__ = "A strict CuPy stand-in for tests (tests/fake_cupy.py)."
        self.__version__ = "stand-in"
        self.ndarray = ndarray
        for name in DEVICE_FUNCTIONS:
            setattr(self, name, _device_function(name, getattr(np, name)))
        for name in NUMPY_NAMES:
            setattr(self, name, getattr(np, name))
        self.random = _Namespace("cupy.random", "random.")
        self.random.Generator = Generator
        self.random.default_rng = default_rng
        self.cuda = _Namespace("cupy.cuda", "cuda.")
        self.cuda.Stream = Stream
        self.cuda.is_available = is_available
        self.cuda.get_current_stream = get_current_stream
        self.asarray, self.asnumpy, self.get_array_module = asarray, asnumpy, get_array_module
        self.reads: list[str] = []
        self.uploads: list[str] = []
        self.tolerated: list[tuple[str, str]] = []

    def reset(self) -> None:
        """Zero the counters and forget what is tolerated (RECORD is kept)."""
        self.reads.clear()
        self.uploads.clear()
        self.tolerated.clear()

    @contextlib.contextmanager
    def tolerate(self, file_suffix: str, function: str) -> Iterator[None]:
        """Allow (and count) implicit reads made directly by ``function`` in that file.

        For a known finding awaiting its fix elsewhere, so the rest of a path can be
        checked meanwhile; each use says which finding it is.
        """
        self.tolerated.append((file_suffix, function))
        try:
            yield
        finally:
            self.tolerated.remove((file_suffix, function))


# Functions that move data, or that look at the arrays' kind, not their values.


@_recorded("asarray")
def asarray(a, dtype=None, order=None, *, copy=None, blocking=False) -> ndarray:
    """Host -> device copy (counted in ``cupy.uploads``); a device array is passed through."""
    if isinstance(a, ndarray):
        same = dtype is None or np.dtype(dtype) == a._a.dtype
        return a if same and not copy else ndarray._of(np.array(a._a, dtype=dtype))
    cupy.uploads.append(_asking_site())
    return ndarray._of(np.array(a, dtype=dtype, copy=True))  # a device copy shares nothing


@_recorded("asnumpy")
def asnumpy(a, stream=None, order="C", out=None, *, blocking=True) -> np.ndarray:
    """Device -> host copy (counted in ``cupy.reads``); a host array is returned as it is."""
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


@_recorded("get_array_module")
def get_array_module(*args: Any) -> types.ModuleType:
    return cupy if any(isinstance(a, ndarray) for a in args) else np


@_recorded("random.default_rng")
def default_rng(seed: Any = None) -> Generator:
    return Generator(seed)


@_recorded("cuda.is_available")
def is_available() -> bool:
    return True


@_recorded("cuda.get_current_stream")
def get_current_stream() -> Stream:
    return Stream()


cupy = FakeCupy()
RECORD.clear()  # building the module read some of its own attributes
