"""examples/mnist_gan.py --model cyclegan end to end: two folders or the built-in task,
resume, translating with --sample N --direction, and the one-line errors of bad pairs."""

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import error_line
from PIL import Image

from minigan.checkpoint import load_checkpoint, save_checkpoint
from minigan.data import BatchIterator
from minigan.models import GAN, GANConfig

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mnist_gan.py"
_spec = importlib.util.spec_from_file_location("mnist_gan_cyclegan", EXAMPLE)
example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example)

TINY = ["--model", "cyclegan", "--base-channels", "2", "--residual-blocks", "1",
        "--d-layers", "1", "--batch-size", "4", "--pool-size", "3", "--log-every", "2"]  # fmt: skip


def picture_folder(path: Path, n: int, colour: bool, seed: int, side: int = 20) -> Path:
    """``n`` random pictures (grey or RGB) in a new folder."""
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        shape = (side, side, 3) if colour else (side, side)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path / f"{i:03d}.png")
    return path


@pytest.fixture
def folders(tmp_path):
    """Two grey folders (domains A and B), and a colour one."""
    return (
        picture_folder(tmp_path / "horses", 12, False, 0),
        picture_folder(tmp_path / "zebras", 9, False, 1),
        picture_folder(tmp_path / "colour", 9, True, 2),
    )


def pair(a: Path, b: Path) -> list[str]:
    return ["--dataset", f"folder:{a}", "--dataset-b", f"folder:{b}", "--image-size", "16"]


def test_two_folders_train_resume_bit_identically_and_translate(folders, tmp_path, capsys):
    a, b, _ = folders
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert example.main([*TINY, *pair(a, b), "--epochs", "3", "--out", str(straight)]) == 0
    assert example.main([*TINY, *pair(a, b), "--epochs", "1", "--out", str(resumed)]) == 0
    assert example.main(["--resume", "--epochs", "3", "--out", str(resumed)]) == 0
    one, two = (load_checkpoint(p / "checkpoint.npz") for p in (straight, resumed))
    assert one["dataset_b"] == f"folder:{b}" and one["epoch"] == 3
    for part in ("generator", "discriminator"):
        for key, value in one["gan"][part].items():
            np.testing.assert_array_equal(two["gan"][part][key], value, err_msg=key)
    for domain in ("A", "B"):
        pool = one["gan"]["pools"][domain]
        np.testing.assert_array_equal(two["gan"]["pools"][domain]["images"], pool["images"])
    for name in ("real.png", "samples_epoch_003.png", "history.png"):
        assert (straight / name).stat().st_size > 0
    out, grid = tmp_path / "zebras.npy", tmp_path / "zebras.png"
    args = ["--sample", "7", "--direction", "BA", "--checkpoint", str(straight / "checkpoint.npz")]
    assert example.main([*args, "--output", str(out), "--grid", str(grid)]) == 0
    translated = np.load(out)
    assert translated.shape == (7, 16, 16) and translated.dtype == np.float32
    assert 0 <= translated.min() and translated.max() <= 1 and grid.stat().st_size > 0
    assert "translations B -> A" in capsys.readouterr().out
    assert example.main([*args[:1], "10", *args[2:], "--output", str(tmp_path / "x.npy")]) == 1
    assert "domain B has 9 images to translate" in error_line(capsys)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--model", "gan", "--dataset-b", "fashion"], "--dataset-b names the second domain"),
        (["--model", "cyclegan", "--dataset", "fashion"], "mnist-striped is the built-in"),
        (["--model", "cyclegan", "--dataset-b", "mnist"], "both name mnist"),
        (["--model", "cyclegan", "--dataset-b", "folder:/no/such/folder"], "no folder at"),
        (["--model", "cyclegan", "--eval-every", "1"], "examples/evaluate.py --translation"),
        (["--model", "cyclegan", "--direction", "AB"], "go with --sample N"),
    ],
)
def test_a_bad_pair_is_refused_in_one_line_before_anything_is_written(
    flags, message, tmp_path, capsys
):
    assert example.main([*flags, "--out", str(tmp_path / "run")]) == 1
    assert message in error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_folders_of_grey_and_colour_pictures_are_refused_in_one_line(folders, tmp_path, capsys):
    a, _, colour = folders
    assert example.main([*TINY, *pair(a, colour), "--out", str(tmp_path / "run")]) == 1
    line = error_line(capsys)
    assert "holds grey 16x16 images" in line and "colour 16x16 ones" in line
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_a_domain_smaller_than_a_batch_is_named(folders, tmp_path, capsys):
    a, b, _ = folders
    flags = [*TINY, *pair(a, b), "--batch-size", "10", "--out", str(tmp_path / "run")]
    assert example.main(flags) == 1
    assert f"--dataset-b folder:{b} gives 9 images, fewer than one batch" in error_line(capsys)


