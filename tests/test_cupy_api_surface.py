"""Every CuPy name and keyword minigan uses exists in the real ``cupy`` package.

The stand-in (tests/fake_cupy.py) records each name minigan reads from ``cupy`` and
the keywords of each call; here every scenario of tests/cupy_scenarios.py runs
through it, and the record (with whatever other tests of this session added) is
checked against the installed CuPy. CuPy installs and imports without a GPU (only
allocating needs one), so this runs in CI (.ci/run installs ``cupy-cuda12x``); it
is skipped where CuPy is not installed.

Signatures: ``inspect.signature`` where CuPy exposes one; CuPy's ufuncs and Cython
methods expose none, but their docstrings start with it (``exp(x, /, out=None, *,
casting='same_kind', dtype=None)``), which is read instead. A name with neither is
reported in a warning, and its keywords are not checked.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
import warnings
from typing import Any

import fake_cupy
import pytest
from cupy_scenarios import SCENARIOS


@pytest.fixture(scope="module")
def real_cupy() -> Any:
    saved = sys.modules.get("cupy")
    if isinstance(saved, fake_cupy.FakeCupy):
        del sys.modules["cupy"]
    try:
        return importlib.import_module("cupy")
    except ImportError as error:
        pytest.skip(f"the real cupy package is not installed ({error}): pip install cupy-cuda12x")
    finally:
        if isinstance(saved, fake_cupy.FakeCupy):
            sys.modules["cupy"] = saved


@pytest.fixture(scope="module")
def record(real_cupy, tmp_path_factory) -> dict[str, set[tuple[int, frozenset[str]]]]:
    """Run every scenario through the stand-in; return the names and keywords used."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "cupy", fake_cupy.cupy)
        for name, run in SCENARIOS.items():
            fake_cupy.cupy.reset()
            run("cupy", tmp_path_factory.mktemp(re.sub(r"\W", "_", name)))
    fake_cupy.cupy.reset()
    return {name: set(calls) for name, calls in fake_cupy.RECORD.items()}


def resolve(package: Any, name: str) -> Any:
    """``"random.Generator.standard_normal"`` -> that attribute of ``package``."""
    value = package
    for part in name.split("."):
        value = getattr(value, part)
    return value


def signature(obj: Any) -> inspect.Signature | None:
    """``obj``'s signature, from ``inspect`` or from the first line of its docstring."""
    try:
        return inspect.signature(obj)
    except (ValueError, TypeError):
        pass
    first = (getattr(obj, "__doc__", None) or "").strip().splitlines()[:1]
    found = re.match(r"^[\w.]*\((.*)\)(\s*->.*)?$", first[0]) if first else None
    if found is None:
        return None
    # Defaults such as <class 'numpy.float64'> are not Python, nor are Cython's typed
    # parameters (int device_id=-1); only the names matter.
    params = re.sub(r"<[^>]*>", "None", found.group(1).replace("\\*", "*"))
    params = ",".join(
        re.sub(r"^\s*[\w.]+\s+(?=\**\w+\s*(=|$))", "", part) for part in params.split(",")
    )
    try:
        args = ast.parse(f"def f({params}): pass").body[0].args
    except SyntaxError:
        return None
    kind = inspect.Parameter
    positional = [(a, kind.POSITIONAL_ONLY) for a in args.posonlyargs]
    positional += [(a, kind.POSITIONAL_OR_KEYWORD) for a in args.args]
    defaults_from = len(positional) - len(args.defaults)
    parameters = [
        kind(a.arg, k, default=None if i >= defaults_from else kind.empty)
        for i, (a, k) in enumerate(positional)
    ]
    if args.vararg:
        parameters.append(kind(args.vararg.arg, kind.VAR_POSITIONAL))
    parameters += [kind(a.arg, kind.KEYWORD_ONLY, default=None) for a in args.kwonlyargs]
    if args.kwarg:
        parameters.append(kind(args.kwarg.arg, kind.VAR_KEYWORD))
    return inspect.Signature(parameters)


def is_method(name: str) -> bool:
    return name.startswith(fake_cupy._METHOD_PREFIXES)


def call_problems(real_cupy: Any, name: str, calls: set, unchecked: list[str]) -> list[str]:
    """Why CuPy would refuse the calls made of ``name`` (empty: it accepts them all)."""
    sig = signature(resolve(real_cupy, name))
    if sig is None:
        unchecked.append(name)
        return []
    problems = []
    for positional, keywords in sorted(calls, key=lambda c: (c[0], sorted(c[1]))):
        args = [None] * (positional + is_method(name))  # methods: self comes first
        try:
            sig.bind_partial(*args, **dict.fromkeys(keywords))
        except TypeError as error:
            problems.append(
                f"cupy.{name}{sig}: called with {positional} positional argument(s) and "
                f"keywords {sorted(keywords)}: {error}"
            )
    return problems


