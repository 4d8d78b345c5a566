"""examples/train_minimal.py runs end to end, writes its grid, and never overwrites it."""

import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "train_minimal.py"
ROOT = SCRIPT.parent.parent


def run(cwd, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.skipif(
    not (Path(os.environ.get("MINIGAN_DATA", "/nonexistent")) / "mnist").is_dir(),
    reason="needs real MNIST: set MINIGAN_DATA",
)
def test_one_epoch_writes_a_grid_of_64_samples_and_refuses_to_overwrite_it(tmp_path):
    done = run(tmp_path, "--epochs", "1")
    assert done.returncode == 0, done.stderr
    assert "epoch 1: D loss" in done.stdout
    grid = matplotlib.image.imread(tmp_path / "runs" / "train_minimal.png")
    assert grid.shape[:2] == (8 * 30 + 2, 8 * 30 + 2)  # 8 x 8 digits of 28 px, 2 px apart
    before = (tmp_path / "runs" / "train_minimal.png").read_bytes()

    again = run(tmp_path, "--epochs", "1")
    assert again.returncode == 1
    assert "runs/train_minimal.png exists; move it away" in again.stderr
    assert (tmp_path / "runs" / "train_minimal.png").read_bytes() == before
