"""examples/mnist_gan.py --model stackgan end to end: captions in, both stages trained,
a stopped run resumed bit-identically, --sample N --caption, evaluate.py --captions, and
the one-line errors."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import error_line, load_example

from minigan.checkpoint import load_checkpoint, save_checkpoint
from minigan.data import DataError, load_mnist
from minigan.models import StackGAN

example = load_example("mnist_gan", "mnist_gan_stackgan")
evaluate = load_example("evaluate", "evaluate_stackgan")

TINY = ["--model", "stackgan", "--latent-dim", "4", "--c-dim", "3", "--d-text-dim", "3",
        "--g1-channels", "4", "--g2-channels", "4", "--d-channels", "2",
        "--residual-blocks", "1", "--batch-size", "8", "--train-size", "32",
        "--log-every", "2"]  # fmt: skip


@pytest.fixture(autouse=True)
def needs_mnist():
    try:
        load_mnist("train", download=False)
    except DataError as error:
        pytest.skip(f"MNIST not found ({str(error).splitlines()[0]}); set MINIGAN_DATA")


def assert_same(a, b, where="gan"):
    """Nested dicts of arrays equal, bit for bit."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    else:
        np.testing.assert_array_equal(a, b, err_msg=where)


def test_a_stopped_run_resumes_bit_identically_through_the_switch_of_stage(
    tmp_path, monkeypatch, capsys
):
    """4 epochs of 4 steps: Stage-I, then Stage-II from step 10. A run stopped after epoch 1
    (Ctrl-C) and resumed keeps the plan it started with and ends where the straight run
    does, bit for bit."""
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert example.main([*TINY, "--epochs", "4", "--out", str(straight)]) == 0
    train_epoch, calls = example.train_epoch, []

    def ctrl_c_in_epoch_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return train_epoch(*args, **kwargs)

    monkeypatch.setattr(example, "train_epoch", ctrl_c_in_epoch_two)
    assert example.main([*TINY, "--epochs", "4", "--out", str(stopped)]) == 130
    monkeypatch.setattr(example, "train_epoch", train_epoch)
    assert example.main(["--resume", "--out", str(stopped), "--epochs", "4"]) == 0
    one, two = (load_checkpoint(p / "checkpoint.npz") for p in (straight, stopped))
    first = round(StackGAN.default_config().stage1_share * 16)  # of 4 epochs of 4 steps
    assert one["gan"]["plan"] == {"total_steps": 16, "stage1_steps": first} == two["gan"]["plan"]
    assert one["captions"] == two["captions"] and one["captions"]["name"] == "mnist"
    assert_same(one["gan"], two["gan"])  # networks, averages, optimizers, steps
    rows = [json.loads(line) for line in (straight / "history.jsonl").read_text().splitlines()]
    assert {"d_loss", "g_loss", "kl", "d_real", "d_wrong", "d_fake"} <= set(rows[-1])
    capsys.readouterr()

    # Sampling: a caption, or every full caption in turn; Stage-I beside Stage-II in the grid.
    checkpoint = str(straight / "checkpoint.npz")
    out, grid = tmp_path / "sevens.npy", tmp_path / "sevens.png"
    args = ["--sample", "12", "--checkpoint", checkpoint, "--output", str(out)]
    assert example.main([*args, "--grid", str(grid), "--caption", "a thin seven"]) == 0
    samples = np.load(out)
    assert samples.shape == (12, 28, 28) and samples.dtype == np.float32
    assert 0 <= samples.min() and samples.max() <= 1 and grid.stat().st_size > 0
    assert example.main([*args, "--overwrite"]) == 0
    assert example.main([*args, "--overwrite", "--caption", "a purple seven"]) == 1
    assert error_line(capsys).startswith(
        "error: unknown word 'purple' for mnist captions; known words: a, an, thin, medium"
    )
    assert example.main([*args, "--overwrite", "--caption", ""]) == 1
    assert error_line(capsys).startswith("error: empty caption; known words: a, an, thin")
    assert example.main([*args, "--overwrite", "--label", "3"]) == 1
    assert "--caption" in error_line(capsys)

    # A checkpoint without its captions' scheme cannot bin or embed a caption: one line.
    state = load_checkpoint(checkpoint)
    del state["captions"]
    bare = tmp_path / "bare.npz"
    save_checkpoint(bare, state)
    bad = ["--sample", "3", "--checkpoint", str(bare), "--output", str(tmp_path / "b.npy")]
    assert example.main(bad) == 1
    assert "not its captions' scheme" in error_line(capsys)


def test_captions_are_refused_where_there_are_none_and_eval_every_points_to_evaluate(
    tmp_path, capsys
):
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    out = str(tmp_path / "run")
    assert example.main([*TINY, "--dataset", f"folder:{pictures}", "--out", out]) == 1
    assert error_line(capsys) == (
        f"error: --model stackgan learns from captions written from labels, and "
        f"folder:{pictures} has none: use --dataset mnist or fashion"
    )
    assert example.main([*TINY, "--eval-every", "1", "--out", out]) == 1
    assert "examples/evaluate.py --captions OUT/checkpoint.npz" in error_line(capsys)
    assert example.main([*TINY, "--caption", "a seven", "--out", out]) == 1
    assert error_line(capsys).endswith("--input and --caption go with --sample N")
    assert not Path(out).exists()


def test_caption_on_a_model_without_captions_is_refused(tmp_path, capsys):
    out = tmp_path / "gan"
    tiny_gan = ["--hidden", "8", "--latent-dim", "4", "--batch-size", "8", "--train-size", "16"]
    assert example.main([*tiny_gan, "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    args = ["--sample", "3", "--checkpoint", str(out / "checkpoint.npz"), "--caption", "a one"]
    assert example.main([*args, "--output", str(tmp_path / "x.npy")]) == 1
    assert error_line(capsys).startswith("error: --caption TEXT asks a text-to-image model")
    assert evaluate.main(["--captions", str(out / "checkpoint.npz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("evaluate.py: error: --captions") and "stackgan" in err
