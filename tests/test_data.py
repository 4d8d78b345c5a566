"""Tests for minigan.data: IDX reading, finding/downloading files, scaling, batches.

Downloads are tested against a real HTTP server on 127.0.0.1 serving tiny synthetic IDX
files; nothing here reaches the internet or the real ~/.cache.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import os
import re
import socket
import struct
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from minigan import data
from minigan.backend import BackendUnavailableError, get_backend
from minigan.data import (
    FASHION_MNIST,
    MNIST,
    SPLITS,
    BatchIterator,
    CorruptFileError,
    DataError,
    Dataset,
    DatasetNotFoundError,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    read_idx,
    to_gan_range,
)

# Read before the autouse fixture below clears it for every test.
REAL_DATA = os.environ.get("MINIGAN_DATA")
FASHION_SYSTEM_FOLDER = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test sees the user's MINIGAN_DATA or writes to the real ~/.cache."""
    monkeypatch.delenv("MINIGAN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


# ---------------------------------------------------------------------------------------
# Tiny synthetic IDX files
# ---------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: magic 0x0000 08 <ndim>, big-endian dims, values."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def tiny_arrays() -> dict[str, np.ndarray]:
    """File name -> content for a 7-example train split and a 3-example test split."""
    rng = np.random.default_rng(123)
    out = {}
    for (images, labels), n in zip(SPLITS.values(), (7, 3)):
        out[images] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        out[labels] = rng.integers(0, 10, n, dtype=np.uint8)
    return out


TINY = tiny_arrays()
TINY_RAW = {name: idx_bytes(a) for name, a in TINY.items()}
TINY_GZ = {name: gzip.compress(raw, mtime=0) for name, raw in TINY_RAW.items()}


def tiny_dataset(mirrors: tuple[str, ...] = ()) -> Dataset:
    return Dataset(
        title="Tiny",
        folder="tiny",
        mirrors=mirrors,
        sha256={name: hashlib.sha256(raw).hexdigest() for name, raw in TINY_RAW.items()},
        md5={name: hashlib.md5(gz).hexdigest() for name, gz in TINY_GZ.items()},
    )


def write_tiny(folder: Path, compressed: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in TINY_RAW.items():
        if compressed:
            (folder / (name + ".gz")).write_bytes(TINY_GZ[name])
        else:
            (folder / name).write_bytes(raw)
    return folder


def all_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ---------------------------------------------------------------------------------------
# IDX reader
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [True, False], ids=["gz", "raw"])
def test_read_idx_reads_images_and_labels(tmp_path, compressed):
    write_tiny(tmp_path, compressed)
    suffix = ".gz" if compressed else ""
    images = read_idx(tmp_path / ("train-images-idx3-ubyte" + suffix), "images")
    labels = read_idx(tmp_path / ("train-labels-idx1-ubyte" + suffix), "labels")
    assert images.dtype == np.uint8 and images.shape == (7, 28, 28)
    assert labels.dtype == np.uint8 and labels.shape == (7,)
    np.testing.assert_array_equal(images, TINY["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(labels, TINY["train-labels-idx1-ubyte"])
    images[0, 0, 0] = 1  # the result is an ordinary writable array


def test_read_idx_detects_gzip_by_content_not_by_name(tmp_path):
    raw_named_gz = tmp_path / "a.gz"
    raw_named_gz.write_bytes(TINY_RAW["t10k-labels-idx1-ubyte"])
    gz_without_suffix = tmp_path / "b"
    gz_without_suffix.write_bytes(TINY_GZ["t10k-labels-idx1-ubyte"])
    for path in (raw_named_gz, gz_without_suffix):
        np.testing.assert_array_equal(read_idx(path), TINY["t10k-labels-idx1-ubyte"])


def test_read_idx_without_kind_accepts_either(tmp_path):
    write_tiny(tmp_path)
    assert read_idx(tmp_path / "t10k-images-idx3-ubyte.gz").shape == (3, 28, 28)
    assert read_idx(tmp_path / "t10k-labels-idx1-ubyte.gz").shape == (3,)


IMAGES = TINY_RAW["train-images-idx3-ubyte"]
CORRUPT_CASES = {
    "empty file": (b"", "images", r"not an IDX file.*empty"),
    "bad magic": (b"\x00\x00\x08\x05" + IMAGES[4:], "images", r"not an IDX file.*00 00 08 05"),
    "html page": (b"<html>404</html>", "images", r"not an IDX file.*3c 68 74 6d"),
    "labels where images expected": (
        TINY_RAW["train-labels-idx1-ubyte"],
        "images",
        r"is an IDX labels file \(magic 0x00000801\) where images \(magic 0x00000803\)",
    ),
    "images where labels expected": (IMAGES, "labels", r"is an IDX images file"),
    "truncated header": (IMAGES[:9], "images", r"truncated inside its IDX header"),
    "truncated data": (IMAGES[:-5], "images", r"truncated: 5499 bytes, expected 5504"),
    "trailing bytes": (IMAGES + b"\x00", "images", r"too long: 5505 bytes, expected 5504"),
    "wrong image size": (
        idx_bytes(np.zeros((2, 32, 32), np.uint8)),
        "images",
        r"images of size \(32, 32\), expected \(28, 28\)",
    ),
    "truncated gzip": (
        gzip.compress(IMAGES)[:-100],
        "images",
        r"damaged gzip data.*truncated.*delete it",
    ),
    "gzip with bad CRC": (
        gzip.compress(IMAGES)[:-8] + b"\0\0\0\0" + gzip.compress(IMAGES)[-4:],
        "images",
        r"damaged gzip data \(CRC check failed",
    ),
}


@pytest.mark.parametrize("content, kind, message", CORRUPT_CASES.values(), ids=CORRUPT_CASES)
def test_read_idx_rejects_corrupt_files_naming_the_file(tmp_path, content, kind, message):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(CorruptFileError, match=message) as info:
        read_idx(path, kind)
    assert str(path) in str(info.value)
    assert isinstance(info.value, DataError)


# ---------------------------------------------------------------------------------------
# Finding local files
# ---------------------------------------------------------------------------------------


def test_load_finds_files_in_root_env_folder_and_cache(tmp_path, monkeypatch):
    spec = tiny_dataset()
    root = write_tiny(tmp_path / "root")
    images, labels = load_dataset(spec, "train", root=root, download=False)
    np.testing.assert_array_equal(images, TINY["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(labels, TINY["train-labels-idx1-ubyte"])

    write_tiny(tmp_path / "shared" / "tiny", compressed=False)
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path / "shared"))
    images, labels = load_dataset(spec, "test", download=False)
    assert images.shape == (3, 28, 28) and labels.shape == (3,)

    monkeypatch.delenv("MINIGAN_DATA")
    write_tiny(tmp_path / "xdg-cache" / "minigan" / "tiny")
    assert load_dataset(spec, "test", download=False)[0].shape == (3, 28, 28)


def test_search_order_is_root_env_system_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path / "shared"))
    spec = dataclasses.replace(tiny_dataset(), system_folders=("/usr/share/datasets/tiny",))
    assert data.search_folders(spec, tmp_path / "root") == [
        tmp_path / "root",
        tmp_path / "shared" / "tiny",
        Path("/usr/share/datasets/tiny"),
        tmp_path / "xdg-cache" / "minigan" / "tiny",
    ]
    assert data.search_folders(FASHION_MNIST)[1] == FASHION_SYSTEM_FOLDER
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.cache_folder(MNIST) == Path.home() / ".cache" / "minigan" / "mnist"


def test_unknown_split_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown split 'validation'.*'train', 'test'"):
        load_mnist("validation")


def test_local_file_with_wrong_checksum_is_rejected_not_used(tmp_path):
    root = write_tiny(tmp_path / "root")
    # A valid IDX file of the right shape, but not the file the checksum describes.
    altered = TINY["train-images-idx3-ubyte"].copy()
    altered[0, 0, 0] ^= 1
    bad = root / "train-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(idx_bytes(altered)))
    with pytest.raises(CorruptFileError) as info:
        load_dataset(tiny_dataset(), "train", root=root, download=False)
    message = str(info.value)
    assert f"{bad}: SHA-256 of its decompressed bytes is" in message
    assert "delete it" in message and "download=False" in message


def test_recompressed_local_copy_is_accepted(tmp_path):
    """Only the decompressed bytes count: a different gzip wrapper is fine."""
    root = tmp_path / "root"
    write_tiny(root)
    name = "train-images-idx3-ubyte.gz"
    (root / name).write_bytes(gzip.compress(TINY_RAW[name[:-3]], compresslevel=1, mtime=99))
    assert hashlib.md5((root / name).read_bytes()).hexdigest() != tiny_dataset().md5[name[:-3]]
    assert load_dataset(tiny_dataset(), "train", root=root, download=False)[0].shape == (7, 28, 28)


def test_bad_copy_is_reported_when_a_later_folder_has_a_good_one(tmp_path, monkeypatch):
    root = write_tiny(tmp_path / "root")
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    write_tiny(tmp_path / "shared" / "tiny")
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path / "shared"))
    with pytest.warns(UserWarning, match=r"root/t10k-labels-idx1-ubyte.gz: not an IDX file.*Using"):
        _, labels = load_dataset(tiny_dataset(), "test", root=root, download=False)
    np.testing.assert_array_equal(labels, TINY["t10k-labels-idx1-ubyte"])


