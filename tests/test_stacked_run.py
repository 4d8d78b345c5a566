"""examples/mnist_gan.py --dataset stacked-mnist end to end: the image models on 3x28x28
triples of digits, RGB pictures, --eval-every's modes and KL, a bit-identical resume,
--sample N as (N, 3, 28, 28) in [0, 1], evaluate.py --stacked, and the one-line refusals.

The classifier is a stand-in here (a digit from each channel's ink), so that no test
trains or needs the cached MNIST classifier; tests/test_mode_pieces.py checks the real
one reads the channels right."""

import collections
import json
import math
import os
import re
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import error_line, load_example, run_twice_and_resume, sample_with_image_shape
from fake_cupy import ImplicitTransferError
from PIL import Image

import minigan.data
from minigan import runs, stacked
from minigan.backend import get_backend
from minigan.checkpoint import load_checkpoint
from minigan.metrics import modes
from minigan.metrics.classifier import MNIST, build_classifier
from minigan.metrics.evaluator import Evaluator

example = load_example("mnist_gan", "mnist_gan_stacked")
evaluate = load_example("evaluate", "evaluate_stacked")

TINY_DCGAN = ["--model", "dcgan", "--base-channels", "4", "--batch-size", "16",
              "--d-fc-width", "8", "--g-fc-width", "8", "--g-full-res-channels", "4"]  # fmt: skip
SHORT = ["--dataset", "stacked-mnist", "--train-size", "64", "--log-every", "2"]


def mnist_available() -> bool:
    root = os.environ.get("MINIGAN_DATA")
    return bool(root) and (Path(root) / "mnist" / "train-images-idx3-ubyte.gz").is_file()


needs_mnist = pytest.mark.skipif(
    not mnist_available(), reason="Stacked MNIST is drawn from MNIST: needs $MINIGAN_DATA/mnist"
)


@pytest.fixture
def ink_classifier(monkeypatch):
    """The MNIST classifier replaced by a stand-in: a channel's 'digit' is its ink (mean
    pixel) in tenths, so a run's measures are computed quickly and without a cache."""
    fake = type("Fake", (), {"model": None, "data": None, "info": {"test_accuracy": 0.5}})()

    def classify(model, pixels, data=None):
        digit = np.minimum((pixels.mean(axis=1) * 10).astype(int), 9)
        return np.eye(10)[digit], None

    monkeypatch.setattr(modes, "classify", classify)
    monkeypatch.setattr(Evaluator, "load_or_train", classmethod(lambda cls, *a, **k: fake))
    return fake


@pytest.mark.parametrize("model", stacked.MODELS)
def test_each_image_model_plans_3x28x28_triples_and_the_papers_25600(model):
    plan = runs.plan_new_run(example.parse_args(["--model", model, "--dataset", "stacked-mnist"]))
    assert plan.image_shape == (3, 28, 28) and plan.train_size == stacked.TRAIN_IMAGES
    assert plan.config.image_size == (28 if model == "dcgan" else 3 * 28 * 28)
    if model == "dcgan":
        assert plan.config.channels == 3
    sized = ["--model", model, "--dataset", "stacked-mnist", "--train-size", "128000"]
    assert runs.plan_new_run(example.parse_args(sized)).train_size == 128000  # not capped


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--model", "cgan"], ("error: --dataset stacked-mnist trains the unconditional image "
         "models (gan, dcgan, lsgan, wgan, wgan-gp); --model cgan cannot learn from it")),
        (["--model", "sgan"], "--model sgan cannot learn from it"),
        (["--model", "cyclegan"], "--model cyclegan cannot learn from it"),
        (["--model", "stackgan"], "--model stackgan cannot learn from it"),
        (["--model", "wgan-gp", "--arch", "points"], ("--dataset stacked-mnist holds images: "
         "drop --arch points")),
        (["--image-size", "32"], "stacked-mnist images are 28x28"),
    ],
)  # fmt: skip
def test_what_stacked_mnist_cannot_take_is_refused_in_one_line(tmp_path, capsys, flags, said):
    out = tmp_path / "run"
    assert example.main(["--dataset", "stacked-mnist", *flags, "--out", str(out)]) == 1
    assert said in error_line(capsys)
    assert not out.exists()


