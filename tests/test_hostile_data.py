"""Hostile data and checkpoints (issue 25, items 5, 6, 8, 9, 12, 15 and 16): pictures of
every kind load with their real values, a tampered, damaged or oversized checkpoint is
refused in one line naming the file and the field before anything is used, and a run's
data may not change under it.

The command-line cases run examples/mnist_gan.py in-process, as tests/test_hostile_cli.py
does, on a few hundred images (real MNIST or synthetic digits).
"""

import io
import json
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

# The example module, its small-run flags and its data set-up (an autouse fixture, which
# applies here because it is imported here).
from conftest import error_line
from test_mnist_gan_example import (  # noqa: F401
    SMALL,
    example,
    mnist_or_synthetic,
    real_mnist_available,
    run,
)

from minigan import checkpoint, data, images, runs
from minigan.checkpoint import CheckpointError, load_checkpoint
from minigan.data import DataError
from minigan.images import load_image_folder, write_shape_images

ELSEWHERE = "point to another checkpoint (an earlier one), or start a new run"
CHANGED = f"the file was changed or damaged; {ELSEWHERE}"


@pytest.fixture
def trained(tmp_path) -> Path:
    """A run folder holding a 1-epoch run."""
    out = tmp_path / "run"
    assert run("--epochs", "1", "--out", str(out)) == 0
    return out


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def write_members(path: Path, contents: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in contents.items():
            archive.writestr(name, content)


def tamper(path: Path, change) -> None:
    """Rewrite a checkpoint as a person with NumPy and an editor could: ``change(meta,
    arrays)`` edits the JSON part (``meta["tree"]``) and the arrays (by path) in place,
    or returns the JSON text to store instead."""
    contents = members(path)
    arrays = {
        name.removesuffix(".npy"): np.load(io.BytesIO(content))
        for name, content in contents.items()
    }
    meta = json.loads(arrays.pop("__meta__").tobytes())
    text = change(meta, arrays) or json.dumps(meta)
    arrays["__meta__"] = np.frombuffer(text.encode(), np.uint8)
    write_members(path, {f"{name}.npy": npy(array) for name, array in arrays.items()})


def sample(checkpoint_path: Path, output: Path) -> int:
    return example.main(
        ["--sample", "10", "--checkpoint", str(checkpoint_path), "--output", str(output)]
    )


# --- 5. every kind of picture loads with its real values -------------------------------------


def picture(kind: str):
    """A 4x4 picture of ``kind`` (a Pillow image and how to save it), and the values it
    must load as: (channels, 4, 4) in [-1, 1]."""
    from PIL import Image

    unit = np.zeros((3, 4, 4))
    if kind == "16-bit grey":  # 0 .. 65535: a PNG with 16 bits per pixel
        values = np.arange(16, dtype=np.uint16).reshape(4, 4) * 4369  # 0, 4369, ..., 65535
        return Image.fromarray(values), "PNG", values[None] / 65535 * 2 - 1
    if kind.startswith("palette"):
        values = np.arange(16, dtype=np.uint8).reshape(4, 4) % 4
        image = Image.fromarray(values, "P")
        colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]])
        image.putpalette(colours.flatten().tolist())
        unit = colours[values].transpose(2, 0, 1) / 255
        if kind == "palette with transparency":  # colour 3 is transparent: white shows
            image.info["transparency"] = 3
            unit[:, values == 3] = 1.0
        return image, "PNG", unit * 2 - 1
    if kind == "grey and alpha":  # grey 200, half transparent: over white, 200 / 2 + 255 / 2
        image = Image.fromarray(np.full((4, 4, 2), [200, 128], np.uint8), "LA")
        return image, "PNG", np.full((1, 4, 4), (200 * 128 + 255 * 127) / 255) / 127.5 - 1
    if kind == "CMYK JPEG":
        rgb = Image.fromarray(np.full((4, 4, 3), [200, 100, 50], np.uint8))
        return (
            rgb.convert("CMYK"),
            "JPEG",
            np.full((3, 4, 4), [[[200]], [[100]], [[50]]]) / 127.5 - 1,
        )
    if kind == "RGBA":  # left half opaque, right half transparent: white shows
        pixels = np.full((4, 4, 4), [10, 20, 30, 255], np.uint8)
        pixels[:, 2:, 3] = 0
        unit[:] = np.array([10, 20, 30])[:, None, None] / 255
        unit[:, :, 2:] = 1.0
        return Image.fromarray(pixels, "RGBA"), "PNG", unit * 2 - 1
    assert kind == "1-bit"
    values = np.eye(4, dtype=bool)
    return Image.fromarray(values), "PNG", values[None] * 2.0 - 1


