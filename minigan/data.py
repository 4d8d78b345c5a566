"""Datasets: MNIST and Fashion-MNIST from IDX files, scaled for a GAN, served in batches.

The IDX format
--------------
Each dataset is four IDX files (images and labels, for training and test). An IDX file
is a big-endian header followed by the raw values, row-major::

    bytes 0-3    magic number: two zero bytes, a type code (0x08 = unsigned byte) and the
                 number of dimensions, so 0x00000803 for images and 0x00000801 for labels
    next 4*ndim  the size of each dimension, 4 bytes each: N, 28, 28 (images) or N (labels)
    the rest     the N*28*28 (or N) uint8 values

The files are usually gzip-compressed. Gzip is recognised by its first two bytes (1f 8b),
not by the file name, so a file that was decompressed but kept its ``.gz`` name still loads.

Where the files are looked for
------------------------------
``load_mnist`` and ``load_fashion_mnist`` look for each file (``name.gz``, then ``name``) in:

1. ``root``, when one is given;
2. ``$MINIGAN_DATA/mnist`` (``$MINIGAN_DATA/fashion-mnist``), when the variable is set;
3. system folders: ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``);
4. the per-user cache, ``$XDG_CACHE_HOME/minigan/mnist`` or ``~/.cache/minigan/mnist``.

A ``root`` that is a file is refused. A folder a person names on the command line (the
examples' ``--data-dir``) must serve itself rather than fall back on the others:
``check_data_folder`` refuses one that exists without the training files.

Every copy is verified by the SHA-256 of its decompressed bytes before use: the ``.gz``
bytes vary with the compressor, the content does not. A copy that fails is reported, never
used. When no good copy exists, the file is downloaded (unless ``download=False``) into
``root``, or into the cache when no root is given, from the first mirror that serves a
copy with the right checksum. Each attempt prints the mirror it tries, then a progress
bar in bytes; a mirror that stops answering is given up after ``timeout`` seconds of
silence (default 30 s, or ``$MINIGAN_DOWNLOAD_TIMEOUT``), and the next one is tried. A
folder created for a download that then fails is removed again.

Typical use::

    images, labels = load_mnist("train")      # uint8, (60000, 28, 28) and (60000,)
    x = to_gan_range(images)                  # float32, (60000, 784), in [-1, 1]
    loader = BatchIterator(x, batch_size=100)
    for batch in loader:                      # one epoch: 600 batches of (100, 784)
        ...
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import struct
import sys
import warnings
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any, Literal
from urllib.error import URLError
from urllib.request import Request, urlopen

import numpy as np
from tqdm import tqdm

from minigan.backend import Backend, get_backend
from minigan.files import atomic_write

Kind = Literal["images", "labels"]
IDX_MAGIC: dict[str, int] = {"images": 0x00000803, "labels": 0x00000801}
IMAGE_SHAPE = (28, 28)
GZIP_MAGIC = b"\x1f\x8b"

# Both datasets use these file names (stored gzip-compressed as name + ".gz").
SPLITS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
ALL_FILES = tuple(name + ".gz" for pair in SPLITS.values() for name in pair)

DEFAULT_TIMEOUT = 30.0  # seconds a mirror may stay silent before the next one is tried
TIMEOUT_VARIABLE = "MINIGAN_DOWNLOAD_TIMEOUT"


class DataError(RuntimeError):
    """A dataset could not be found, downloaded or read."""


class DatasetNotFoundError(DataError):
    """No copy of a dataset file was found, and none could be downloaded."""


class CorruptFileError(DataError):
    """A dataset file is truncated, damaged, or not the file it should be."""


@dataclass(frozen=True)
class Dataset:
    """Where a dataset lives and how to recognise its files (one record per dataset).

    Attributes:
        title: the name used in messages, e.g. ``"MNIST"``.
        folder: its subfolder of ``$MINIGAN_DATA`` and of the cache, e.g. ``"mnist"``.
        mirrors: base URLs tried in turn; a file's URL is ``mirror + name + ".gz"``.
        sha256: file name (no ``.gz``) -> SHA-256 of the decompressed bytes; decides.
        md5: file name (no ``.gz``) -> MD5 of the mirrors' ``.gz``; only reported.
        system_folders: folders where a system package installs the files.
    """

    title: str
    folder: str
    mirrors: tuple[str, ...]
    sha256: Mapping[str, str]
    md5: Mapping[str, str] = field(default_factory=dict)
    system_folders: tuple[str, ...] = ()


# Checksums as listed in the README of the project's copy (shared/data/mnist); the
# MD5s are those of the mirrors' .gz files (the ones torchvision checks).
MNIST = Dataset(
    title="MNIST",
    folder="mnist",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    sha256={
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    md5={
        "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
    },
)

# SHA-256 computed from the files of Debian's dataset-fashion-mnist
# (0.0~git20200523.55506a9-1). The MD5s are those the authors publish in the README of
# zalandoresearch/fashion-mnist. Cross-checked: Debian's .gz differ from the mirror's only
# in the gzip header (file name dropped, new mtime); restoring the name and the original
# mtime (2017-08-31) reproduces each published MD5 exactly, so the compressed stream, and
# with it the decompressed bytes hashed here, are the authors' own.
FASHION_MNIST = Dataset(
    title="Fashion-MNIST",
    folder="fashion-mnist",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    sha256={
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    md5={
        "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    system_folders=("/usr/share/datasets/fashion-mnist",),
)

DATASETS: dict[str, Dataset] = {"mnist": MNIST, "fashion-mnist": FASHION_MNIST}


# ---------------------------------------------------------------------------------------
# Reading IDX files
# ---------------------------------------------------------------------------------------


def parse_idx(data: bytes, kind: Kind | None = None, source: str = "<bytes>") -> np.ndarray:
    """Decode uncompressed IDX bytes into uint8 images (N, 28, 28) or labels (N,).

    Args:
        data: the whole file, already decompressed.
        kind: ``"images"`` or ``"labels"`` to insist on one; ``None`` accepts either.
        source: the file name, for error messages.

    Raises:
        CorruptFileError: bad magic, wrong kind, wrong image size, or wrong length.
    """
    fix = "delete it and download it again"
    magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    found = next((k for k, m in IDX_MAGIC.items() if m == magic), None)
    if found is None:
        start = data[:4].hex(" ") if data else "nothing (the file is empty)"
        raise CorruptFileError(
            f"{source}: not an IDX file: its data starts with {start}, but IDX images "
            f"start with 00 00 08 03 and labels with 00 00 08 01; {fix}"
        )
    if kind is not None and found != kind:
        raise CorruptFileError(
            f"{source}: is an IDX {found} file (magic 0x{magic:08x}) where {kind} "
            f"(magic 0x{IDX_MAGIC[kind]:08x}) were expected; check the file names"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CorruptFileError(f"{source}: truncated inside its IDX header; {fix}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if found == "images" and dims[1:] != IMAGE_SHAPE:
        raise CorruptFileError(f"{source}: holds images of size {dims[1:]}, expected {IMAGE_SHAPE}")
    expected = header + math.prod(dims)
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "too long"
        raise CorruptFileError(
            f"{source}: {problem}: {len(data)} bytes, expected {expected} for IDX "
            f"{found} of shape {dims}; {fix}"
        )
    # frombuffer over bytes is read-only; the copy (~15 ms for the training images)
    # spares users a surprising "assignment destination is read-only".
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims).copy()


def _decompress(raw: bytes, source: str) -> bytes:
    """The IDX bytes of a file: gunzipped if they start with the gzip magic, else as is."""
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:  # bad header, cut short, bad CRC
        raise CorruptFileError(
            f"{source}: damaged gzip data ({error}); the file is probably truncated: "
            "delete it and download it again"
        ) from None


def read_idx(path: str | os.PathLike, kind: Kind | None = None) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not, into a uint8 array (no checksum check).

    Raises:
        CorruptFileError: the file is not valid (gzip-wrapped) IDX of the expected kind.
    """
    return parse_idx(_decompress(Path(path).read_bytes(), str(path)), kind, str(path))


