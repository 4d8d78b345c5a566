"""examples/mnist_gan.py --dataset 2d-ring / 2d-grid end to end: the papers' networks and
recipe by default, a frame per epoch and the GIF, --eval-every's measures, resume, --sample
N as (N, 2) points, evaluate.py --mixture, and the one-line refusals."""

import json

import numpy as np
import pytest
from conftest import error_line, load_example, run_twice_and_resume, sample_with_image_shape
from PIL import Image

from minigan import plane, runs
from minigan.models.points import RECIPES

example = load_example("mnist_gan", "mnist_gan_plane")
evaluate = load_example("evaluate", "evaluate_plane")

SHORT = ["--train-size", "300", "--log-every", "1"]  # 3 steps of 100 points an epoch


@pytest.mark.parametrize("model", list(RECIPES))
def test_each_model_takes_the_papers_networks_and_recipe_on_a_2d_task(model):
    plan = runs.plan_new_run(example.parse_args(["--model", model, "--dataset", "2d-grid"]))
    config = plan.config
    assert config.arch == "points" and plan.image_shape == (2,) and config.image_size == 2
    assert {k: getattr(config, k) for k in RECIPES[model]} == RECIPES[model]
    assert plan.train_size == plane.POINTS_PER_EPOCH and plan.epochs == plane.DEFAULT_EPOCHS
    packed = example.parse_args(["--model", model, "--dataset", "2d-ring", "--pack", "2"])
    assert runs.plan_new_run(packed).config.pack == 2  # a flag still wins over the recipe


def test_a_ring_run_draws_frames_and_a_gif_scores_resumes_and_samples_points(tmp_path, capsys):
    straight = tmp_path / "straight"  # run_twice_and_resume's uninterrupted run
    ring = ["--dataset", "2d-ring", "--pack", "2", "--eval-every", "1", *SHORT]
    one = run_twice_and_resume(example.main, ring, tmp_path)
    assert one["image_shape"] == [2] and one["dataset"] == "2d-ring"
    for name in ("samples_epoch_001.png", "samples_epoch_002.png", "history.png"):
        assert (straight / name).stat().st_size > 0
    assert not (straight / "real.png").exists()  # the frames show the real points
    with Image.open(straight / "frames.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 2
    rows = [json.loads(line) for line in (straight / "history.jsonl").read_text().splitlines()]
    scored = [row for row in rows if "modes" in row]
    assert [row["epoch"] for row in scored] == [1, 2]
    assert 0 <= scored[-1]["modes"] <= 8 and len(scored[-1]["counts"]) == 8
    said = capsys.readouterr()
    assert "epoch 2: " in said.out + said.err and "of 8 modes" in said.out + said.err

    points, grid = tmp_path / "points.npy", tmp_path / "points.png"
    args = ["--sample", "2500", "--checkpoint", str(straight / "checkpoint.npz")]
    assert example.main([*args, "--output", str(points), "--grid", str(grid)]) == 0
    drawn = np.load(points)
    assert drawn.shape == (2500, 2) and drawn.dtype == np.float32 and np.isfinite(drawn).all()
    assert grid.stat().st_size > 0
    assert "wrote 2500 points, float32 (2500, 2)" in capsys.readouterr().out
    assert evaluate.main([str(points), "--mixture", "ring"]) == 0
    scores = json.loads(capsys.readouterr().out)
    expected = plane.scores("2d-ring", drawn)
    if np.isnan(expected["reverse_kl"]):  # no high-quality point yet: JSON's null
        expected["reverse_kl"] = None
    assert scores == {"source": str(points), "mixture": "ring", **expected}

    # --overwrite deletes the run's frames and GIF too, and nothing of a person's.
    (straight / "notes.txt").write_text("mine")
    assert example.main([*ring, "--epochs", "1", "--out", str(straight), "--overwrite"]) == 0
    assert not (straight / "samples_epoch_002.png").exists()
    with Image.open(straight / "frames.gif") as gif:
        assert gif.n_frames == 1
    assert (straight / "notes.txt").read_text() == "mine"


def test_points_at_the_modes_score_every_mode_through_evaluate(tmp_path, capsys):
    exact = np.repeat(plane.centres("2d-grid"), 100, axis=0).astype(np.float32)
    path = tmp_path / "exact.npy"
    np.save(path, exact)
    assert evaluate.main([str(path), "--mixture", "grid"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["modes"] == 25 and scores["high_quality"] == 1.0
    assert abs(scores["reverse_kl"]) < 1e-12
    assert evaluate.main([str(path), "--mixture", "ring"]) == 0  # none near the ring's modes
    scores = json.loads(capsys.readouterr().out)
    assert scores["modes"] == 0 and scores["reverse_kl"] is None


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--model", "dcgan"], "--dataset 2d-ring trains gan, lsgan, wgan, wgan-gp on points"),
        (["--model", "stackgan"], "--model stackgan draws images: choose one of those"),
        (["--image-size", "32"], "--image-size resizes the pictures of --dataset folder:PATH"),
        (["--model", "lsgan", "--arch", "conv"], "cannot train on 2d-ring"),
    ],
)
def test_what_a_2d_task_cannot_take_is_refused_in_one_line(tmp_path, capsys, flags, said):
    out = tmp_path / "run"
    assert example.main(["--dataset", "2d-ring", *flags, "--out", str(out)]) == 1
    assert said in error_line(capsys)
    assert not out.exists()


def test_the_point_networks_are_refused_on_images(tmp_path, capsys):
    out = tmp_path / "run"
    assert example.main(["--model", "wgan-gp", "--arch", "points", "--out", str(out)]) == 1
    assert error_line(capsys) == (
        "error: --arch points is the 2-D benchmarks' networks (no Tanh: points, not pixels); "
        "--dataset mnist holds images: drop --arch points"
    )
    assert not out.exists()


def test_a_2d_checkpoint_whose_shape_is_not_a_point_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "ring"
    assert example.main(["--dataset", "2d-ring", *SHORT, "--epochs", "1", "--out", str(out)]) == 0
    bad, said = sample_with_image_shape(example.main, out, [1, 28, 28], tmp_path, capsys)
    assert said == (
        f"error: {bad}: image_shape must be [2] (a point of the plane), got [1, 28, 28]: the "
        f"file was changed or damaged; point to another checkpoint (an earlier one), or start "
        f"a new run"
    )


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["x.npy", "--mixture", "ring", "--parzen"], "--mixture scores FILE.npy of points"),
        (["--noise", "10", "--mixture", "grid"], "--mixture scores FILE.npy of points"),
        (["--captions", "c.npz", "--dataset", "fashion"], "--captions scores a text-to-image"),
    ],
)
def test_evaluate_refuses_flags_that_do_not_go_together(capsys, flags, said):
    with pytest.raises(SystemExit) as stop:
        evaluate.main(flags)
    assert stop.value.code == 2 and said in capsys.readouterr().err