@pytest.mark.parametrize(
    "kind",
    ["16-bit grey", "palette", "palette with transparency", "grey and alpha", "CMYK JPEG",
     "RGBA", "1-bit"],
)  # fmt: skip
def test_every_kind_of_picture_loads_with_its_real_values_and_channels(tmp_path, kind):
    image, format, expected = picture(kind)
    folder = tmp_path / "pictures"
    folder.mkdir()
    image.save(folder / f"one.{'jpg' if format == 'JPEG' else 'png'}", format=format, quality=95)
    loaded = load_image_folder(folder, image_size=4)[0]
    assert loaded.shape == expected.shape, kind  # grey stays one channel, colour three
    tolerance = (4 if format == "JPEG" else 1) / 127.5  # one step of 8 bits (JPEG: lossy)
    np.testing.assert_allclose(loaded, expected, atol=tolerance + 1e-6, err_msg=kind)


def test_a_16_bit_grey_png_is_scaled_not_clipped_at_255(tmp_path):
    """A 16-bit scan of mid grey (32768 of 65535) is mid grey, not white."""
    from PIL import Image

    folder = tmp_path / "scans"
    folder.mkdir()
    Image.fromarray(np.full((8, 8), 32768, np.uint16)).save(folder / "scan.png")
    loaded = load_image_folder(folder, image_size=8)
    assert loaded.shape == (1, 1, 8, 8)
    mid = np.float32(128) / np.float32(127.5) - np.float32(1)  # as to_gan_range computes it
    assert np.all(loaded == mid)  # 32768 * 255 / 65535 = 127.5, rounded to 128


# --- 6. non-finite weights are refused where a checkpoint is loaded ---------------------------


def test_nan_weights_are_refused_by_sample_and_resume_naming_the_array(trained, tmp_path, capsys):
    path = trained / "checkpoint.npz"

    def poison(meta, arrays):
        arrays["gan/generator/0.weight"][0, :3] = [np.nan, np.inf, -np.inf]

    tamper(path, poison)
    size = load_checkpoint(path)["gan"]["generator"]["0.weight"].size
    said = (
        f"error: {path}: its array gan/generator/0.weight holds 3 NaN or infinite values "
        f"(of {size}): the file was changed or damaged, or saved from a run that had "
        f"diverged; {ELSEWHERE}"
    )
    capsys.readouterr()
    assert sample(path, tmp_path / "s.npy") == 1
    assert error_line(capsys) == said
    assert not (tmp_path / "s.npy").exists()
    assert run("--epochs", "2", "--out", str(trained), "--resume") == 1
    assert error_line(capsys) == said  # not "lower --lr"


# --- 8. sizes are checked before anything is read ---------------------------------------------


def test_a_zip_bomb_checkpoint_is_refused_before_it_is_decompressed(trained, tmp_path, capsys):
    """64 MB of zeros, compressed to 64 kB, where the model holds 32 x 64 floats."""
    path = trained / "checkpoint.npz"
    contents = members(path)
    del contents["gan/generator/0.weight.npy"]
    write_members(path, contents)
    header = io.BytesIO()
    n = 16 << 20  # float32s: 64 MB
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (n,)})  # fmt: skip
    with (
        zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive,
        archive.open("gan/generator/0.weight.npy", "w", force_zip64=True) as f,
    ):
        f.write(header.getvalue())
        for _ in range(64):
            f.write(bytes(1 << 20))
    assert path.stat().st_size < 2 << 20
    capsys.readouterr()
    tracemalloc.start()
    try:
        code = sample(path, tmp_path / "s.npy")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    line = error_line(capsys)
    assert code == 1
    assert line.startswith(f"error: {path} declares ")
    assert "of arrays (the largest, gan/generator/0.weight, 67.1 MB), more than the " in line
    assert line.endswith(
        f"the model it describes can hold: it was changed or damaged, and nothing of it "
        f"was read; {ELSEWHERE}"
    )
    assert peak < 32e6  # nothing was decompressed