@needs_mnist
def test_a_dcgan_run_draws_rgb_scores_modes_resumes_bit_identically_and_samples(
    tmp_path, capsys, ink_classifier
):
    straight = tmp_path / "straight"  # run_twice_and_resume's uninterrupted run
    flags = [*TINY_DCGAN, *SHORT, "--eval-every", "1", "--eval-samples", "40"]
    one = run_twice_and_resume(example.main, flags, tmp_path)
    assert one["dataset"] == "stacked-mnist" and one["image_shape"] == [3, 28, 28]
    assert one["loader"]["num_examples"] == 64
    for name in ("real.png", "samples_epoch_001.png", "samples_epoch_002.png"):
        with Image.open(straight / name) as picture:
            pixels = np.asarray(picture.convert("RGB"), dtype=np.int16)
        assert np.abs(pixels[..., 0] - pixels[..., 1]).max() > 0, name  # colour, not grey
    rows = [json.loads(line) for line in (straight / "history.jsonl").read_text().splitlines()]
    scored = [row for row in rows if "modes" in row]
    assert [row["epoch"] for row in scored] == [1, 2]
    assert all(1 <= row["modes"] <= 40 and 0 <= row["kl"] <= np.log(1000) for row in scored)
    said = capsys.readouterr()
    assert "epoch 2: " in said.out and "of 1000 modes, KL" in said.out

    samples, grid = tmp_path / "s.npy", tmp_path / "s.png"
    args = ["--sample", "30", "--checkpoint", str(straight / "checkpoint.npz")]
    assert example.main([*args, "--output", str(samples), "--grid", str(grid)]) == 0
    drawn = np.load(samples)
    assert drawn.shape == (30, 3, 28, 28) and drawn.dtype == np.float32
    assert drawn.min() >= 0 and drawn.max() <= 1 and grid.stat().st_size > 0
    assert "wrote 30 samples, float32 (30, 3, 28, 28) in [0, 1]" in capsys.readouterr().out

    assert evaluate.main([str(samples), "--stacked"]) == 0
    said = capsys.readouterr()
    scores = json.loads(said.out)
    real = stacked.measures(stacked.real_images(30), ink_classifier)
    assert scores == {"source": str(samples), "dataset": "stacked-mnist",
                      **stacked.measures(drawn, ink_classifier), "real": real,
                      "classifier_test_accuracy": 0.5}  # fmt: skip
    assert "PacDCGAN2" in said.err and "1000.0 modes, KL 0.06" in said.err
    assert "real Stacked MNIST (test split, same classifier)" in said.err


@needs_mnist
def test_an_mlp_gan_trains_on_the_flat_triples(tmp_path):
    out = tmp_path / "gan"
    flags = [*SHORT, "--model", "gan", "--hidden", "16", "--batch-size", "16", "--epochs", "1"]
    assert example.main([*flags, "--out", str(out)]) == 0
    state = load_checkpoint(out / "checkpoint.npz")
    assert state["config"]["image_size"] == 3 * 28 * 28 and state["image_shape"] == [3, 28, 28]


@needs_mnist
def test_the_training_triples_are_drawn_by_the_seed_in_the_gan_range():
    x, digits = stacked.load_images(50, 3)
    assert x.shape == (50, 3, 28, 28) and x.dtype == np.float32 and digits.shape == (50, 3)
    assert x.min() == -1 and x.max() == 1
    np.testing.assert_array_equal(stacked.load_images(50, 3)[0], x)
    assert not np.array_equal(stacked.load_images(50, 4)[0], x)


@needs_mnist
def test_a_stacked_checkpoint_whose_shape_is_not_3x28x28_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert example.main([*TINY_DCGAN, *SHORT, "--epochs", "1", "--out", str(out)]) == 0
    bad, said = sample_with_image_shape(example.main, out, [1, 28, 28], tmp_path, capsys)
    assert said.startswith(
        f"error: {bad}: image_shape must be [3, 28, 28] (three MNIST digits as channels), "
        f"got [1, 28, 28]"
    )