def test_resume_refuses_another_second_domain_and_direction_needs_a_translation_model(
    folders, tmp_path, capsys
):
    a, b, colour = folders
    out = tmp_path / "run"
    assert example.main([*TINY, *pair(a, b), "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert example.main(["--resume", "--epochs", "2", "--out", str(out),
                         "--dataset-b", f"folder:{colour}"]) == 1  # fmt: skip
    assert "dataset_b" in error_line(capsys)
    gan = GAN(GANConfig(hidden=8, batch_size=2), seed=0)
    gan_checkpoint = tmp_path / "gan.npz"
    save_checkpoint(gan_checkpoint, {
        "gan": gan.state_dict(), "config": gan.config.to_dict(), "history": [], "epoch": 1,
        "loader": BatchIterator(np.zeros((4, 784)), batch_size=2).state_dict(), "seed": 0,
        "dataset": "mnist", "image_shape": [1, 28, 28],
    })  # fmt: skip
    flags = ["--sample", "3", "--direction", "AB", "--checkpoint", str(gan_checkpoint),
             "--output", str(tmp_path / "s.npy")]  # fmt: skip
    assert example.main(flags) == 1
    assert "drop --direction" in error_line(capsys)
    flags = ["--sample", "3", "--input", str(a), "--checkpoint", str(gan_checkpoint),
             "--output", str(tmp_path / "s.npy")]  # fmt: skip
    assert example.main(flags) == 1
    assert "holds a 'gan' model: drop --input" in error_line(capsys)
    state = load_checkpoint(out / "checkpoint.npz")
    del state["dataset_b"]
    save_checkpoint(tmp_path / "no_b.npz", state)
    flags = ["--sample", "3", "--checkpoint", str(tmp_path / "no_b.npz"), "--output",
             str(tmp_path / "t.npy")]  # fmt: skip
    assert example.main(flags) == 1
    assert "dataset_b must be a name (domain B" in error_line(capsys)


def test_unpaired_batches_refuse_a_state_without_both_shufflers():
    from minigan.unpaired import UnpairedBatches

    batches = UnpairedBatches(np.zeros((6, 1, 4, 4)), np.ones((5, 1, 4, 4)), 2, 0, "numpy")
    assert len(batches) == 2  # the smaller domain ends the epoch
    with pytest.raises(ValueError, match="no shuffler states 'a' and 'b'"):
        batches.load_state_dict({"num_examples": 6, "a": batches.a.state_dict()})
    before = batches.a.state_dict()
    other = UnpairedBatches(np.zeros((6, 1, 4, 4)), np.ones((7, 1, 4, 4)), 2, 1, "numpy")
    with pytest.raises(ValueError, match="state is for 7 examples"):
        batches.load_state_dict(other.state_dict())  # b misfits: a is put back
    assert batches.a.state_dict() == before


def real_mnist_available() -> bool:
    root = os.environ.get("MINIGAN_DATA")
    return bool(root) and (Path(root) / "mnist" / "train-images-idx3-ubyte.gz").is_file()


@pytest.mark.skipif(not real_mnist_available(), reason="needs MNIST in $MINIGAN_DATA/mnist")
def test_the_built_in_task_trains_on_mnists_two_halves_and_translates_test_digits(tmp_path):
    out = tmp_path / "run"
    assert example.main([*TINY, "--train-size", "8", "--epochs", "1", "--out", str(out)]) == 0
    state = load_checkpoint(out / "checkpoint.npz")
    assert (state["dataset"], state["dataset_b"]) == ("mnist", "mnist-striped")
    target = tmp_path / "b.npy"
    flags = ["--sample", "12", "--checkpoint", str(out / "checkpoint.npz"), "--output"]
    assert example.main([*flags, str(target)]) == 0  # --direction AB, the default
    assert np.load(target).shape == (12, 28, 28)