def test_an_array_declaring_a_trillion_floats_is_refused_before_allocating(trained):
    path = trained / "checkpoint.npz"
    contents = members(path)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10**12,)})  # fmt: skip
    contents["gan/generator/0.weight.npy"] = header.getvalue() + bytes(4096)
    write_members(path, contents)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(info.value) == (
        f"{path}: its array gan/generator/0.weight declares (1000000000000,) float32 "
        f"(4,000.0 GB) and holds 0.0 MB: {CHANGED}"
    )


def test_a_checkpoint_larger_than_the_memory_available_is_not_read(trained, monkeypatch):
    path = trained / "checkpoint.npz"
    monkeypatch.setattr(checkpoint, "available_memory", lambda: 100_000, raising=False)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path} declares ")
    assert message.endswith(
        f"and this machine has 0.1 MB of memory available: it was not read; free some "
        f"memory, or {ELSEWHERE}"
    )


def test_a_folder_too_big_for_memory_is_refused_before_decoding(tmp_path, monkeypatch):
    folder = tmp_path / "pictures"
    write_shape_images(folder, 4)
    monkeypatch.setattr(images, "available_memory", lambda: 50_000_000, raising=False)

    def no_decoding(*args):
        raise AssertionError("a picture was decoded before the memory was checked")

    monkeypatch.setattr(images, "_read_square", no_decoding)
    with pytest.raises(DataError) as info:  # the command line's --image-size 1200
        load_image_folder(folder, image_size=1200)
    assert str(info.value) == (
        f"load_image_folder: the 4 images under {folder} at 1200x1200 need about 0.1 GB of "
        f"memory, and this machine has 0.1 GB available; choose a smaller image_size "
        f"(--image-size) or a folder of fewer images"
    )
    # 4 x 1200 x 1200 x (3 bytes of RGB + 3 bytes of planes + 3 float32s)
    assert images.folder_memory_bytes(4, 1200) == 4 * 1200 * 1200 * 18


# --- 9. an explicit --data-dir serves, or is an error -----------------------------------------


def test_a_data_dir_that_cannot_serve_is_refused_naming_what_it_lacks(tmp_path, capsys):
    passwd, empty, out = tmp_path / "passwd", tmp_path / "empty", tmp_path / "run"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    empty.mkdir()
    cache = data.cache_folder(data.MNIST)  # the test's own XDG_CACHE_HOME
    files = "train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz"
    elsewhere = (
        f"or leave out --data-dir to use $MINIGAN_DATA/mnist or the cache ({cache}, "
        f"downloading if needed)"
    )
    capsys.readouterr()
    for folder, said in [
        (passwd, f"is a file, not a folder of MNIST files; give the folder holding {files}"),
        (empty, ("holds no MNIST training set (no train-images-idx3-ubyte.gz, no "
                 f"train-labels-idx1-ubyte.gz, with or without .gz); put {files} there")),
    ]:  # fmt: skip
        assert run("--epochs", "1", "--out", str(out), "--data-dir", str(folder)) == 1
        assert error_line(capsys) == f"error: --data-dir {folder} {said}, {elsewhere}"
        assert not out.exists()  # refused before any work
    with pytest.raises(DataError) as info:  # the library, too, takes no file for a folder
        data.load_dataset(data.MNIST, root=passwd, download=False)
    assert str(info.value) == f"MNIST: root {passwd} is a file; give the folder of the files"


@pytest.mark.skipif(not real_mnist_available(), reason="needs MNIST in $MINIGAN_DATA/mnist")
def test_a_data_dir_holding_mnist_serves(tmp_path):
    import os

    folder = Path(os.environ["MINIGAN_DATA"]) / "mnist"
    assert run("--epochs", "1", "--out", str(tmp_path / "run"), "--data-dir", str(folder)) == 0


# --- 12. tampered metadata is one line, not a traceback --------------------------------------