# ---------------------------------------------------------------------------------------
# Downloads, from a real HTTP server on 127.0.0.1
# ---------------------------------------------------------------------------------------


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    """Serves /<mode>/<name>.gz: mode 'good', 'missing' (404), 'corrupt' (valid gzip and
    IDX, wrong content), 'html' (an error page with status 200), 'truncated' (hangs up
    halfway through)."""

    def do_GET(self):
        mode, _, file_name = self.path.strip("/").partition("/")
        self.server.requests.append(self.path)
        body = TINY_GZ.get(file_name.removesuffix(".gz"))
        if mode == "missing" or body is None:
            self.send_error(404)
            return
        if mode == "corrupt":
            altered = bytearray(TINY_RAW[file_name[:-3]])
            altered[-1] ^= 0xFF
            body = gzip.compress(bytes(altered))
        elif mode == "html":
            body = b"<html><body>Please log in</body></html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if mode == "truncated" else body)

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    httpd.requests = []
    # A short poll interval: shutdown() waits up to one interval.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(server, mode: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{mode}/"


@pytest.fixture
def dead_mirror() -> str:
    """A local port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def hanging_mirror():
    """A local port that takes connections into its backlog and never answers: what a
    mirror behind a broken proxy looks like (the connection opens, no byte comes)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"