def test_the_scenarios_recorded_the_names_minigan_uses(record):
    """The record cannot be empty or miss the core of the path (a guard on the check)."""
    for name in ("asarray", "random.default_rng", "random.Generator.standard_normal",
                 "ndarray.get", "ndarray.__matmul__", "exp", "concatenate"):  # fmt: skip
        assert name in record, f"{name} was not recorded: the stand-in's record is broken"


def test_every_cupy_name_minigan_uses_exists_in_cupy(real_cupy, record):
    missing = []
    for name in sorted(record):
        try:
            resolve(real_cupy, name)
        except AttributeError:
            missing.append(f"cupy.{name}")
    assert not missing, f"minigan uses names that CuPy {real_cupy.__version__} lacks: {missing}"


def test_cupy_accepts_every_call_minigan_makes(real_cupy, record):
    unchecked: list[str] = []
    problems = []
    for name, calls in sorted(record.items()):
        if calls and not name.split(".")[-1].startswith("__"):  # operators take one operand
            problems += call_problems(real_cupy, name, calls, unchecked)
    if unchecked:
        warnings.warn(
            f"CuPy exposes no signature for {unchecked}: their keywords were not checked",
            stacklevel=1,
        )
    assert not problems, "\n".join(problems)


def stand_in_callables() -> dict[str, Any]:
    """Every function and method the stand-in offers, by its name in CuPy."""
    module = fake_cupy.cupy
    offered = {name: getattr(module, name) for name in fake_cupy.DEVICE_FUNCTIONS}
    offered |= {"asarray": module.asarray, "asnumpy": module.asnumpy,
                "get_array_module": module.get_array_module,
                "random.default_rng": module.random.default_rng,
                "cuda.is_available": module.cuda.is_available,
                "cuda.get_current_stream": module.cuda.get_current_stream}  # fmt: skip
    for prefix, cls in (("ndarray", fake_cupy.ndarray), ("random.Generator", fake_cupy.Generator),
                        ("cuda.Stream", fake_cupy.Stream)):  # fmt: skip
        for attr, value in vars(cls).items():
            if not attr.startswith("_") or attr in ("__getitem__", "__setitem__", "__len__"):
                offered[f"{prefix}.{attr}"] = value
    return offered


def test_the_stand_in_offers_only_what_cupy_has_with_cupys_parameters(real_cupy):
    """So a call the stand-in accepts, CuPy accepts too (its parameters are a subset)."""
    problems, unchecked = [], []
    for name, ours in sorted(stand_in_callables().items()):
        try:
            theirs = resolve(real_cupy, name)
        except AttributeError:
            problems.append(f"the stand-in offers cupy.{name}, which CuPy does not have")
            continue
        if name in fake_cupy.DEVICE_FUNCTIONS or not callable(ours):
            continue  # NumPy's function behind it; the calls made are checked above
        real_sig = signature(theirs)
        if real_sig is None:
            unchecked.append(name)
            continue
        ours = inspect.unwrap(ours)
        for param in inspect.signature(ours).parameters.values():
            if param.name != "self" and param.name not in real_sig.parameters:
                problems.append(f"cupy.{name}{real_sig} has no parameter {param.name!r}")
    for name in fake_cupy.NUMPY_NAMES:
        if not hasattr(real_cupy, name):
            problems.append(f"the stand-in offers cupy.{name}, which CuPy does not have")
    if unchecked:
        warnings.warn(f"CuPy exposes no signature for {unchecked}", stacklevel=1)
    assert not problems, "\n".join(problems)


def test_the_surface_check_refuses_what_cupy_lacks(real_cupy):
    """The checks above can fail: calls real CuPy would refuse are reported."""
    with pytest.raises(AttributeError):
        resolve(real_cupy, "random.Generator.normal")  # NumPy's Generator has it; CuPy's not
    refused = [
        ("random.Generator.standard_normal", 1, {"loc"}),
        ("exp", 1, {"where"}),  # a NumPy ufunc keyword that CuPy's ufuncs lack
        ("ndarray.astype", 1, {"device"}),
        ("random.Generator.uniform", 5, set()),  # too many positional arguments
    ]
    for name, positional, keywords in refused:
        calls = {(positional, frozenset(keywords))}
        assert call_problems(real_cupy, name, calls, []), name
    accepted = {(1, frozenset({"dtype"}))}
    assert call_problems(real_cupy, "random.Generator.standard_normal", accepted, []) == []