@pytest.mark.parametrize(
    "change, said",
    [
        (
            lambda meta, arrays: meta["tree"].update(gan=5),
            "its metadata holds gan = 5, where the array gan/d_optimizer/m needs a group",
        ),
        (
            lambda meta, arrays: (
                '{"format": "minigan-checkpoint-1", "tree": {"gan": '
                + "[" * 100_000
                + "]" * 100_000
                + "}}"
            ),
            "its metadata is nested deeper than Python can read (a checkpoint's, at most 32)",
        ),
        (
            lambda meta, arrays: meta["tree"].update(history="tampered"),
            "history must be a list of rows, got 'tampered'",
        ),
    ],
    ids=["gan-is-a-number", "nested-deep", "history-is-text"],
)
def test_a_checkpoint_with_metadata_of_the_wrong_type_is_one_line(trained, capsys, change, said):
    path = trained / "checkpoint.npz"
    tamper(path, change)
    capsys.readouterr()
    assert run("--epochs", "2", "--out", str(trained), "--resume") == 1
    line = error_line(capsys)
    if said.startswith("its metadata holds gan = 5"):  # whichever array comes first
        assert line.startswith(f"error: {path}: its metadata holds gan = 5, where the array ")
        assert line.endswith(f" needs a group: {CHANGED}")
    else:
        assert line == f"error: {path}: {said}: {CHANGED}"


# --- 15. a tampered value is named, with its checkpoint ---------------------------------------


@pytest.mark.parametrize(
    "field, value, said",
    [
        ("gan/g_optimizer/lr", float("nan"), "must be a number >= 0, got nan"),
        ("gan/d_optimizer/lr", -1, "must be a number >= 0, got -1"),
        ("gan/g_optimizer/t", "x", "must be a count (an integer >= 0), got 'x'"),
        ("epoch", "x", "must be a count (an integer >= 0), got 'x'"),
        ("loader/num_examples", "x", "must be a positive integer, got 'x'"),
        ("config/hidden", "x", "must be an integer, got 'x'"),
        ("config/lr", float("nan"), "must be a number, got nan"),
    ],
)
def test_a_tampered_value_is_refused_naming_the_checkpoint_and_the_field(
    trained, capsys, field, value, said
):
    path = trained / "checkpoint.npz"

    def change(meta, arrays):
        *parents, leaf = field.split("/")
        node = meta["tree"]
        for parent in parents:
            node = node[parent]
        node[leaf] = value

    tamper(path, change)
    capsys.readouterr()
    assert run("--epochs", "2", "--out", str(trained), "--resume") == 1
    assert error_line(capsys) == f"error: {path}: {field} {said}: {CHANGED}"


def test_an_image_shape_that_does_not_fit_the_config_is_named(trained, tmp_path, capsys):
    """Sampling reshaped 10 x 784 values into (1, 28, 29): 'cannot reshape array of size 7840'."""
    path = trained / "checkpoint.npz"
    tamper(path, lambda meta, arrays: meta["tree"].update(image_shape=[1, 28, 29]))
    capsys.readouterr()
    assert sample(path, tmp_path / "s.npy") == 1
    assert error_line(capsys) == (
        f"error: {path}: image_shape [1, 28, 29] does not fit its config (config/image_size "
        f"is 784, not 812): {CHANGED}"
    )


# --- 16. a run's data may not change under it --------------------------------------------------


def folder_run(folder: Path, out: Path, *flags: str) -> int:
    return example.main(
        ["--dataset", f"folder:{folder}", "--image-size", "16", "--batch-size", "4",
         "--hidden", "32", "--log-every", "2", "--out", str(out), *flags]
    )  # fmt: skip


def test_a_changed_image_folder_is_named_as_changed_data_on_resume(tmp_path, capsys):
    from PIL import Image

    folder, out = tmp_path / "pictures", tmp_path / "run"
    files = write_shape_images(folder, 12)
    assert folder_run(folder, out, "--epochs", "1") == 0
    path = out / "checkpoint.npz"
    advice = (
        "the data changed since the checkpoint. --resume continues a run on its own data: "
        "put the data back as it was, or start a new run in another --out"
    )
    for file in files[:3]:  # shrunk: once "BatchIterator: state is for 12 examples"
        file.unlink()
    capsys.readouterr()
    assert folder_run(folder, out, "--epochs", "2", "--resume") == 1
    assert error_line(capsys) == (
        f"error: {path} was trained on 12 images of 3x16x16 from folder:{folder}, which "
        f"now gives 9 images of 3x16x16: {advice}"
    )
    for file in files[3:]:  # all grey now: once "a different architecture or version"
        with Image.open(file) as image:
            grey = image.convert("L")
        grey.save(file)
    assert folder_run(folder, out, "--epochs", "2", "--resume") == 1
    assert error_line(capsys) == (
        f"error: {path} was trained on 12 images of 3x16x16 from folder:{folder}, which "
        f"now gives 9 images of 1x16x16: {advice}"
    )


