"""Checkpoints: nested dicts of arrays and plain values in one ``.npz`` file.

A training state is a tree (``{"gan": {"generator": {"0.weight": array, ...}, ...},
"epoch": 3, ...}``). It is stored flat: every array under its path
(``"gan/generator/0.weight"``), and everything else (numbers, strings, RNG states,
the config) as one JSON document. No pickle, so loading a file cannot run code.

Loading reads nothing it has not sized first: each member's size, as the zip archive
declares it and as its ``.npy`` header does, is checked against a limit (``max_bytes``,
for a run the most its model can hold, ``run_state_bytes``) and against the memory
available before a byte of it is decompressed. A zip bomb or a header declaring 10^12
floats is refused in one line, not after filling the memory.

``upgrade(state)`` turns a run's checkpoint written by an older minigan into today's
layout: the history of the layout lives there, and nowhere else (models and configs
know only today's). ``check_run_state(state, path)`` then checks every value a run
reads, types and finite weights, naming the field (``gan/g_optimizer/lr``) of a file
that was changed or damaged; ``check_same_data`` says when a run's data changed since
its checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from minigan.data import available_memory, human_bytes
from minigan.files import atomic_write
from minigan.models import MODELS

FORMAT = "minigan-checkpoint-1"
_META_KEY = "__meta__"
MAX_META_BYTES = 256 << 20  # the JSON part: a 1000-epoch history logged every step is ~90 MB
MAX_DEPTH = 32  # of the JSON part's nesting; a run's is 5 (gan/generator_ema/weights/...)


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, damaged, or does not fit the model."""