def test_a_hanging_mirror_is_named_and_given_up_after_the_timeout(
    tmp_path, server, hanging_mirror, capsys
):
    start = time.perf_counter()
    mirrors = (hanging_mirror, url(server, "good"))
    images, _ = load_dataset(tiny_dataset(mirrors), "train", timeout=0.3)
    assert time.perf_counter() - start < 10  # two files, 0.3 s of waiting each
    np.testing.assert_array_equal(images, TINY["train-images-idx3-ubyte"])
    err = capsys.readouterr().err
    assert (
        f"Tiny: downloading {hanging_mirror}train-images-idx3-ubyte.gz (giving up after "
        f"0.3 s of silence; $MINIGAN_DOWNLOAD_TIMEOUT sets it)"
    ) in err
    assert f"Tiny: downloading {url(server, 'good')}train-images-idx3-ubyte.gz" in err


def test_the_download_timeout_comes_from_the_environment(tmp_path, monkeypatch, hanging_mirror):
    monkeypatch.setenv("MINIGAN_DOWNLOAD_TIMEOUT", "0.2")
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(tiny_dataset((hanging_mirror,)), "train")
    assert time.perf_counter() - start < 5
    assert (
        f"{hanging_mirror}train-images-idx3-ubyte.gz: no answer for 0.2 s, given up "
        f"($MINIGAN_DOWNLOAD_TIMEOUT sets the wait)"
    ) in str(info.value)
    assert list(tmp_path.iterdir()) == []  # the cache folder made for it is gone again