# --- what stays as it was -------------------------------------------------------------------


def test_a_runs_own_checkpoint_passes_every_check_unchanged(trained):
    path = trained / "checkpoint.npz"
    state = runs.load_run(path)
    assert state["epoch"] == 1 and np.isfinite(state["gan"]["generator"]["0.weight"]).all()
    assert run("--epochs", "2", "--out", str(trained), "--resume") == 0


def test_the_size_limit_of_a_run_holds_every_models_state():
    """``run_state_bytes`` is an upper bound: no model's real state comes near it."""
    from minigan.models import MODELS

    for name, cls in MODELS.items():
        gan = cls(cls.default_config(), seed=0)
        state = {"gan": gan.state_dict(), "config": gan.config.to_dict()}
        held = sum(a.nbytes for _, a in checkpoint._arrays(state["gan"], "gan"))
        limit = checkpoint.run_state_bytes(json.loads(json.dumps(state, default=lambda a: None)))
        assert held < limit / 2, name


# --- review: tampered names, damaged members, unknown models ---------------------------------


def test_a_model_name_of_the_wrong_type_is_one_line(trained, capsys):
    path = trained / "checkpoint.npz"
    tamper(path, lambda meta, arrays: meta["tree"]["gan"].update(model=["gan"]))
    capsys.readouterr()
    assert run("--epochs", "2", "--out", str(trained), "--resume") == 1
    assert error_line(capsys).startswith(f"error: {path}")  # not a TypeError traceback


def test_a_damaged_compressed_member_is_one_line(trained, capsys):
    """A DEFLATE stream with flipped bytes makes zlib fail, deep inside zipfile."""
    path = trained / "checkpoint.npz"
    contents = members(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in contents.items():
            archive.writestr(name, content)
    raw = bytearray(path.read_bytes())
    start = raw.index(b"gan/generator/0.weight.npy") + 200  # inside that member's data
    raw[start : start + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    capsys.readouterr()
    assert run("--epochs", "2", "--out", str(trained), "--resume") == 1
    line = error_line(capsys)
    assert line.startswith(f"error: {path} is not a readable minigan checkpoint (")


def test_a_checkpoint_of_an_unknown_model_is_not_decompressed(trained):
    """Without a model to size it, a run's checkpoint may hold small arrays only."""
    tree = {"gan": {"model": "no-such-model"}, "config": {}}
    assert checkpoint.run_state_bytes(tree) == checkpoint.RUN_EXTRA_BYTES
    assert checkpoint.run_state_bytes({"gan": 5}) == checkpoint.RUN_EXTRA_BYTES


def test_a_tampered_loader_state_names_the_checkpoint_and_the_field(trained, capsys):
    path = trained / "checkpoint.npz"
    tamper(path, lambda meta, arrays: meta["tree"]["loader"]["rng"].update(bit_generator="MT"))
    capsys.readouterr()
    assert run("--epochs", "2", "--out", str(trained), "--resume") == 1
    line = error_line(capsys)
    assert line.startswith(f"error: {path}: loader (BatchIterator: ")
    assert line.endswith("): it was changed or damaged; start a new run")


def test_a_data_dir_must_hold_the_test_set_when_the_run_reads_it(tmp_path, capsys):
    """SGAN reports its test error and --eval-every trains a classifier on the test split:
    a --data-dir holding only the training files would send them elsewhere without a
    word. (Empty stand-ins: the folder is refused before any file is read.)"""
    only_train, out = tmp_path / "only-train", tmp_path / "run"
    only_train.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (only_train / name).write_bytes(b"")
    capsys.readouterr()
    for flags in (["--model", "sgan"], ["--eval-every", "1"]):
        code = example.main(["--epochs", "1", "--out", str(out), "--data-dir", str(only_train),
                             *flags])  # fmt: skip
        line = error_line(capsys)
        assert code == 1
        assert line.startswith(
            f"error: --data-dir {only_train} holds no MNIST test set (no "
            f"t10k-images-idx3-ubyte.gz, no t10k-labels-idx1-ubyte.gz, with or without .gz)"
        )
        assert not out.exists()