def _split(tree: dict[str, Any], prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Move the arrays out of ``tree`` into ``arrays``; return what is left."""
    rest: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            rest[key] = _split(value, path + "/", arrays)
        elif isinstance(value, np.ndarray):
            arrays[path] = value
        else:
            rest[key] = value
    return rest


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` (nested dicts of NumPy arrays and JSON values) atomically."""
    arrays: dict[str, np.ndarray] = {}
    meta = {"format": FORMAT, "tree": _split(state, "", arrays)}
    arrays[_META_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with atomic_write(path) as f:
        np.savez(f, **arrays)


# What a file holds, from its first bytes, for messages about files that are not checkpoints.
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members; an empty zip
_NPY_MAGIC = b"\x93NUMPY"
_PICKLE_MAGIC = b"\x80"  # pickle protocols 2 and later start with PROTO (0x80)
_EXPECTED = "expected a .npz written by minigan's save_checkpoint (a run's OUT/checkpoint.npz)"


def _not_a_checkpoint(path: str | os.PathLike, head: bytes) -> str | None:
    """Why a file whose first bytes are ``head`` is no checkpoint; None if it may be one."""
    if not head:
        return (
            f"{path} is not a readable minigan checkpoint: the file is empty; it was "
            f"truncated or damaged: delete it, or point to an earlier one"
        )
    if head.startswith(_ZIP_MAGICS):
        return None
    if head.startswith(_NPY_MAGIC):
        return f"{path} is a NumPy .npy array, not a minigan checkpoint; {_EXPECTED}"
    if head.startswith(_PICKLE_MAGIC):
        return (
            f"{path} is a Python pickle, not a minigan checkpoint; {_EXPECTED}. minigan "
            f"never loads pickles: loading one can run any code"
        )
    return (
        f"{path} is not a readable minigan checkpoint: it starts with the bytes "
        f"{head[:4].hex(' ')}, where a checkpoint (a zip archive) starts with 50 4b 03 04; "
        f"the file is truncated or damaged, or something else: {_EXPECTED}"
    )


def load_checkpoint(
    path: str | os.PathLike,
    max_bytes: int | Callable[[dict[str, Any]], int | None] | None = None,
) -> dict[str, Any]:
    """Read a file written by ``save_checkpoint``.

    ``max_bytes``: the most bytes its arrays may fill, or a function of the file's JSON
    part (the tree without its arrays) that gives it (None: no limit known), e.g.
    ``run_state_bytes``. Whatever it says, the arrays must fit in the memory available.

    Raises ``CheckpointError``, in one line saying what the file is, for a missing,
    damaged or empty file, a ``.npy`` array, a pickle, a ``.npz`` archive that minigan
    did not write, a file of another checkpoint format, or arrays larger than the limit
    or the memory (checked from the sizes the file declares, before reading them).
    Nothing is ever unpickled.
    """
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder, not a checkpoint file; {_EXPECTED}")
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        head = f.read(8)
    problem = _not_a_checkpoint(path, head)
    if problem is not None:
        raise CheckpointError(problem)
    try:
        with zipfile.ZipFile(path) as archive:
            members = _members(archive, path)
            if _META_KEY not in members:
                names = ", ".join(list(members)[:5]) + (", ..." if len(members) > 5 else "")
                raise CheckpointError(
                    f"{path} is a .npz archive of arrays ({names or 'none'}) without "
                    f"minigan's metadata, not a minigan checkpoint; {_EXPECTED}"
                )
            meta_member = members.pop(_META_KEY)
            sizes = {_META_KEY: meta_member.file_size}
            _check_sizes(path, "metadata", sizes, MAX_META_BYTES, "a checkpoint's may fill")
            meta = _read_meta(archive, meta_member, path)
            limit = max_bytes(meta["tree"]) if callable(max_bytes) else max_bytes
            what = "the model it describes can hold" if callable(max_bytes) else "allowed"
            sizes = {key: member.file_size for key, member in members.items()}
            _check_sizes(path, "arrays", sizes, limit, what)
            arrays = {
                key: _read_array(archive, member, key, path) for key, member in members.items()
            }
    except ValueError as error:
        if "allow_pickle" in str(error):  # NumPy's advice would be to load it unsafely
            raise _pickled(path) from None
        raise _damaged(path, error) from None
    except CheckpointError:
        raise
    # zlib.error: a damaged compressed member; NotImplementedError: a compression method
    # zipfile cannot read; RuntimeError: an encrypted member.
    except (zipfile.BadZipFile, OSError, KeyError, EOFError, zlib.error, NotImplementedError,
            RuntimeError) as error:  # fmt: skip
        raise _damaged(path, error) from None
    tree = meta["tree"]
    for key, value in arrays.items():
        *parents, leaf = key.split("/")
        node = tree
        for depth, parent in enumerate(parents):
            node = node.setdefault(parent, {})
            if not isinstance(node, dict):
                where = "/".join(parents[: depth + 1])
                raise CheckpointError(
                    f"{path}: its metadata holds {where} = {node!r:.60}, where the array "
                    f"{key} needs a group: the file was changed or damaged; {_ELSEWHERE}"
                )
        node[leaf] = value
    return tree


_ELSEWHERE = "point to another checkpoint (an earlier one), or start a new run"


def _members(archive: zipfile.ZipFile, path: str | os.PathLike) -> dict[str, zipfile.ZipInfo]:
    """The archive's arrays by name, as ``np.savez`` stores them: ``name.npy``."""
    members = {}
    for member in archive.infolist():
        if not member.filename.endswith(".npy"):
            raise CheckpointError(
                f"{path} holds {member.filename!r}, which is not a NumPy array: not a minigan "
                f"checkpoint, or a damaged one; {_EXPECTED}"
            )
        members[member.filename.removesuffix(".npy")] = member
    return members


def _check_sizes(
    path: str | os.PathLike, what: str, sizes: dict[str, int], limit: int | None, limit_what: str
) -> None:
    """Refuse members whose declared sizes (``sizes``, bytes by name) exceed ``limit``
    or the memory available: before any of them is decompressed."""
    total = sum(sizes.values())
    largest = max(sizes, key=sizes.get, default="none")
    said = f"{path} declares {human_bytes(total)} of {what}"
    if len(sizes) > 1:
        said += f" (the largest, {largest}, {human_bytes(sizes[largest])})"
    if limit is not None and total > limit:
        raise CheckpointError(
            f"{said}, more than the {human_bytes(limit)} {limit_what}: it was changed or "
            f"damaged, and nothing of it was read; {_ELSEWHERE}"
        )
    available = available_memory()
    if available is not None and total > available:
        raise CheckpointError(
            f"{said}, and this machine has {human_bytes(available)} of memory available: it was "
            f"not read; free some memory, or {_ELSEWHERE}"
        )


def _header(f: Any, key: str, path: str | os.PathLike) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The shape, Fortran order and dtype an ``.npy`` member's header declares."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise CheckpointError(f"{path}: its array {key} is in .npy format {version}, not 1.0 or 2.0")


def _read_array(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, key: str, path: str | os.PathLike
) -> np.ndarray:
    """One member, once its header is shown to declare exactly the bytes it holds; read
    a chunk at a time into the array, so that loading needs no second copy of it."""
    with archive.open(member) as f:
        shape, fortran_order, dtype = _header(f, key, path)
        if dtype.hasobject:  # np.savez pickles object arrays
            raise _pickled(path)
        declared, held = math.prod(shape) * dtype.itemsize, member.file_size - f.tell()
        if declared != held:
            raise CheckpointError(
                f"{path}: its array {key} declares {shape} {dtype} ({human_bytes(declared)}) and "
                f"holds {human_bytes(held)}: the file was changed or damaged; {_ELSEWHERE}"
            )
        flat = np.empty(math.prod(shape), dtype)
        buffer = flat.view(np.uint8)
        start = 0
        while start < declared:
            chunk = f.read(min(_CHUNK, declared - start))
            if not chunk:
                raise EOFError(f"{key} ends after {start} of its {declared} bytes")
            buffer[start : start + len(chunk)] = np.frombuffer(chunk, np.uint8)
            start += len(chunk)
    return flat.reshape(shape, order="F" if fortran_order else "C")


_CHUNK = 1 << 24


def _read_meta(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, path: str | os.PathLike
) -> dict[str, Any]:
    """The JSON part, checked to be a minigan checkpoint's, not nested deeper than MAX_DEPTH."""
    text = _read_array(archive, member, _META_KEY, path).tobytes()
    try:
        meta = json.loads(text)
    except RecursionError:
        meta = None  # nested deeper than Python's recursion limit: refused below
    depth = _depth(meta)
    if meta is None or depth > MAX_DEPTH:
        raise CheckpointError(
            f"{path}: its metadata is nested "
            f"{'deeper than Python can read' if meta is None else f'{depth} levels deep'} (a "
            f"checkpoint's, at most {MAX_DEPTH}): the file was changed or damaged; {_ELSEWHERE}"
        )
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "tree" not in meta:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(
            f"{path}: unknown checkpoint format {found!r}, this minigan reads {FORMAT!r}"
        )
    if not isinstance(meta["tree"], dict):
        raise CheckpointError(
            f"{path}: its metadata's tree is a {type(meta['tree']).__name__}, not a group of "
            f"values: the file was changed or damaged; {_ELSEWHERE}"
        )
    return meta


def _depth(value: Any) -> int:
    """How deeply JSON ``value`` nests (0 for a number or a string), without recursing."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            stack += [(child, depth + 1) for child in node.values()]
        elif isinstance(node, list):
            stack += [(child, depth + 1) for child in node]
    return deepest


def _pickled(path: str | os.PathLike) -> CheckpointError:
    return CheckpointError(
        f"{path} holds pickled Python objects, not a minigan checkpoint; "
        f"{_EXPECTED}. minigan never loads pickles: loading one can run any code"
    )


def _damaged(path: str | os.PathLike, error: Exception) -> CheckpointError:
    return CheckpointError(
        f"{path} is not a readable minigan checkpoint ({type(error).__name__}: {error}); "
        f"the file is truncated or damaged: delete it, or point to an earlier one"
    )


# --- older checkpoints ---------------------------------------------------------------------

# Config fields added after runs had been saved with that model, and the value those runs
# trained with (the code before the field existed did just that):
ADDED_FIELDS: dict[str, dict[str, Any]] = {
    # Before TTUR, the average of G, minibatch spread, PacGAN and dropout: one learning
    # rate, samples from the live G, each image judged alone, no dropout; the MLPs
    # (before the 2-D networks, arch 'points').
    "gan": {
        "d_lr": None,
        "ema": 0.0,
        "minibatch_std": 0,
        "pack": 1,
        "d_dropout": 0.0,
        "arch": "mlp",
    },
    # G at D's learning rate, the live G, no label smoothing, one image at a time, no
    # dropout, noise or DiffAugment, BatchNorm in D (the paper's), G's last transposed
    # convolution drawing the image, no fully connected hidden layer in D or G.
    "dcgan": {
        "g_lr": None,
        "ema": 0.0,
        "real_label": 1.0,
        "pack": 1,
        "d_dropout": 0.0,
        "d_noise": 0.0,
        "d_norm": "batch",
        "g_full_res_channels": 0,
        "d_fc_width": 0,
        "g_fc_width": 0,
        "d_augment": "",
    },
    # Before the projection discriminator: labels concatenated to D's input; samples
    # from the live G (before ema); the MLPs (before the convolutions).
    "cgan": {"discriminator": "concat", "ema": 0.0, "arch": "mlp"},
    # Before the twin classifier, the paper's ACGAN; the first twin runs (before
    # twin_weight) subtracted the twin's whole cross-entropy in G's loss; samples from
    # the live G (before ema); the MLPs, D without dropout (before the convolutions).
    "acgan": {
        "classifier": "paper",
        "twin_weight": 1.0,
        "ema": 0.0,
        "arch": "mlp",
        "d_dropout": 0.0,
    },
    # Before the convolutional networks: the MLPs, and samples from the live G.
    # Before PacGAN in their critics: each image judged alone. Before G's full-resolution
    # maps: its last transposed convolution drew the image.
    **{
        name: {"arch": "mlp", "ema": 0.0, "pack": 1, "g_full_res_channels": 0}
        for name in ("lsgan", "wgan", "wgan-gp")
    },
    # Before the projection term in both D's: the paper's head alone. Before Stage-II's
    # sketch skip: its G drew tanh(y), the paper's.
    "stackgan": {"d_projection": False, "sketch_skip": False},
}
MNIST_SHAPE = [1, 28, 28]  # one image, (channels, height, width): runs before --dataset


def upgrade(state: dict[str, Any]) -> dict[str, Any]:
    """A run's checkpoint (as ``load_checkpoint`` returns it) in today's layout.

    - ``state["gan"]["model"]``: states saved before the GAN family existed carry no
      model name; they are GANs';
    - ``"dataset"`` and ``"image_shape"``: runs from before ``--dataset`` trained on
      MNIST's 28x28 grey digits;
    - ``"config"``: a field added after the checkpoint was saved gets the value that
      checkpoint trained with (``ADDED_FIELDS``).

    Only what is there is upgraded (a part a state lacks stays missing), and the input is
    left unchanged: the result is a new dict sharing its arrays.
    """
    state = dict(state)
    if isinstance(state.get("gan"), dict):
        state["gan"] = {"model": "gan", **state["gan"]}
        model = state["gan"]["model"]
        if isinstance(state.get("config"), dict):
            added = ADDED_FIELDS.get(model, {}) if isinstance(model, str) else {}
            state["config"] = {**added, **state["config"]}
    if "gan" in state and "config" in state:  # a run of examples/mnist_gan.py
        state.setdefault("dataset", "mnist")
        state.setdefault("image_shape", list(MNIST_SHAPE))
    return state


# --- a run's checkpoint, checked -------------------------------------------------------------

# The most float32 copies of its model's weights a run's checkpoint holds: G and D, Adam's
# two moments of each, G's average and SGAN's average of D make 6 (12 in float64); 16 leave
# room, and 16 MB more the labelled indices, BatchNorm's statistics and the headers.
RUN_COPIES = 16
RUN_EXTRA_BYTES = 16 << 20


def run_state_bytes(tree: dict[str, Any]) -> int:
    """The most bytes the arrays of a run's checkpoint can fill, from its JSON part (the
    model and config it names): ``load_checkpoint``'s ``max_bytes`` for a run. When the
    tree names no model this minigan knows, or no config it can read, only
    ``RUN_EXTRA_BYTES``: small arrays are read, so that ``check_run_state`` can say what
    is wrong, but nothing large is decompressed for a state that cannot be used."""
    state = upgrade(tree)
    gan, config = state.get("gan"), state.get("config")
    if not (isinstance(gan, dict) and isinstance(config, dict)):
        return RUN_EXTRA_BYTES
    cls = MODELS.get(gan["model"]) if isinstance(gan["model"], str) else None
    if cls is None:
        return RUN_EXTRA_BYTES
    try:
        count = cls.parameter_count(cls.config_class(**config))
    except (TypeError, ValueError, OverflowError):  # check_run_state says what is wrong
        return RUN_EXTRA_BYTES
    return RUN_COPIES * 4 * count + RUN_EXTRA_BYTES


def _is_count(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def _is_real(value: Any) -> bool:
    """A real number (NaN and infinities included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_number(value: Any, low: float = 0.0, high: float = math.inf) -> bool:
    """A real number, not a bool, in [low, high] (so never NaN)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and low <= value <= high


# What the optimizers' values must be, by name: a check, and how a message says it.
_OPTIMIZER_VALUES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "lr": (_is_number, "a number >= 0"),
    "eps": (_is_number, "a number >= 0"),
    "momentum": (lambda v: _is_number(v, 0, 1), "a number in [0, 1]"),
    "alpha": (lambda v: _is_number(v, 0, 1), "a number in [0, 1]"),
    "t": (_is_count, "a count (an integer >= 0)"),
    "betas": (
        lambda v: (
            isinstance(v, list) and len(v) == 2 and all(_is_number(b, 0, 1) and b < 1 for b in v)
        ),
        "two numbers in [0, 1)",
    ),
}


def check_run_state(
    state: dict[str, Any],
    path: str | os.PathLike,
    keys: tuple[str, ...] = ("gan", "config", "loader", "history", "epoch"),
) -> dict[str, Any]:
    """Check the values of an upgraded run's checkpoint that ``keys`` name (with its
    ``image_shape``, ``dataset`` and ``seed``), before any of them is used; return it.

    Every array must be finite (NaN weights would give NaN samples, and a resumed run
    would stop at its first step); every other value must have its type and range.
    One check on the host, where the arrays are after loading: nothing on the device.

    Raises:
        CheckpointError: naming ``path`` and the field (``gan/g_optimizer/lr``).
    """

    def refuse(field: str, what: str, value: Any) -> CheckpointError:
        return CheckpointError(
            f"{path}: {field} must be {what}, got {_shown(value)}: the file was changed or "
            f"damaged; {_ELSEWHERE}"
        )

    def group(field: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise refuse(field, "a group of values", value)
        return value

    gan = group("gan", state["gan"])
    name = gan.get("model")
    if not isinstance(name, str) or name not in MODELS:
        raise CheckpointError(
            f"{path} holds a {name!r} model, which this version of minigan does not know"
        )
    if not _is_count(gan.get("steps")):
        raise refuse("gan/steps", "a count (an integer >= 0)", gan.get("steps"))
    for part, value in gan.items():
        if part in ("generator", "discriminator", "generator_ema"):
            group(f"gan/{part}", value)
        if part.endswith("_optimizer"):
            for key, number in group(f"gan/{part}", value).items():
                if key in _OPTIMIZER_VALUES and not _OPTIMIZER_VALUES[key][0](number):
                    raise refuse(f"gan/{part}/{key}", _OPTIMIZER_VALUES[key][1], number)
    updates = gan.get("generator_ema", {}).get("updates", 0)
    if not _is_count(updates):
        raise refuse("gan/generator_ema/updates", "a count (an integer >= 0)", updates)
    for key in keys:
        for field, array in _arrays(state[key], key):
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                bad = int(array.size - np.isfinite(array).sum())
                raise CheckpointError(
                    f"{path}: its array {field} holds {bad} NaN or infinite values (of "
                    f"{array.size}): the file was changed or damaged, or saved from a run "
                    f"that had diverged; {_ELSEWHERE}"
                )
    if "seed" in state and not _is_count(state["seed"]):
        raise refuse("seed", "a count (an integer >= 0)", state["seed"])
    if not isinstance(state["dataset"], str):
        raise refuse("dataset", "a name (mnist, fashion or folder:PATH)", state["dataset"])
    if MODELS[name].translation and not isinstance(state.get("dataset_b"), str):
        raise refuse("dataset_b", "a name (domain B: mnist-striped, fashion or folder:PATH)",
                     state.get("dataset_b"))  # fmt: skip
    shape = state["image_shape"]
    if state["dataset"] in ("2d-ring", "2d-grid"):  # points of the plane (minigan/plane.py)
        if shape != [2]:
            raise refuse("image_shape", "[2] (a point of the plane)", shape)
    elif state["dataset"] == "stacked-mnist" and shape != [3, 28, 28]:  # minigan/stacked.py
        raise refuse("image_shape", "[3, 28, 28] (three MNIST digits as channels)", shape)
    elif not (
        isinstance(shape, list) and len(shape) == 3 and all(_is_count(n) and n > 0 for n in shape)
    ):
        raise refuse("image_shape", "three positive integers (channels, height, width)", shape)
    _check_config(MODELS[name], group("config", state["config"]), shape, path, refuse)
    if "loader" in keys:
        loader = group("loader", state["loader"])
        count = loader.get("num_examples")
        if not (_is_count(count) and count > 0):
            raise refuse("loader/num_examples", "a positive integer", count)
        if MODELS[name].translation:  # unpaired.UnpairedBatches: one shuffler per domain
            for domain in ("a", "b"):
                group(
                    f"loader/{domain}/rng", group(f"loader/{domain}", loader.get(domain)).get("rng")
                )
        else:
            group("loader/rng", loader.get("rng"))  # its entries: BatchIterator checks them
    if "history" in keys:
        history = state["history"]
        if not isinstance(history, list):
            raise refuse("history", "a list of rows", history)
        for index, row in enumerate(history):
            if not (isinstance(row, dict) and _is_number(row.get("epoch"))):
                raise refuse(f"history[{index}]", "a row with its epoch", row)
            for key, value in row.items():
                values = value if isinstance(value, list) else [value]
                if not all(v is None or _is_real(v) for v in values):
                    raise refuse(f"history[{index}]/{key}", "a number", value)
    if "epoch" in keys and not _is_count(state["epoch"]):
        raise refuse("epoch", "a count (an integer >= 0)", state["epoch"])
    return state


def _shown(value: Any, width: int = 60) -> str:
    """``repr(value)``, cut to about ``width`` characters."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _arrays(tree: Any, prefix: str) -> Iterator[tuple[str, np.ndarray]]:
    """(path, array) for every array in a tree of dicts, without recursing."""
    stack = [(prefix, tree)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, np.ndarray):
            yield where, node
        elif isinstance(node, dict):
            stack += [(f"{where}/{key}", value) for key, value in node.items()]


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# A config field's values in JSON, by the field's annotation: a check, and how a message says it.
_CONFIG_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "int": (_is_integer, "an integer"),
    "float": (lambda v: _is_number(v, -math.inf), "a number"),
    "float | None": (lambda v: v is None or _is_number(v, -math.inf), "a number or null"),
    "str": (lambda v: isinstance(v, str), "text"),
    "tuple[float, float]": (
        lambda v: isinstance(v, list) and len(v) == 2 and all(_is_number(x, -math.inf) for x in v),
        "two numbers",
    ),
    "tuple[int, ...]": (
        lambda v: isinstance(v, list) and all(_is_integer(x) for x in v),
        "a list of integers",
    ),
}
_ANY = (lambda v: True, "")