def _check_sha256(data: bytes, dataset: Dataset, name: str, source: str, advice: str) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != dataset.sha256[name]:
        raise CorruptFileError(
            f"{source}: SHA-256 of its decompressed bytes is {digest}, expected "
            f"{dataset.sha256[name]} for {dataset.title} {name}: a damaged or different "
            f"file; {advice}"
        )


def _read_verified(path: Path, dataset: Dataset, name: str, kind: Kind) -> np.ndarray:
    data = _decompress(path.read_bytes(), str(path))
    array = parse_idx(data, kind, str(path))  # first, for its precise diagnosis
    _check_sha256(data, dataset, name, str(path), "delete it; minigan downloads a fresh copy")
    return array


# ---------------------------------------------------------------------------------------
# Finding and downloading the files
# ---------------------------------------------------------------------------------------


def cache_folder(dataset: Dataset) -> Path:
    """The per-user download folder: ``$XDG_CACHE_HOME/minigan/<folder>``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "minigan" / dataset.folder


def search_folders(dataset: Dataset, root: str | os.PathLike | None = None) -> list[Path]:
    """The folders ``load_dataset`` looks in, in order (see the module docstring)."""
    folders = [Path(root)] if root is not None else []
    if os.environ.get("MINIGAN_DATA"):
        folders.append(Path(os.environ["MINIGAN_DATA"]) / dataset.folder)
    folders += [Path(folder) for folder in dataset.system_folders]
    return folders + [cache_folder(dataset)]


def check_data_folder(
    dataset: Dataset | str,
    folder: str | os.PathLike | None,
    flag: str = "--data-dir",
    splits: tuple[str, ...] = ("train",),
) -> None:
    """Refuse a folder given explicitly (``flag``) that cannot serve ``dataset``.

    ``load_dataset`` goes on to ``$MINIGAN_DATA`` and the cache when ``root`` lacks a
    file, which suits a library call; a folder a person names on the command line must
    serve itself, or another copy would be trained on without a word. A folder that
    exists must hold the training files (``name.gz`` or ``name``; their checksums are
    verified when they load); one that does not exist yet is where they are downloaded.

    Args:
        dataset: a ``Dataset``, or a run's dataset: ``"mnist"`` or ``"fashion"``
            (``"folder:PATH"``, pictures and not these files, has nothing to check).
        folder: the folder given; None when none was: nothing to check.
        splits: the splits the run will load from it ("train", and "test" for SGAN's
            test error or the metrics' classifier).

    Raises:
        DataError: ``folder`` is a file, or a folder lacking a training file.
    """
    if folder is None or dataset not in ("mnist", "fashion", MNIST, FASHION_MNIST):
        return
    if isinstance(dataset, str):
        dataset = MNIST if dataset == "mnist" else FASHION_MNIST
    where, names = Path(folder), [n for split in splits for n in SPLITS[split]]
    if not where.exists():
        return
    files = " and ".join(n + ".gz" for n in names)
    elsewhere = (
        f"or leave out {flag} to use $MINIGAN_DATA/{dataset.folder} or the cache "
        f"({cache_folder(dataset)}, downloading if needed)"
    )
    if not where.is_dir():
        raise DataError(
            f"{flag} {folder} is a file, not a folder of {dataset.title} files; give the "
            f"folder holding {files}, {elsewhere}"
        )
    lacking = [n for n in names if not any((where / (n + s)).is_file() for s in (".gz", ""))]
    if lacking:
        kind = "training set" if lacking[0] in SPLITS["train"] else "test set"
        raise DataError(
            f"{flag} {folder} holds no {dataset.title} {kind} (no "
            f"{', no '.join(n + '.gz' for n in lacking)}, with or without .gz); put {files} "
            f"there, {elsewhere}"
        )


def download_timeout(timeout: float | None = None) -> float:
    """``timeout`` if given, else ``$MINIGAN_DOWNLOAD_TIMEOUT``, else 30 seconds."""
    source = "timeout"
    if timeout is None:
        text = os.environ.get(TIMEOUT_VARIABLE)
        if not text:
            return DEFAULT_TIMEOUT
        source = f"${TIMEOUT_VARIABLE}"
        try:
            timeout = float(text)
        except ValueError:
            timeout = math.nan
    if not (math.isfinite(timeout) and timeout > 0):
        raise DataError(f"{source} must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _fetch(url: str, dataset: Dataset, name: str, target: Path, timeout: float) -> bytes:
    """Download ``url`` to ``target`` if its content verifies; return the decompressed bytes.

    The bytes go to a temporary file beside ``target`` (``atomic_write``), renamed over
    it only if the checks below pass: no reader ever sees a partial or wrong file, and a
    failed check, an error or Ctrl-C leaves no temporary file behind.
    """
    # Said before connecting: a mirror that hangs is then named while the user waits.
    print(
        f"{dataset.title}: downloading {url} (giving up after {timeout:g} s of silence; "
        f"${TIMEOUT_VARIABLE} sets it)",
        file=sys.stderr,
    )
    request = Request(url, headers={"User-Agent": "minigan"})
    with atomic_write(target) as out, urlopen(request, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        chunks = []
        with tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                chunks.append(chunk)
                bar.update(len(chunk))
        raw = b"".join(chunks)
        # http.client returns short reads without complaint when a server hangs up early.
        if total is not None and len(raw) != total:
            raise CorruptFileError(f"{url}: transfer cut off after {len(raw)} of {total} bytes")
        data = _decompress(raw, url)
        published = dataset.md5.get(name, "unknown")
        md5 = hashlib.md5(raw).hexdigest()
        _check_sha256(data, dataset, name, url, f"MD5 of the .gz: {md5}, published: {published}")
    return data


def _download(
    dataset: Dataset, name: str, folder: Path, timeout: float = DEFAULT_TIMEOUT
) -> tuple[bytes | None, list[str]]:
    """Try every mirror in turn; return (decompressed bytes or None, each failure).

    ``folder`` is created if needed, and removed again (with any parents made for it)
    if nothing lands in it: a failed download leaves no empty folders behind.
    """
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return None, [f"cannot create the folder {folder}: {error}"]
    errors = []
    try:
        for mirror in dataset.mirrors:
            url = mirror + name + ".gz"
            try:
                return _fetch(url, dataset, name, folder / (name + ".gz"), timeout), errors
            except (OSError, http.client.HTTPException, ValueError, DataError) as error:
                errors.append(_describe(url, error, timeout))
        return None, errors
    finally:
        for path in created:  # innermost first; rmdir refuses a folder that is not empty
            try:
                path.rmdir()
            except OSError:
                break


def _describe(url: str, error: Exception, timeout: float) -> str:
    """One line for a failed attempt; a silent mirror is named as such."""
    if isinstance(error, DataError):
        return str(error)
    if isinstance(error, TimeoutError) or (
        isinstance(error, URLError) and isinstance(error.reason, TimeoutError)
    ):
        return f"{url}: no answer for {timeout:g} s, given up (${TIMEOUT_VARIABLE} sets the wait)"
    return f"{url}: {error}"


def _failure_message(
    dataset: Dataset,
    name: str,
    folders: list[Path],
    rejected: list[str],
    download_errors: list[str] | None,
    dest: Path,
) -> str:
    env = os.environ.get("MINIGAN_DATA")
    env_folder = Path(env) / dataset.folder if env else None
    lines = [f"{dataset.title}: no usable copy of {name}.gz. Looked in these folders, in order:"]
    lines += [f"  {f}" + ("  (from $MINIGAN_DATA)" if f == env_folder else "") for f in folders]
    if not env:
        lines.append("  (the environment variable MINIGAN_DATA is not set)")
    if rejected:
        lines += ["Copies found but rejected:"] + [f"  {reason}" for reason in rejected]
    if download_errors is None:
        lines.append("Downloading is off (download=False).")
    else:
        lines += [f"Downloading into {dest} failed:"] + [f"  {e}" for e in download_errors]
    lines.append(
        f"To fix: put the files {', '.join(ALL_FILES)} (or the same names without .gz) in "
        f"one of the folders above, or set MINIGAN_DATA to a folder whose {dataset.folder}/ "
        "subfolder holds them, or run again with internet access."
    )
    return "\n".join(lines)


def _load_file(
    dataset: Dataset,
    name: str,
    kind: Kind,
    folders: list[Path],
    dest: Path,
    download: bool,
    timeout: float,
) -> np.ndarray:
    """The first copy of ``name`` that verifies; else a verified download; else raise."""
    rejected = []
    for path in (folder / (name + suffix) for folder in folders for suffix in (".gz", "")):
        if not path.is_file():
            continue
        try:
            array = _read_verified(path, dataset, name, kind)
        except (CorruptFileError, OSError) as error:
            rejected.append(str(error))
            continue
        if rejected:
            warnings.warn(f"{'; '.join(rejected)}. Using {path} instead.", stacklevel=4)
        return array
    data, errors = None, None
    if download:
        if rejected:
            warnings.warn(
                f"{'; '.join(rejected)}. Downloading a fresh copy into {dest}.", stacklevel=4
            )
        data, errors = _download(dataset, name, dest, timeout)
    if data is None:
        error_class = CorruptFileError if rejected else DatasetNotFoundError
        raise error_class(_failure_message(dataset, name, folders, rejected, errors, dest))
    return parse_idx(data, kind, str(dest / (name + ".gz")))


def load_dataset(
    dataset: Dataset,
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = True,
    timeout: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of an MNIST-format dataset as uint8 (images (N, 28, 28), labels (N,)).

    ``timeout``: seconds a download mirror may stay silent before the next one is tried
    (default: ``$MINIGAN_DOWNLOAD_TIMEOUT``, else 30).

    Raises:
        ValueError: ``split`` is not ``"train"`` or ``"test"``.
        DataError: ``root`` is a file.
        DatasetNotFoundError: a file is nowhere to be found and could not be downloaded.
        CorruptFileError: only damaged copies were found and no good one was downloaded.
    """
    if split not in SPLITS:
        valid = ", ".join(repr(s) for s in SPLITS)
        raise ValueError(f"unknown split {split!r}; valid splits are {valid}")
    if root is not None and Path(root).exists() and not Path(root).is_dir():
        raise DataError(f"{dataset.title}: root {root} is a file; give the folder of the files")
    wait = download_timeout(timeout)
    folders = search_folders(dataset, root)
    dest = Path(root) if root is not None else cache_folder(dataset)
    images_name, labels_name = SPLITS[split]
    images = _load_file(dataset, images_name, "images", folders, dest, download, wait)
    labels = _load_file(dataset, labels_name, "labels", folders, dest, download, wait)
    if len(images) != len(labels):
        raise DataError(f"{dataset.title} {split}: {len(images)} images but {len(labels)} labels")
    return images, labels


def load_mnist(
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = True,
    timeout: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits: uint8 images (N, 28, 28) and labels (N,); N = 60000 or 10000."""
    return load_dataset(MNIST, split, root, download, timeout)


def load_fashion_mnist(
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = True,
    timeout: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST clothes: uint8 images (N, 28, 28) and labels (N,); N = 60000 or 10000."""
    return load_dataset(FASHION_MNIST, split, root, download, timeout)


# ---------------------------------------------------------------------------------------
# An unpaired task: plain digits (domain A) and striped digits (domain B)
# ---------------------------------------------------------------------------------------

# The style of domain B (``stripe_digits``), in [0, 1] units of full brightness.
STRIPE_PERIOD = 4.0  # pixels from one bright stripe to the next, across the stripes
STRIPE_INK = (0.5, 1.0)  # a stroke's dark and bright stripes
BACKGROUND = (0.15, 0.4)  # the texture's darkest and brightest pixel, in every image
TEXTURE_BLUR = 1.5  # pixels: the standard deviation of the Gaussian blurring the noise
STRIPE_CHUNK = 4096  # images restyled at a time: float32 temporaries of ~13 MB each


def _blur_matrix(size: int, sigma: float) -> np.ndarray:
    """The (size, size) matrix K with K[i, j] proportional to exp(-(i - j)^2 / (2 sigma^2)),
    each row summing to 1: ``K @ x @ K.T`` blurs an image x down its columns, then along
    its rows (a Gaussian blur is separable), renormalised at the edges."""
    offsets = np.arange(size)[:, None] - np.arange(size)[None, :]
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    return (kernel / kernel.sum(axis=1, keepdims=True)).astype(np.float32)


def stripe_digits(
    images: np.ndarray,
    seed: int,
    *,
    ink: tuple[float, float] = STRIPE_INK,
    background: tuple[float, float] = BACKGROUND,
) -> np.ndarray:
    """Restyle digits as domain B: striped strokes on a textured background.

    A nod to CycleGAN's horse <-> zebra: every pixel changes character, the digit stays
    readable. With ``a = image / 255`` the stroke's coverage of a pixel (MNIST strokes
    have soft edges), each output pixel is the blend ``(1 - a) * background + a * ink``:

    - ink: diagonal stripes, ``ink = 0.5 + 0.5 * (1 + cos(2 pi d / 4 + phase)) / 2`` with
      ``d = (row + column) / sqrt(2)`` the distance along the stripes' normal, so bright
      (1.0) and dark (0.5) stripes alternate every 4 pixels; the phase is random per image;
    - background: white noise blurred by a Gaussian of 1.5 pixels, then stretched per
      image to span [0.15, 0.4] of full brightness: a smooth, mottled grey.

    The darkest stripe (0.5) is brighter than the brightest background (0.4), so ink is
    always brighter than the background around it: a stroke reads as a stroke.

    Args:
        images: uint8 (N, H, W), e.g. ``load_mnist``'s images.
        seed: seeds the phases and the textures; the same images and seed give the
            same output, byte for byte.
        ink, background: (darkest, brightest) of the stripes and of the texture, in
            [0, 1]; the defaults are domain B's. Half the style is the other half's
            default with one of these flat: ``ink=(1, 1)`` (solid strokes on the
            texture), ``background=(0, 0)`` (stripes on black).

    Returns:
        uint8 (N, H, W), like the input.
    """
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 3:
        shape = getattr(images, "shape", None)
        raise ValueError(
            f"stripe_digits: expected uint8 images (N, H, W), got {type(images).__name__} "
            f"{getattr(images, 'dtype', '')} {shape}"
        )
    for name, (low, high) in (("ink", ink), ("background", background)):
        if not 0 <= low <= high <= 1:
            raise ValueError(
                f"stripe_digits: {name} must be (low, high) with 0 <= low <= high <= 1, "
                f"got {(low, high)}"
            )
    n, height, width = images.shape
    rng = np.random.default_rng(seed)
    phases = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    rows, columns = np.arange(height)[:, None], np.arange(width)[None, :]
    across = (2 * np.pi / STRIPE_PERIOD) * (rows + columns) / np.sqrt(2)  # (H, W)
    blur_rows, blur_columns = _blur_matrix(height, TEXTURE_BLUR), _blur_matrix(width, TEXTURE_BLUR)
    dark, bright = ink
    low, high = background
    out = np.empty_like(images)
    for start in range(0, n, STRIPE_CHUNK):
        stop = min(start + STRIPE_CHUNK, n)
        # (1 + cos) / 2 in [0, 1]: 1 on a bright stripe, 0 on a dark one.
        wave = (1 + np.cos(across[None] + phases[start:stop, None, None])) / 2
        stripes = dark + (bright - dark) * wave.astype(np.float32)
        noise = rng.standard_normal((stop - start, height, width), dtype=np.float32)
        texture = blur_rows @ noise @ blur_columns.T
        least = texture.min(axis=(1, 2), keepdims=True)
        span = texture.max(axis=(1, 2), keepdims=True) - least
        ground = low + (high - low) * (texture - least) / span
        a = images[start:stop].astype(np.float32) / 255
        blend = (1 - a) * ground + a * stripes
        out[start:stop] = np.rint(np.clip(blend, 0, 1) * 255).astype(np.uint8)
    return out


def unpaired_mnist(
    split: str = "train",
    root: str | os.PathLike | None = None,
    seed: int = 0,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST as two unpaired domains, for CycleGAN: plain digits (A), striped digits (B).

    One split's images are dealt into two halves: domain A is every even-numbered image
    (0, 2, 4, ...) as it is, domain B every odd-numbered one restyled by
    ``stripe_digits``. No digit image appears in both, so no pair (a, its striped twin)
    exists to learn from: the training set gives 30,000 of each, the test set 5,000.

    Dealt, not cut: MNIST's files are ordered by where the digits came from (the test
    set's first 5,000 are from NIST's training set, its last 5,000 from NIST's test
    set, other writers), so a first and a second half differ in handwriting as well as
    in style, and a translator would be judged against writers its input never had.
    Even and odd images share the same writers.

    B's style is drawn with the seed ``2 * seed + (0 for "train", 1 for "test")``, so
    each (seed, split) has its own and the training and test stripes never coincide.

    Args:
        split: ``"train"`` or ``"test"``.
        root, download: as for ``load_mnist``.
        seed: which restyling; the default 0 is the one the metrics' classifiers of
            domain B were trained and tested on (minigan.metrics.translation).

    Returns:
        ``(a_images, a_labels, b_images, b_labels)``: uint8 images (N/2, 28, 28) and
        their labels (N/2,), as ``load_mnist`` gives them.
    """
    images, labels = load_mnist(split, root, download)  # checks ``split``
    b_seed = 2 * seed + list(SPLITS).index(split)
    return images[0::2], labels[0::2], stripe_digits(images[1::2], b_seed), labels[1::2]


# ---------------------------------------------------------------------------------------
# Mode-collapse benchmarks: the 2-D ring and grid, and Stacked MNIST
# ---------------------------------------------------------------------------------------

RING_MODES = 8  # VEEGAN's and PacGAN's 2-D ring: 8 Gaussians on the unit circle, std 0.01
RING_RADIUS = 1.0
RING_STD = 0.01
GRID_VALUES = (-4.0, -2.0, 0.0, 2.0, 4.0)  # the 2-D grid: 25 Gaussians at {-4,..,4}^2
GRID_STD = 0.05


def _check_count(where: str, name: str, value: Any, least: int) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool) or value < least:
        raise ValueError(f"{where}: {name} must be an integer >= {least}, got {value!r}")
    return int(value)


def _check_std(where: str, std: Any) -> float:
    if isinstance(std, bool) or not isinstance(std, (int, float)) or not 0 <= std < math.inf:
        raise ValueError(f"{where}: std must be a finite number >= 0, got {std!r}")
    return float(std)


def ring_centres(modes: int = RING_MODES, radius: float = RING_RADIUS) -> np.ndarray:
    """float64 (modes, 2): ``radius * (cos(2 pi i / modes), sin(2 pi i / modes))``, i = 0..

    The order of PacGAN's code (its 2DRing config's MEANS): mode 0 at (radius, 0), then
    counter-clockwise.
    """
    angles = 2 * np.pi * np.arange(modes) / modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid_centres() -> np.ndarray:
    """float64 (25, 2): every (a, b) with a, b in {-4, -2, 0, 2, 4}, a major (PacGAN's order,
    ``itertools.product(range(-4, 5, 2), range(-4, 5, 2))``)."""
    a, b = np.meshgrid(GRID_VALUES, GRID_VALUES, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1)


def _mixture(where: str, centres: np.ndarray, n: Any, seed: Any, std: float):
    n = _check_count(where, "n", n, 1)
    rng = np.random.default_rng(seed)
    # As the papers' data code (ALI's GaussianMixtureDistribution, which PacGAN's
    # datasets use with priors None): each point's mode drawn independently and
    # uniformly, then the mode's centre plus isotropic Gaussian noise of that std.
    mode = rng.integers(0, len(centres), n)
    points = centres[mode] + std * rng.standard_normal((n, 2))
    return points.astype(np.float32), centres.astype(np.float32)


def ring_mixture(
    n: int,
    seed: int,
    *,
    modes: int = RING_MODES,
    radius: float = RING_RADIUS,
    std: float = RING_STD,
) -> tuple[np.ndarray, np.ndarray]:
    """The 2-D ring: ``n`` points from ``modes`` Gaussians evenly spaced on a circle.

    VEEGAN's (Srivastava et al. 2017) and PacGAN's (Lin et al. 2018) benchmark: 8 modes
    on the unit circle, standard deviation 0.01 per coordinate. Each point picks its
    mode uniformly at random (so the modes' counts vary, as in the papers' code), then
    adds N(0, std^2 I) to the mode's centre.

    Args:
        n: how many points (>= 1).
        seed: seeds the draw: the same (n, seed, ...) give the same points.
        modes, radius, std: the ring; the defaults are the papers'.

    Returns:
        ``(points, centres)``: float32 (n, 2) and float32 (modes, 2) (``ring_centres``).
    """
    where = "ring_mixture"
    modes = _check_count(where, "modes", modes, 1)
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not radius > 0:
        raise ValueError(f"{where}: radius must be a number > 0, got {radius!r}")
    return _mixture(where, ring_centres(modes, radius), n, seed, _check_std(where, std))


def grid_mixture(n: int, seed: int, *, std: float = GRID_STD) -> tuple[np.ndarray, np.ndarray]:
    """The 2-D grid: ``n`` points from 25 Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05.

    VEEGAN's and PacGAN's second 2-D benchmark, drawn as ``ring_mixture`` draws (each
    point's mode uniform, then Gaussian noise). Its outer modes lie at +-4: a generator
    for it must end without Tanh.

    Returns:
        ``(points, centres)``: float32 (n, 2) and float32 (25, 2) (``grid_centres``).
    """
    where = "grid_mixture"
    return _mixture(where, grid_centres(), n, seed, _check_std(where, std))


def stacked_mnist(
    n: int,
    seed: int,
    split: str = "train",
    root: str | os.PathLike | None = None,
    *,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Stacked MNIST: three MNIST digits as the three channels of one image: 1,000 modes.

    Srivastava et al. (VEEGAN, 2017) and Metz et al. (Unrolled GAN, 2016) made it to
    count modes: each channel holds its own digit, so an image's "mode" is the triple
    (d0, d1, d2), one of 10^3 = 1,000, numbered ``100 d0 + 10 d1 + d2``. Each channel's
    image is drawn independently and uniformly (with replacement) from the split's
    images, so all 1,000 modes are equally likely. PacGAN's code does it both ways: its
    Unrolled-GAN setting (Table 3) draws fresh triples from the 60,000 training images
    for every batch, as this does with ``split="train"``; its VEEGAN setting (Table 2)
    draws a fixed set of 25,600 from the 70,000 training and test images together. Here
    one split is used, so that the test split can stay unseen.

    Args:
        n: how many images (>= 1).
        seed: seeds the draw: the same (n, seed, split) give the same images.
        split, root, download: as for ``load_mnist``.

    Returns:
        ``(images, labels)``: uint8 (n, 3, 28, 28), and int64 (n, 3), the digit of each
        channel (``labels @ [100, 10, 1]`` is the mode).
    """
    n = _check_count("stacked_mnist", "n", n, 1)
    images, labels = load_mnist(split, root, download)
    picks = np.random.default_rng(seed).integers(0, len(images), (n, 3))
    return images[picks], labels[picks].astype(np.int64)


# ---------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------


def human_bytes(n: int) -> str:
    """A size for messages: GB from 0.1 GB up, else MB."""
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (Linux); None elsewhere.

    Loaders check what a dataset or a checkpoint will fill against it before reading.
    """
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


# ---------------------------------------------------------------------------------------
# Preprocessing and batches
# ---------------------------------------------------------------------------------------


def to_gan_range(images: Any, flatten: bool = True, dtype: Any = np.float32) -> Any:
    """Scale uint8 images to ``x / 127.5 - 1``: floats in [-1, 1], the range of Tanh.

    0 maps to -1 and 255 to 1 exactly (127.5 and 2 are exact in binary floating point).

    Args:
        images: uint8 (N, H, W), NumPy or CuPy; the result stays on the same device.
        flatten: True gives (N, H*W), for dense layers; False gives (N, 1, H, W).
        dtype: a floating dtype; every step is computed in it.
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"to_gan_range: dtype must be floating, got {dtype}")
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(
            f"to_gan_range: expected uint8 images (N, H, W), got {images.dtype} {images.shape}"
        )
    # Convert once, then scale in place: no float64 temporary (376 MB for the MNIST
    # training set) and no second output array.
    out = images.astype(dtype)
    out /= dtype.type(127.5)
    out -= dtype.type(1)
    n = out.shape[0]
    return out.reshape(n, -1) if flatten else out.reshape(n, 1, *out.shape[1:])


class BatchIterator:
    """Fixed-size mini-batches of one or more arrays, reshuffled every epoch.

    ``for batch in loader:`` is one epoch. A batch is one array when the loader was given
    one array, a tuple (e.g. images, labels) when it was given several.

    Each epoch's order is a permutation drawn from a seeded NumPy Generator on the host,
    so NumPy and CuPy runs see the same batches, and ``state_dict()`` (saved between
    epochs) lets a resumed run see exactly the batches it would have seen.

    On CuPy the arrays are copied to the GPU once, here; each epoch copies one index
    array, and every batch is then gathered on the device: no host->device copy per step.
    """

    def __init__(
        self,
        *arrays: Any,
        batch_size: int,
        shuffle: bool = True,
        seed: int | None = 0,
        drop_last: bool = True,
        backend: str | Backend = "numpy",
    ):
        if not arrays:
            raise ValueError("BatchIterator needs at least one array")
        self.backend = get_backend(backend)
        self.arrays = tuple(self.backend.asarray(a) for a in arrays)
        if any(a.ndim == 0 for a in self.arrays):
            raise ValueError("BatchIterator: arrays must have a first (example) dimension")
        lengths = {a.shape[0] for a in self.arrays}
        if len(lengths) > 1:
            shapes = ", ".join(str(a.shape) for a in self.arrays)
            raise ValueError(f"BatchIterator: arrays differ in length: shapes {shapes}")
        self.num_examples = lengths.pop()
        if self.num_examples == 0:
            raise ValueError("BatchIterator: the arrays are empty")
        if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
            raise ValueError(
                f"BatchIterator: batch_size must be a positive int, got {batch_size!r}"
            )
        if drop_last and batch_size > self.num_examples:
            raise ValueError(
                f"BatchIterator: batch_size {batch_size} > {self.num_examples} examples with "
                "drop_last=True gives no batch; lower batch_size or set drop_last=False"
            )
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.num_examples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[Any]:
        # Draw the order now, when the epoch starts, not at the first next().
        n = self.num_examples
        order = self._rng.permutation(n) if self.shuffle else np.arange(n)
        return self._batches(self.backend.asarray(order))  # this epoch's one host->device copy

    def _batches(self, order: Any) -> Iterator[Any]:
        size = self.batch_size
        for start in range(0, len(self) * size, size):
            index = order[start : start + size]
            batch = tuple(a[index] for a in self.arrays)
            yield batch[0] if len(batch) == 1 else batch

    def state_dict(self) -> dict[str, Any]:
        """The shuffling generator's state; restoring it replays the following epochs."""
        return {"rng": self._rng.bit_generator.state, "num_examples": self.num_examples}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``, taken from a loader over the same number of examples."""
        if state.get("num_examples") != self.num_examples:
            raise ValueError(
                f"BatchIterator: state is for {state.get('num_examples')} examples, "
                f"this loader has {self.num_examples}"
            )
        try:
            self._rng.bit_generator.state = state["rng"]
        except (TypeError, ValueError, KeyError) as error:
            raise ValueError(
                f"BatchIterator: state's 'rng' is not a {type(self._rng.bit_generator).__name__} "
                f"generator's state ({type(error).__name__}: {error})"
            ) from None