@pytest.mark.parametrize(
    ("array", "said"),
    [
        (np.zeros((5, 28, 28), np.float32), "expected Stacked MNIST images (N, 3, 28, 28)"),
        (np.zeros((5, 28, 28, 3), np.float32), "channels last? np.moveaxis(x, -1, 1)"),
        (np.zeros((5, 3, 28, 28), np.uint8), "expected floats in [0, 1], got uint8"),
        (-np.ones((5, 3, 28, 28), np.float32), "expected pixel values in [0, 1], got -1 to -1"),
    ],
)
def test_evaluate_stacked_refuses_what_is_not_stacked_mnist_in_one_line(
    tmp_path, capsys, array, said
):
    path = tmp_path / "x.npy"
    np.save(path, array)
    assert evaluate.main([str(path), "--stacked"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err


@pytest.mark.parametrize(
    "flags",
    [["x.npy", "--stacked", "--parzen"], ["x.npy", "--stacked", "--label", "3"],
     ["x.npy", "--stacked", "--mixture", "ring"], ["x.npy", "--stacked", "--dataset", "fashion"],
     ["--noise", "10", "--stacked"]],
)  # fmt: skip
def test_evaluate_stacked_refuses_flags_it_does_not_take(capsys, flags):
    with pytest.raises(SystemExit) as stop:
        evaluate.main(flags)
    assert stop.value.code == 2 and "--stacked scores FILE.npy of Stacked MNIST" in (
        capsys.readouterr().err
    )


def test_help_says_what_stacked_mnist_writes(capsys):
    with pytest.raises(SystemExit):
        example.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "stacked-mnist (three digits as the channels of a 3x28x28 image" in text
    assert "(N, 3, 28, 28), channels first, for Stacked MNIST" in text


# --- the CuPy path, through the strict stand-in (tests/fake_cupy.py) ------------------------
# The packed DCGAN on 3x28x28 triples: a training step reads nothing back from the device,
# and a run reads only what the code documents: the log lines, the epoch's picture, the
# checkpoint, and Stacked MNIST's scoring and --sample, one read per stacked.CHUNK images.

PACKED = [*TINY_DCGAN, "--pack", "2", *SHORT]  # 64 triples, 4 steps of 16 (8 pairs) an epoch


@pytest.fixture
def blob_mnist(monkeypatch):
    """MNIST replaced by 100 random blobs with random digits: Stacked MNIST draws its
    triples from them, so these tests need no data set."""
    rng = np.random.default_rng(0)
    images = ((rng.uniform(size=(100, 28, 28)) > 0.8) * 255).astype(np.uint8)
    labels = rng.integers(0, 10, 100).astype(np.uint8)
    monkeypatch.setattr(minigan.data, "load_mnist", lambda *args, **kwargs: (images, labels))


@pytest.fixture
def untrained_classifier(monkeypatch):
    """The MNIST classifier's network, untrained, on the backend the run asks for: the
    scorer classifies on the device as a real evaluation does, with no cache to train."""

    def load_or_train(cls, *args, backend="numpy", **kwargs):
        model = build_classifier(np.random.default_rng(1)).to(get_backend(backend))
        return types.SimpleNamespace(model=model, data=MNIST)

    monkeypatch.setattr(Evaluator, "load_or_train", classmethod(load_or_train))


def reads_by_function(entries: list[str]) -> collections.Counter:
    """How many device->host reads each function asked for ("file:line (function)")."""
    return collections.Counter(re.search(r"\((\S+)\)", e).group(1) for e in entries)


def arrays_in(tree: dict) -> int:
    """The arrays of a state (the checkpoint's "gan"), at any depth."""
    return sum(arrays_in(v) if isinstance(v, dict) else isinstance(v, np.ndarray)
               for v in tree.values())  # fmt: skip


def assert_same_arrays(got: dict, expected: dict, where: str = "") -> None:
    """The same keys, at any depth, and the same arrays bit for bit."""
    assert got.keys() == expected.keys(), where
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_same_arrays(got[key], value, f"{where}/{key}")
        elif isinstance(value, np.ndarray):
            assert got[key].dtype == value.dtype and got[key].tobytes() == value.tobytes(), key
        else:
            assert got[key] == value, f"{where}/{key}"


def test_a_packed_dcgan_step_on_stacked_mnist_reads_nothing_back(fake_cupy):
    plan = runs.plan_new_run(example.parse_args([*PACKED, "--backend", "cupy"]))
    assert (plan.config.channels, plan.config.pack) == (3, 2)
    gan = plan.model_class(plan.config, "cupy", seed=0)
    real = np.random.default_rng(0).uniform(-1, 1, (16, 3, 28, 28)).astype(np.float32)
    batch = gan.backend.asarray(real)
    fake_cupy.reset()
    gan.train_step(batch)  # the first step may upload its constant targets, once
    assert fake_cupy.reads == []
    fake_cupy.reset()
    for _ in range(4):
        figures = gan.train_step(batch)
    assert fake_cupy.reads == [] and fake_cupy.uploads == []
    assert all(isinstance(v, fake_cupy.ndarray) for v in figures.values()), figures.keys()


def test_generate_reads_once_per_chunk_and_a_hidden_read_in_it_is_caught(fake_cupy, monkeypatch):
    plan = runs.plan_new_run(example.parse_args([*PACKED, "--backend", "cupy"]))
    gan = plan.model_class(plan.config, "cupy", seed=0)
    z = gan.sample_noise(stacked.CHUNK + 500)
    fake_cupy.reset()
    images = stacked.generate(gan, z)
    assert reads_by_function(fake_cupy.reads) == {"generate": 2}, fake_cupy.reads
    assert isinstance(images, np.ndarray) and images.shape == (stacked.CHUNK + 500, 3, 28, 28)
    monkeypatch.setattr(stacked, "to_host", np.asarray)  # the NumPy suite would not notice
    with pytest.raises(ImplicitTransferError, match=r"^minigan/stacked.py:\d+: numpy.asarray"):
        stacked.generate(gan, z)


def test_a_stacked_run_on_the_stand_in_reads_once_per_chunk_and_matches_numpy(
    tmp_path, fake_cupy, blob_mnist, untrained_classifier
):
    """Two epochs of the packed DCGAN with --eval-every 1 (modes and KL of 1,500 samples:
    2 chunks), then --sample 1200 (2 chunks) from its checkpoint, on NumPy and through
    the stand-in: the same files bit for bit, and on the "device" only the reads the
    code documents. Any hidden read (float(), np.asarray, a NumPy function on a device
    array) raises ImplicitTransferError instead."""
    n_eval, n_sample, epochs = 1500, 1200, 2
    results, reads = {}, {}
    for backend in ("numpy", "cupy"):
        out = tmp_path / backend
        flags = [*PACKED, "--epochs", str(epochs), "--eval-every", "1",
                 "--eval-samples", str(n_eval), "--backend", backend, "--out", str(out)]  # fmt: skip
        fake_cupy.reset()
        assert example.main(flags) == 0
        trained = reads_by_function(fake_cupy.reads)
        samples = out / "samples.npy"
        fake_cupy.reset()
        args = ["--backend", backend, "--sample", str(n_sample), "--output", str(samples),
                "--checkpoint", str(out / "checkpoint.npz"), "--grid", str(out / "s.png")]  # fmt: skip
        assert example.main(args) == 0
        reads[backend] = trained, reads_by_function(fake_cupy.reads)
        state = load_checkpoint(out / "checkpoint.npz")
        results[backend] = state, np.load(samples)
    assert reads["numpy"] == (collections.Counter(), collections.Counter())

    (state, drawn), (expected_state, expected_drawn) = results["cupy"], results["numpy"]
    assert state["history"] == expected_state["history"]
    assert [row["epoch"] for row in state["history"] if "modes" in row] == [1, 2]
    assert drawn.shape == (n_sample, 3, 28, 28) and drawn.tobytes() == expected_drawn.tobytes()
    assert_same_arrays(state["gan"], expected_state["gan"])

    saved = arrays_in(state["gan"])  # the weights, Adam's moments: one read each per save
    channels, batches = 3, math.ceil(n_eval / 2500)  # classify's batches of 2,500
    trained, sampled = reads["cupy"]
    assert trained == {
        "train_epoch": epochs * 2,  # 4 steps an epoch, --log-every 2: two log lines
        "generate_unit_images": epochs,  # the epoch's sample grid
        "state_dict": 2 * epochs * saved,  # the checkpoint, before and after each scoring
        "generate": epochs * math.ceil(n_eval / stacked.CHUNK),  # G's images, a chunk a read
        "classify": epochs * channels * batches * 2,  # each batch's features and logits
    }, trained
    assert sampled == {
        "state_dict": saved,  # load_state_dict's backup of the new model, read once
        "generate": math.ceil(n_sample / stacked.CHUNK),  # one read per chunk, nothing else
    }, sampled