def _check_config(
    cls: Any, config: dict[str, Any], shape: list[int], path: Any, refuse: Callable
) -> None:
    """Each saved field is one of the model's settings, of its type; the config is one
    the model accepts, for images of ``shape``."""
    types = {f.name: str(f.type) for f in dataclasses.fields(cls.config_class)}
    for key, value in config.items():
        if key not in types:
            raise CheckpointError(
                f"{path}: config/{key} is not a setting of a {cls.name!r} model: the file was "
                f"changed or damaged, or written by a newer minigan; {_ELSEWHERE}"
            )
        if not _CONFIG_TYPES.get(types[key], _ANY)[0](value):
            raise refuse(f"config/{key}", _CONFIG_TYPES[types[key]][1], value)
    try:
        built = cls.config_class(**config)
        fitted = cls.config_for_images(built, tuple(shape))
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"{path}: its config is refused ({error}): the file was changed or damaged; "
            f"{_ELSEWHERE}"
        ) from None
    if fitted != built:
        changed = [
            f"config/{f.name} is {getattr(built, f.name)!r}, not {getattr(fitted, f.name)!r}"
            for f in dataclasses.fields(built)
            if getattr(built, f.name) != getattr(fitted, f.name)
        ]
        raise CheckpointError(
            f"{path}: image_shape {shape} does not fit its config ({'; '.join(changed)}): "
            f"the file was changed or damaged; {_ELSEWHERE}"
        )


def check_same_data(
    state: dict[str, Any] | None,
    image_shape: tuple[int, ...],
    count: int,
    path: str | os.PathLike,
) -> None:
    """A resumed run continues on the data it was trained on: ``count`` images of
    ``image_shape`` (channels, height, width) were loaded, and its checkpoint ``state``
    (checked by ``check_run_state``; None for a new run: nothing to compare) says what
    it was trained on. A folder of pictures may have changed since."""
    if state is None:
        return
    saved_shape = tuple(state["image_shape"])
    saved_count = state["loader"]["num_examples"]
    if (saved_shape, saved_count) == (tuple(image_shape), count):
        return

    def images(n: int, shape: tuple[int, ...]) -> str:
        return f"{n} images of {'x'.join(str(d) for d in shape)}"

    raise CheckpointError(
        f"{path} was trained on {images(saved_count, saved_shape)} from {state['dataset']}, "
        f"which now gives {images(count, tuple(image_shape))}: the data changed since the "
        f"checkpoint. --resume continues a run on its own data: put the data back as it "
        f"was, or start a new run in another --out"
    )