@pytest.mark.parametrize("value", ["soon", "0", "-1", "inf"])
def test_a_bad_download_timeout_is_refused_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("MINIGAN_DOWNLOAD_TIMEOUT", value)
    with pytest.raises(DataError, match=r"\$MINIGAN_DOWNLOAD_TIMEOUT must be a positive number"):
        load_dataset(tiny_dataset(()), "train")


def test_a_failed_download_removes_the_folders_it_made(tmp_path, dead_mirror):
    root = tmp_path / "mistyped" / "mnist"
    with pytest.raises(DatasetNotFoundError):
        load_dataset(tiny_dataset((dead_mirror,)), "train", root=root)
    assert list(tmp_path.iterdir()) == []


def test_download_tries_mirrors_until_one_serves_a_verified_copy(tmp_path, server, dead_mirror):
    mirrors = (
        dead_mirror,
        url(server, "missing"),
        url(server, "corrupt"),
        url(server, "html"),
        url(server, "good"),
    )
    images, labels = load_dataset(tiny_dataset(mirrors), "train")
    np.testing.assert_array_equal(images, TINY["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(labels, TINY["train-labels-idx1-ubyte"])
    cache = tmp_path / "xdg-cache" / "minigan" / "tiny"
    assert all_files(cache) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert (cache / "train-images-idx3-ubyte.gz").read_bytes() == TINY_GZ["train-images-idx3-ubyte"]
    # Loading again uses the cached copy: no new requests.
    count = len(server.requests)
    load_dataset(tiny_dataset(mirrors), "train")
    assert len(server.requests) == count


def test_download_goes_to_root_when_given(tmp_path, server):
    root = tmp_path / "root" / "new"
    load_dataset(tiny_dataset((url(server, "good"),)), "test", root=root)
    assert all_files(root) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert all_files(tmp_path / "xdg-cache") == []


def test_corrupt_and_truncated_downloads_never_land(tmp_path, server):
    mirrors = (url(server, "corrupt"), url(server, "truncated"))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(tiny_dataset(mirrors), "test")
    message = str(info.value)
    assert re.search(
        r"/corrupt/t10k-images-idx3-ubyte.gz: SHA-256 .*different file; "
        r"MD5 of the \.gz: [0-9a-f]{32}, published: [0-9a-f]{32}",
        message,
    )
    assert re.search(
        r"/truncated/t10k-images-idx3-ubyte.gz: transfer cut off after "
        r"\d+ of 2391 bytes",
        message,
    )
    assert all_files(tmp_path) == []  # neither the files nor any temporary file


def test_interrupted_download_leaves_no_partial_file(tmp_path, server, monkeypatch):
    class CtrlCProgressBar:  # stands in for tqdm: the user presses Ctrl-C mid-transfer
        def __init__(self, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            raise KeyboardInterrupt

    monkeypatch.setattr(data, "tqdm", CtrlCProgressBar)
    with pytest.raises(KeyboardInterrupt):
        load_dataset(tiny_dataset((url(server, "good"),)), "train")
    assert all_files(tmp_path) == []


def test_bad_local_copy_is_replaced_by_a_download_with_a_warning(tmp_path, server):
    cache = write_tiny(tmp_path / "xdg-cache" / "minigan" / "tiny")
    bad = cache / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(TINY_GZ["train-labels-idx1-ubyte"][:20])
    with pytest.warns(UserWarning, match=r"damaged gzip data.*Downloading a fresh copy into"):
        _, labels = load_dataset(tiny_dataset((url(server, "good"),)), "train")
    np.testing.assert_array_equal(labels, TINY["train-labels-idx1-ubyte"])
    assert bad.read_bytes() == TINY_GZ["train-labels-idx1-ubyte"]


def test_bad_local_copy_and_failed_download_raise_corrupt_file_error(tmp_path, dead_mirror):
    root = write_tiny(tmp_path / "root")
    (root / "train-images-idx3-ubyte.gz").write_bytes(TINY_GZ["train-labels-idx1-ubyte"])
    with pytest.warns(UserWarning), pytest.raises(CorruptFileError) as info:
        load_dataset(tiny_dataset((dead_mirror,)), "train", root=root)
    assert "is an IDX labels file" in str(info.value)
    assert "Connection refused" in str(info.value)


def test_no_files_and_no_network_give_one_clear_error(tmp_path, monkeypatch, dead_mirror):
    root, shared = tmp_path / "root", tmp_path / "shared"
    root.mkdir()
    shared.mkdir()
    monkeypatch.setenv("MINIGAN_DATA", str(shared))
    spec = tiny_dataset((dead_mirror, dead_mirror + "other/"))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(spec, "train", root=root)
    message = str(info.value)
    for folder in (root, shared / "tiny", tmp_path / "xdg-cache" / "minigan" / "tiny"):
        assert f"\n  {folder}" in message
    assert "(from $MINIGAN_DATA)" in message and "set MINIGAN_DATA" in message
    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        assert name in message
    assert f"{dead_mirror}train-images-idx3-ubyte.gz: <urlopen error" in message
    assert f"{dead_mirror}other/train-images-idx3-ubyte.gz: <urlopen error" in message
    assert all_files(tmp_path) == []


def test_download_false_never_touches_the_network(tmp_path, server):
    with pytest.raises(DatasetNotFoundError, match=r"Downloading is off \(download=False\)"):
        load_dataset(tiny_dataset((url(server, "good"),)), "train", download=False)
    assert server.requests == []


# ---------------------------------------------------------------------------------------
# The real datasets, when present
# ---------------------------------------------------------------------------------------

MNIST_COUNTS = {
    "train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
}


@pytest.fixture
def mnist_env(monkeypatch):
    if not REAL_DATA or not (Path(REAL_DATA) / "mnist").is_dir():
        pytest.skip("real MNIST not available: set MINIGAN_DATA to a folder holding mnist/")
    monkeypatch.setenv("MINIGAN_DATA", REAL_DATA)
    return Path(REAL_DATA) / "mnist"


@pytest.mark.parametrize("split, n", [("train", 60000), ("test", 10000)])
def test_real_mnist_shapes_and_class_counts(mnist_env, split, n):
    images, labels = load_mnist(split, download=False)
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == MNIST_COUNTS[split]
    assert images.min() == 0 and images.max() == 255


def test_mnist_checksums_match_the_data_readme(mnist_env):
    readme = (mnist_env / "README.md").read_text()
    for name in SPLITS["train"] + SPLITS["test"]:
        assert re.search(rf"{name}\s+{MNIST.sha256[name]}", readme)
        assert re.search(rf"{name}\.gz\s+{MNIST.md5[name]}", readme)
        digest = hashlib.sha256(gzip.decompress((mnist_env / f"{name}.gz").read_bytes()))
        assert digest.hexdigest() == MNIST.sha256[name]


@pytest.mark.parametrize("split, n", [("train", 60000), ("test", 10000)])
def test_real_fashion_mnist_from_the_debian_package(split, n):
    if not FASHION_SYSTEM_FOLDER.is_dir():
        pytest.skip(
            f"Fashion-MNIST not installed in {FASHION_SYSTEM_FOLDER} "
            "(apt-get install dataset-fashion-mnist)"
        )
    images, labels = load_fashion_mnist(split, download=False)
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [n // 10] * 10


# ---------------------------------------------------------------------------------------
# to_gan_range
# ---------------------------------------------------------------------------------------

ALL_VALUES = np.resize(np.arange(256, dtype=np.uint8), (2, 28, 28))  # 0..255, repeated


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_to_gan_range_maps_0_255_exactly_to_minus1_1(dtype):
    x = to_gan_range(ALL_VALUES, dtype=dtype)
    assert x.dtype == dtype and x.shape == (2, 784)
    assert x.min() == -1 and x.max() == 1
    reference = ALL_VALUES.reshape(2, 784).astype(np.float64) / 127.5 - 1
    np.testing.assert_allclose(x, reference, rtol=0, atol=np.finfo(dtype).eps)


def test_to_gan_range_keeps_image_layout_for_conv_nets():
    x = to_gan_range(ALL_VALUES, flatten=False)
    assert x.shape == (2, 1, 28, 28)
    np.testing.assert_array_equal(x.reshape(2, 784), to_gan_range(ALL_VALUES))


def test_to_gan_range_makes_no_float64_temporary():
    images = np.zeros((2000, 28, 28), np.uint8)
    tracemalloc.start()
    to_gan_range(images)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    float32_size = images.size * 4
    assert peak < 1.25 * float32_size  # a float64 temporary alone would be 2x


@pytest.mark.parametrize(
    "images, dtype, message",
    [
        (
            np.zeros((2, 28, 28), np.float32),
            np.float32,
            r"expected uint8 images \(N, H, W\), got float32",
        ),
        (np.zeros((2, 784), np.uint8), np.float32, r"got uint8 \(2, 784\)"),
        (np.zeros((2, 28, 28), np.uint8), np.int32, r"dtype must be floating, got int32"),
    ],
)
def test_to_gan_range_rejects_bad_input(images, dtype, message):
    with pytest.raises(ValueError, match=message):
        to_gan_range(images, dtype=dtype)


# ---------------------------------------------------------------------------------------
# BatchIterator
# ---------------------------------------------------------------------------------------


def epoch_ids(loader) -> list[list[int]]:
    """The example ids of each batch of one epoch (the data are the ids themselves)."""
    return [
        np.asarray(batch if not isinstance(batch, tuple) else batch[1]).tolist() for batch in loader
    ]


def test_each_example_appears_exactly_once_per_epoch():
    ids = np.arange(103)
    loader = BatchIterator(ids, batch_size=10, drop_last=False)
    for _ in range(3):
        batches = epoch_ids(loader)
        assert [len(b) for b in batches] == [10] * 10 + [3]
        assert sorted(np.concatenate(batches).tolist()) == list(range(103))


def test_drop_last_drops_only_the_partial_batch():
    loader = BatchIterator(np.arange(103), batch_size=10)
    assert len(loader) == 10
    batches = epoch_ids(loader)
    assert [len(b) for b in batches] == [10] * 10
    assert len(set(np.concatenate(batches).tolist())) == 100
    assert len(BatchIterator(np.arange(100), batch_size=10, drop_last=False)) == 10
    # Without drop_last, a batch larger than the data is fine: one short batch.
    assert epoch_ids(BatchIterator(np.arange(5), batch_size=6, drop_last=False, shuffle=False)) == [
        [0, 1, 2, 3, 4]
    ]


def test_order_is_deterministic_per_seed_and_changes_every_epoch():
    ids = np.arange(50)
    a, b, c = (BatchIterator(ids, batch_size=5, seed=s) for s in (7, 7, 8))
    first_a, first_b, first_c = epoch_ids(a), epoch_ids(b), epoch_ids(c)
    assert first_a == first_b
    assert first_a != first_c
    assert epoch_ids(a) != first_a
    assert epoch_ids(BatchIterator(ids, batch_size=5, shuffle=False))[0] == [0, 1, 2, 3, 4]


def test_tuple_mode_keeps_images_and_labels_aligned():
    images = to_gan_range(TINY["train-images-idx3-ubyte"])
    ids = np.arange(7)
    loader = BatchIterator(images, ids, batch_size=3)
    assert len(loader) == 2
    for x, i in loader:
        assert x.shape == (3, 784) and x.dtype == np.float32
        assert -1 <= x.min() and x.max() <= 1
        np.testing.assert_array_equal(x, images[i])


def test_state_dict_round_trip_replays_the_next_epochs():
    ids = np.arange(40)
    loader = BatchIterator(ids, batch_size=4, seed=3)
    epoch_ids(loader)
    state = loader.state_dict()
    expected = [epoch_ids(loader), epoch_ids(loader)]
    resumed = BatchIterator(ids, batch_size=4, seed=999)
    resumed.load_state_dict(state)
    assert [epoch_ids(resumed), epoch_ids(resumed)] == expected
    with pytest.raises(ValueError, match="state is for 40 examples, this loader has 39"):
        BatchIterator(ids[:39], batch_size=4).load_state_dict(state)


@pytest.mark.parametrize(
    "arrays, kwargs, message",
    [
        ((), {"batch_size": 2}, "at least one array"),
        ((np.zeros(0),), {"batch_size": 2}, "arrays are empty"),
        ((np.float32(3),), {"batch_size": 1}, "first \\(example\\) dimension"),
        (
            (np.zeros((5, 2)), np.zeros(4)),
            {"batch_size": 2},
            r"differ in length: shapes \(5, 2\), \(4,\)",
        ),
        ((np.zeros(5),), {"batch_size": 0}, "batch_size must be a positive int, got 0"),
        ((np.zeros(5),), {"batch_size": 2.0}, "positive int, got 2.0"),
        ((np.zeros(5),), {"batch_size": True}, "positive int, got True"),
        ((np.zeros(5),), {"batch_size": 6}, "batch_size 6 > 5 examples with drop_last=True"),
    ],
)
def test_batch_iterator_validates_arguments(arrays, kwargs, message):
    with pytest.raises(ValueError, match=message):
        BatchIterator(*arrays, **kwargs)


def cupy_with_gpu():
    try:
        return get_backend("cupy").xp
    except BackendUnavailableError:  # CuPy not installed, or no usable GPU
        return None


@pytest.mark.gpu
@pytest.mark.skipif(cupy_with_gpu() is None, reason="needs CuPy and a CUDA GPU")
def test_cupy_batches_equal_numpy_batches():
    cupy = cupy_with_gpu()
    images = to_gan_range(TINY["train-images-idx3-ubyte"])
    ids = np.arange(7)
    host = list(BatchIterator(images, ids, batch_size=2, seed=5))
    device = list(BatchIterator(images, ids, batch_size=2, seed=5, backend="cupy"))
    assert len(host) == len(device) == 3
    for (hx, hi), (dx, di) in zip(host, device):
        assert isinstance(dx, cupy.ndarray) and dx.dtype == np.float32
        np.testing.assert_array_equal(hx, cupy.asnumpy(dx))
        np.testing.assert_array_equal(hi, cupy.asnumpy(di))
    gpu_scaled = to_gan_range(cupy.asarray(TINY["train-images-idx3-ubyte"]))
    np.testing.assert_array_equal(cupy.asnumpy(gpu_scaled), images)


def test_images_and_labels_of_different_lengths_are_refused(tmp_path):
    """Each file verifies on its own (checksums of these very bytes), yet they disagree."""
    short_labels = idx_bytes(TINY["train-labels-idx1-ubyte"][:5])
    raw = dict(TINY_RAW, **{"train-labels-idx1-ubyte": short_labels})
    spec = Dataset(
        title="Tiny",
        folder="tiny",
        mirrors=(),
        sha256={name: hashlib.sha256(content).hexdigest() for name, content in raw.items()},
    )
    root = tmp_path / "root"
    root.mkdir()
    for name, content in raw.items():
        (root / name).write_bytes(content)
    with pytest.raises(DataError, match=r"Tiny train: 7 images but 5 labels"):
        load_dataset(spec, "train", root=root, download=False)