def test_input_translates_a_folder_of_pictures_made_to_fit_the_model(folders, tmp_path, capsys):
    a, b, colour = folders
    out = tmp_path / "run"
    assert example.main([*TINY, *pair(a, b), "--epochs", "1", "--out", str(out)]) == 0
    target = tmp_path / "mine.npy"
    flags = ["--sample", "5", "--direction", "AB", "--checkpoint", str(out / "checkpoint.npz")]
    assert example.main([*flags, "--input", str(colour), "--output", str(target)]) == 0
    assert np.load(target).shape == (5, 16, 16)  # colour pictures made grey, resized
    capsys.readouterr()
    assert example.main([*flags, "--input", str(tmp_path / "none"), "--output", "x.npy"]) == 1
    assert "--input" in (line := error_line(capsys)) and "no folder there" in line


EVALUATE = Path(__file__).resolve().parent.parent / "examples" / "evaluate.py"
_espec = importlib.util.spec_from_file_location("evaluate_cyclegan", EVALUATE)
evaluate = importlib.util.module_from_spec(_espec)
_espec.loader.exec_module(evaluate)


def test_evaluate_translation_refuses_what_its_judge_cannot_score(folders, tmp_path, capsys):
    a, b, _ = folders
    out = tmp_path / "run"
    assert example.main([*TINY, *pair(a, b), "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert evaluate.main(["--translation", str(out / "checkpoint.npz")]) == 1
    err = capsys.readouterr().err
    assert "the judge knows the built-in task only" in err and "Traceback" not in err
    gan = GAN(GANConfig(hidden=8, batch_size=2), seed=0)
    save_checkpoint(tmp_path / "gan.npz", {
        "gan": gan.state_dict(), "config": gan.config.to_dict(), "history": [], "epoch": 1,
        "loader": BatchIterator(np.zeros((4, 784)), batch_size=2).state_dict(), "seed": 0,
        "dataset": "mnist", "image_shape": [1, 28, 28],
    })  # fmt: skip
    assert evaluate.main(["--translation", str(tmp_path / "gan.npz")]) == 1
    assert "does not translate" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not real_mnist_available(), reason="needs MNIST in $MINIGAN_DATA/mnist")
def test_evaluate_translation_scores_a_run_beside_the_identity_and_a_perfect_translator(
    tmp_path, capsys, monkeypatch
):
    """A small judge (2,000 images of each domain: one epoch of the striped classifier,
    three of the domain classifier; under a CPU minute), beside the MNIST classifier of
    $XDG_CACHE_HOME (trained there once if absent). The shipped judge's full recipe, and
    its > 0.99 on real images: test_translation.py's test marked full."""
    from minigan.metrics import Evaluator, TranslationJudge

    load_or_train = TranslationJudge.load_or_train.__func__

    def small_judge(cls, data_dir=None, cache_dir=None, backend="numpy", **kwargs):
        mnist = Evaluator.load_or_train(data_root=data_dir, backend=backend, progress=False)
        return load_or_train(cls, data_dir, tmp_path / "judge", backend, epochs=1,
                             domain_epochs=3, num_train=2000, progress=False, mnist=mnist)  # fmt: skip

    monkeypatch.setattr(TranslationJudge, "load_or_train", classmethod(small_judge))
    out = tmp_path / "run"
    assert example.main([*TINY, "--train-size", "8", "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert evaluate.main(["--translation", str(out / "checkpoint.npz")]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) >= {"model", "identity", "real", "classifiers"}
    assert scores["identity"]["transfer_ab"] == 0 and scores["real"]["transfer_ab"] > 0.9
    assert scores["model"]["n_a"] == scores["model"]["n_b"] == 5000
    for key in ("class_ab", "class_ba", "transfer_ab", "transfer_ba"):
        assert 0 <= scores["model"][key] <= 1
