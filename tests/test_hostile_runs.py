"""Issue 25, the run folder and its files, tried as a hostile user would: two runs in one
folder, links and FIFOs where a run writes, samples over a run's files, a person's own
temporary-looking files, a killed --sample, an exploding run, a run stuck before its
first checkpoint, a full disk, SIGTERM, and the messages of each.

Each test names its item of the issue; each fails on the code before it.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

# The example's synthetic MNIST stand-in when MINIGAN_DATA has no MNIST (autouse fixture).
from conftest import error_line
from test_mnist_gan_example import (  # noqa: F401
    EXAMPLE,
    SMALL,
    example,
    mnist_or_synthetic,
    run,
)

from minigan import files, runs
from minigan.checkpoint import load_checkpoint
from minigan.gan import GAN
from minigan.images import write_shape_images

ROOT = EXAMPLE.parent.parent
LOCK = ".minigan.lock"  # a run's lock file, in its folder


def sample(*args: str) -> int:
    return example.main(["--sample", "20", *args])


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def pictures(tmp_path: Path, extra: str | None = None) -> Path:
    """A folder of 12 small pictures (and a file ``extra`` that is none)."""
    folder = tmp_path / "pictures"
    write_shape_images(folder, 12, size_range=(8, 16))
    if extra:
        (folder / extra).write_text("not a picture")
    return folder


def train_in_background(tmp_path: Path, out: Path, folder: Path, epochs: int = 100000):
    """examples/mnist_gan.py in its own process on ``folder``: tiny, a checkpoint every
    3 steps, going on until stopped. Its stderr goes to tmp_path/run.err."""
    command = [sys.executable, str(EXAMPLE), "--dataset", f"folder:{folder}", "--image-size",
               "8", "--batch-size", "4", "--hidden", "8", "--latent-dim", "8", "--log-every",
               "1000", "--epochs", str(epochs), "--out", str(out)]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1")
    err = open(tmp_path / "run.err", "w")  # noqa: SIM115 (closed by the process's end)
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)


def wait_for(path: Path, process: subprocess.Popen, tmp_path: Path) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(
                f"the run ended ({process.returncode}): {(tmp_path / 'run.err').read_text()}"
            )
        assert time.monotonic() < deadline, f"no {path} after 120 s"
        time.sleep(0.05)


# --- 1. a run owns its folder --------------------------------------------------------------


def test_a_second_run_into_a_running_runs_folder_is_refused_naming_the_first(tmp_path, capsys):
    out = tmp_path / "race"
    first = train_in_background(tmp_path, out, pictures(tmp_path))
    try:
        wait_for(out / "checkpoint.npz", first, tmp_path)
        assert run("--epochs", "1", "--out", str(out), "--overwrite") == 1
        line = error_line(capsys)
        assert line.startswith(
            f"error: --out {out} is in use by a run still going (pid {first.pid}, started "
        )
        lock = (out / LOCK).read_text()
        holder = json.loads(lock)
        assert holder["pid"] == first.pid and "mnist_gan.py" in holder["command"]
        assert line == (
            f"error: --out {out} is in use by a run still going (pid {first.pid}, started "
            f"{holder['started']}: {holder['command']}); wait for it to end or stop it, "
            f"or choose another --out"
        )
        for flags in ([], ["--resume"]):  # refused the same way
            assert run("--epochs", "1", "--out", str(out), *flags) == 1
            assert error_line(capsys) == line
        assert (out / LOCK).read_text() == lock  # still the first run's
        assert runs.LOCK == LOCK and not runs.is_run_file(LOCK)
        assert out / LOCK not in runs.run_files(out) + runs.stale_temporary_files(out)
        assert first.poll() is None and (out / "checkpoint.npz").exists()  # not deleted
        # Killed outright, the first run cannot remove its lock file; the system has let go
        # of the lock itself, so the next run goes ahead, and says what it found.
        first.kill()
        first.wait()
        assert (out / LOCK).exists()
        assert run("--epochs", "1", "--out", str(out), "--overwrite") == 0
        said = capsys.readouterr().out
        assert (
            f"note: the run that last used {out} (pid {first.pid}, started {holder['started']}: "
            f"{holder['command']}) was killed without letting go of its lock, "
            f"{out / LOCK}; taking it over\n"
        ) in said
        assert not (out / LOCK).exists()  # let go on the way out
        assert load_checkpoint(out / "checkpoint.npz")["epoch"] == 1
    finally:
        first.kill()
        first.wait()


def test_a_refused_run_leaves_the_folder_and_no_lock_behind(tmp_path, capsys):
    out = tmp_path / "new" / "run"
    assert run("--out", str(out), "--checkpoint", "x.npz") == 1
    assert "go with --sample N" in error_line(capsys)
    assert list(tmp_path.iterdir()) == []  # the folder made for the lock is gone again
    with runs.own_folder(out):
        assert (out / LOCK).exists()
        refused = pytest.raises(runs.RunError, match="is in use by a run still going")
        with refused, runs.own_folder(out):  # the same process, a second time: refused too
            pass
        assert (out / LOCK).exists()
    assert list(tmp_path.iterdir()) == []


# --- 2. never write onto a link, a FIFO or a device -----------------------------------------


def test_overwrite_never_replaces_a_fifo_or_a_symlink_of_a_run(trained, tmp_path, capsys):
    (trained / "history.jsonl").unlink()
    os.mkfifo(trained / "history.jsonl")
    capsys.readouterr()
    assert run("--epochs", "1", "--out", str(trained), "--overwrite") == 1
    assert error_line(capsys) == (
        f"error: --out {trained}: its history.jsonl is a FIFO (named pipe), not a regular "
        f"file, and a run writes (or --overwrite deletes) regular files only: move it away, "
        f"or choose another --out"
    )
    assert (trained / "history.jsonl").is_fifo() and (trained / "checkpoint.npz").exists()
    (trained / "history.jsonl").unlink()
    mine = tmp_path / "my-picture.png"
    mine.write_bytes(b"my own picture")
    (trained / "real.png").unlink()
    (trained / "real.png").symlink_to(mine)
    assert run("--epochs", "1", "--out", str(trained), "--overwrite") == 1
    assert error_line(capsys) == (
        f"error: --out {trained}: its real.png is a symbolic link to {mine}, not a regular "
        f"file, and a run writes (or --overwrite deletes) regular files only: move it away, "
        f"or choose another --out"
    )
    assert (trained / "real.png").is_symlink() and mine.read_bytes() == b"my own picture"


def test_sample_overwrite_never_replaces_a_fifo_or_a_symlink(trained, tmp_path, capsys):
    checkpoint = str(trained / "checkpoint.npz")
    fifo, mine, link = tmp_path / "fifo.npy", tmp_path / "mine.png", tmp_path / "link.png"
    os.mkfifo(fifo)
    mine.write_bytes(b"my own picture")
    link.symlink_to(mine)
    capsys.readouterr()
    assert sample("--checkpoint", checkpoint, "--output", str(fifo), "--overwrite") == 1
    assert error_line(capsys) == (
        f"error: --output {fifo} is a FIFO (named pipe), not a regular file: minigan writes "
        f"only onto regular files (or new paths); choose another file"
    )
    out = tmp_path / "s.npy"
    assert sample("--checkpoint", checkpoint, "--output", str(out), "--grid", str(link),
                  "--overwrite") == 1  # fmt: skip
    assert error_line(capsys) == (
        f"error: --grid {link} is a symbolic link to {mine}, not a regular file: minigan "
        f"writes only onto regular files (or new paths); choose another file"
    )
    assert fifo.is_fifo() and link.is_symlink() and mine.read_bytes() == b"my own picture"
    assert not out.exists()
    # atomic_write, where every write goes, refuses them too
    for target in (fifo, link):
        refused = pytest.raises(files.NotARegularFileError, match="not a regular file")
        with refused, files.atomic_write(target) as f:
            f.write(b"x")
    assert fifo.is_fifo() and link.is_symlink() and mine.read_bytes() == b"my own picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.npy", "link.png", "mine.png",
                                                           "run"]  # fmt: skip


# --- 3. --sample never writes onto a run's files -----------------------------------------------


def test_sample_never_writes_onto_a_runs_own_files(trained, tmp_path, capsys):
    checkpoint = str(trained / "checkpoint.npz")
    before = {p.name: p.read_bytes() for p in trained.iterdir()}
    capsys.readouterr()
    for flag, name in [("--grid", "history.jsonl"), ("--output", "real.png"),
                       ("--grid", "samples_epoch_001.png"), ("--grid", "samples_epoch_007.png")]:  # fmt: skip
        target = trained / name
        files_ = ["--output", str(tmp_path / "s.npy"), "--grid", str(target)]
        if flag == "--output":
            files_ = ["--output", str(target)]
        assert sample("--checkpoint", checkpoint, *files_, "--overwrite") == 1
        assert error_line(capsys) == (
            f"error: {flag} {target} is a file of the run in {trained} (its {name}); writing "
            f"it would damage that run: choose another name or folder"
        )
    assert {p.name: p.read_bytes() for p in trained.iterdir()} == before
    assert not (tmp_path / "s.npy").exists()


# --- 4. the sweep of temporaries deletes only minigan's, of processes that are gone ------------


def test_the_sweep_of_temporaries_spares_a_persons_files_and_live_writers(trained, capsys):
    gone, alive = dead_pid(), os.getppid()
    swept = [
        trained / f".checkpoint.npz.minigan-{gone}-k3j_9x2a.tmp",
        trained / f".samples_epoch_002.png.minigan-{gone}-0a1b2c3d.tmp",
    ]
    # A person's names, a live writer's, and names an older minigan gave its temporaries
    # (no mark: a person may have them too, e.g. .history.jsonl.20261207.tmp): all kept.
    older = [trained / ".checkpoint.npz.k3j_9x2a.tmp", trained / ".history.jsonl.20261207.tmp"]
    kept = [trained / ".history.jsonl.backup.tmp", trained / ".notes.txt.abc.tmp",
            trained / ".history.jsonl.tmp", trained / ".checkpoint.npz.tmp",
            trained / ".notes.txt.abcdefgh.tmp",
            trained / f".checkpoint.npz.minigan-{alive}-aaaaaaaa.tmp", *older]  # fmt: skip
    for path in swept:
        path.write_bytes(b"\0" * 500_000)
    for path in kept:
        path.write_bytes(b"a person's file, or one being written")
    capsys.readouterr()
    assert run("--epochs", "3", "--out", str(trained), "--resume") == 0
    out = capsys.readouterr().out
    assert f"removed 2 temporary files left by an interrupted run (1.0 MB) from {trained}" in out
    assert (
        f"note: 2 files in {trained} named like an older minigan's temporary files "
        f"(.checkpoint.npz.k3j_9x2a.tmp, .history.jsonl.20261207.tmp) left alone: delete them "
        f"if they are not yours"
    ) in out
    assert not any(path.exists() for path in swept)
    assert all(path.exists() for path in kept)


# --- 7. a killed --sample leaves nothing for good ------------------------------------------------


def test_a_killed_samples_temporary_file_is_removed_by_the_next_one(trained, tmp_path, capsys):
    big = tmp_path / "big.npy"
    killed = ("import os, signal, sys\nfrom minigan.files import atomic_write\n"
              "with atomic_write(sys.argv[1]) as f:\n"
              "    f.write(bytes(3_000_000)); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n")  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.run([sys.executable, "-c", killed, str(big)], env=env, check=False)
    assert process.returncode == -signal.SIGKILL
    (left,) = [p for p in tmp_path.iterdir() if p.name.startswith(".big.npy.")]
    assert left.stat().st_size == 3_000_000 and not big.exists()
    capsys.readouterr()
    out = tmp_path / "small.npy"
    assert sample("--checkpoint", str(trained / "checkpoint.npz"), "--output", str(out)) == 0
    said = capsys.readouterr().out
    assert said.startswith(
        f"removed 1 temporary file left by a killed --sample or run (3.0 MB) from {tmp_path}\n"
    )
    assert not left.exists() and np.load(out).shape == (20, 28, 28)


# --- 11. an exploding run is stopped, not "done" -----------------------------------------------


def test_exploding_losses_stop_the_run_and_say_where(tmp_path, monkeypatch, capsys):
    real_step = GAN.train_step

    def step_that_explodes(self, batch):
        figures = real_step(self, batch)
        if self.steps > 6:  # in epoch 2: the checkpoint of epoch 1 is kept
            figures["d_loss"] = figures["d_loss"] * 1e22
        return figures

    monkeypatch.setattr(GAN, "train_step", step_that_explodes)
    out = tmp_path / "run"
    assert run("--epochs", "3", "--out", str(out)) == 1
    line = error_line(capsys)
    assert re.fullmatch(
        r"error: the losses exploded: d_loss reached [0-9.]+e\+21 \(beyond ±1,000,000, which "
        r"no figure nears in a normal run\) at epoch 2, step 1-2 of 6 \(global step 7-8\); "
        r"training stopped\. The checkpoint from epoch 1 \(.*checkpoint\.npz\) is kept: "
        r"lower --lr",
        line,
    ), line
    assert load_checkpoint(out / "checkpoint.npz")["epoch"] == 1


def test_the_explosion_threshold_spares_normal_figures_of_every_model():
    # The largest |figure| of 8 epochs of WGAN-GP and WGAN (15000 MNIST images, their
    # defaults): unbounded critics, and still 4 orders of magnitude below.
    normal = {"d_loss": -30.1, "g_loss": 18.6, "wasserstein": 39.2, "penalty": 9.7,
              "grad_norm": 2.0, "d_real": 1.0, "d_fake": 0.0}  # fmt: skip
    assert runs.figures_diverged(normal) is None
    assert runs.figures_diverged({**normal, "g_loss": -2e6}) == (
        "the losses exploded: g_loss reached -2e+06 (beyond ±1,000,000, which no figure "
        "nears in a normal run)"
    )
    assert runs.figures_diverged({**normal, "d_loss": float("nan")}) == "d_loss became nan"


# --- 13. a run killed before its first checkpoint is not stuck ---------------------------------


def test_a_run_stopped_before_its_first_checkpoint_says_what_is_there(tmp_path, capsys):
    out = tmp_path / "run"
    assert run("--epochs", "1", "--out", str(out)) == 0
    (out / "checkpoint.npz").unlink()  # as if killed while writing it:
    temporary = out / f".checkpoint.npz.minigan-{dead_pid()}-x7k2m9qa.tmp"
    temporary.write_bytes(b"PK\x03\x04" + bytes(2_000_000))
    capsys.readouterr()
    said = (
        f"error: --out {out} holds a run that saved no checkpoint (history.jsonl, 1 "
        f"samples_epoch_*.png; and 1 temporary file (2.0 MB: {temporary.name}) of a write "
        f"that was cut off): it stopped (killed, or the disk full) before its first "
        f"checkpoint was written, so there is nothing to resume. Pass --overwrite to delete "
        f"its files and start again, or a new --out"
    )
    assert run("--epochs", "1", "--out", str(out)) == 1
    assert error_line(capsys) == said
    assert run("--epochs", "1", "--out", str(out), "--resume") == 1
    assert error_line(capsys) == said
    assert run("--epochs", "1", "--out", str(out), "--overwrite") == 0
    printed = capsys.readouterr().out
    assert f"removed 1 temporary file left by an interrupted run (2.0 MB) from {out}" in printed
    assert not temporary.exists() and load_checkpoint(out / "checkpoint.npz")["epoch"] == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run("--out", str(empty), "--resume") == 1
    assert error_line(capsys) == (
        f"error: --resume: no checkpoint at {empty / 'checkpoint.npz'}, and no run was saved "
        f"in --out {empty}; start a new run without --resume"
    )


# --- 14. a full disk names the file and what was kept -------------------------------------------


def test_a_full_disk_names_the_file_and_the_checkpoint_kept(tmp_path, monkeypatch, capsys):
    real_savez, calls = np.savez, []

    def savez_on_a_full_disk(f, **arrays):
        calls.append(1)
        if len(calls) == 1:
            return real_savez(f, **arrays)
        f.write(b"PK\x03\x04 the first bytes")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", savez_on_a_full_disk)
    out = tmp_path / "run"
    assert run("--epochs", "3", "--out", str(out)) == 1
    checkpoint = out / "checkpoint.npz"
    line = error_line(capsys)
    assert line.startswith(
        f"error: cannot write {checkpoint}: No space left on device. The checkpoint from epoch "
        f"1 ({checkpoint}) is kept; make room on the disk, then continue with: "
    )
    assert line.endswith(f"{EXAMPLE} --resume --out {out} --epochs 3 --log-every 2")
    monkeypatch.undo()
    assert load_checkpoint(checkpoint)["epoch"] == 1
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temporary


# --- 17. honest messages ------------------------------------------------------------------------


def test_the_memory_message_names_the_sizes_given(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runs, "available_memory", lambda: 8_000_000_000)
    out = str(tmp_path / "run")
    assert example.main(["--out", out, "--latent-dim", "100000000"]) == 1
    line = error_line(capsys)
    assert re.fullmatch(
        r"error: training \(--latent-dim 100000000\) needs about [0-9,.]+ GB of memory, and "
        r"this machine has 8\.0 GB available; choose smaller sizes",
        line,
    ), line
    monkeypatch.setattr(runs, "available_memory", lambda: 1_000_000)  # no flag: the defaults
    assert example.main(["--out", out]) == 1
    assert error_line(capsys).startswith("error: training (--hidden 512, --batch-size 100) needs")
    assert list(tmp_path.iterdir()) == []


def test_sample_output_at_a_folder_or_a_device_says_what_is_wrong(trained, tmp_path, capsys):
    checkpoint = str(trained / "checkpoint.npz")
    capsys.readouterr()
    for overwrite in ([], ["--overwrite"]):
        assert sample("--checkpoint", checkpoint, "--output", str(tmp_path), *overwrite) == 1
        assert error_line(capsys) == (
            f"error: --output {tmp_path} is a folder; give a file, such as "
            f"{tmp_path / 'samples.npy'}"
        )
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    assert sample("--checkpoint", checkpoint, "--output", "/dev/full", "--overwrite") == 1
    assert error_line(capsys) == (
        "error: --output /dev/full is a character device, not a regular file: minigan writes "
        "only onto regular files (or new paths); choose another file"
    )


def test_a_folder_of_one_picture_is_said_to_have_too_few(tmp_path, capsys):
    folder = tmp_path / "one"
    write_shape_images(folder, 1)
    for size in (["--train-size", "300"], []):
        argv = ["--dataset", f"folder:{folder}", "--batch-size", "50", "--hidden", "32", *size]
        assert example.main([*argv, "--out", str(tmp_path / "run")]) == 1
        assert error_line(capsys) == (
            f"error: --dataset folder:{folder} holds 1 usable image, fewer than one batch of "
            f"--batch-size 50; add pictures to the folder or lower --batch-size"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one"]


def test_sigterm_stops_a_run_as_ctrl_c_does(tmp_path):
    out = tmp_path / "run"
    process = train_in_background(tmp_path, out, pictures(tmp_path))
    try:
        wait_for(out / "checkpoint.npz", process, tmp_path)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 143  # 128 + SIGTERM, as the shell says of a kill
    finally:
        process.kill()
        process.wait()
    err = (tmp_path / "run.err").read_text()
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("interrupted")]
    epoch = int(re.match(r"interrupted by SIGTERM: The checkpoint from epoch (\d+) ", line)[1])
    assert line.startswith(
        f"interrupted by SIGTERM: The checkpoint from epoch {epoch} ({out / 'checkpoint.npz'}) "
        f"is kept; continue with: "
    )
    assert line.endswith(f"{EXAMPLE} --resume --out {out} --epochs 100000 --log-every 1000")
    assert load_checkpoint(out / "checkpoint.npz")["epoch"] == epoch
    assert not (out / LOCK).exists()


# --- 18. small: warnings, the resume command, --grid's format ----------------------------------


def test_warnings_print_as_one_clean_line(tmp_path):
    folder = pictures(tmp_path, extra="notes.txt")
    process = train_in_background(tmp_path, tmp_path / "run", folder, epochs=1)
    assert process.wait(timeout=120) == 0
    err = (tmp_path / "run.err").read_text()
    assert "UserWarning" not in err and "warnings.warn" not in err
    lines = [line for line in err.splitlines() if "warning" in line]
    assert len(lines) == 1 and lines[0].startswith(f"warning: load_image_folder: under {folder}")


def test_the_resume_command_names_this_interpreter_and_the_scripts_path(monkeypatch):
    args = example.parse_args(["--out", "runs/x", "--epochs", "9"])
    monkeypatch.setattr(shutil, "which", lambda name: None)  # no python on PATH
    assert runs.resume_command("examples/mnist_gan.py", args, example.PARSER_DEFAULTS) == (
        f"{sys.executable} {os.path.abspath('examples/mnist_gan.py')} --resume --out runs/x "
        f"--epochs 9"
    )


def test_grid_must_be_a_png(trained, tmp_path, capsys):
    capsys.readouterr()
    grid = tmp_path / "x.jpg"
    assert sample("--checkpoint", str(trained / "checkpoint.npz"), "--output",
                  str(tmp_path / "s.npy"), "--grid", str(grid)) == 1  # fmt: skip
    assert error_line(capsys) == (
        f"error: --grid {grid}: the grid is a PNG picture; give a name ending in .png"
    )
    assert not grid.exists() and not (tmp_path / "s.npy").exists()


def test_a_folder_runs_model_too_big_for_memory_is_refused_before_anything(tmp_path, capsys):
    """Without --train-size a folder's picture count is unknown until it is read, but the
    model's memory is not: an MLP on 4096x4096 pictures is refused up front."""
    folder = pictures(tmp_path)
    out = tmp_path / "run"
    code = example.main(["--dataset", f"folder:{folder}", "--image-size", "4096",
                         "--epochs", "1", "--out", str(out)])  # fmt: skip
    line = error_line(capsys)
    assert code == 1
    assert line.startswith("error: training (--hidden 512, --batch-size 100, --image-size 4096) ")
    assert line.endswith("choose smaller sizes")
    assert not out.exists()
