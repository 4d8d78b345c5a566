"""examples/mnist_gan.py against a hostile user: every way to lose a run is refused,
every failure is one line saying what happened and what to do, and nothing is left behind.

Each test runs the command line in-process (``main(argv)``) in a temporary folder, on a
few hundred images; the set-up (real MNIST or synthetic digits) is the example tests'.
"""

import dataclasses
import os
import pickle
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

# The example module, its small-run flags and its data set-up (an autouse fixture, which
# applies here because it is imported here).
from conftest import error_line, weight_count
from test_mnist_gan_example import (  # noqa: F401
    SMALL,
    example,
    mnist_or_synthetic,
    run,
)

from minigan import data, runs
from minigan.checkpoint import load_checkpoint, save_checkpoint
from minigan.images import generate_unit_images, write_samples
from minigan.models import DCGAN, GAN, PRESETS, GANConfig


def no_data_loading(monkeypatch) -> None:
    """Make loading MNIST fail the test: a refusal must come before any work."""

    def fail(*args, **kwargs):
        raise AssertionError("MNIST was loaded before the options were refused")

    monkeypatch.setattr(runs, "load_mnist", fail)


def sample(*args: str) -> int:
    return example.main(["--sample", "20", *args])


# --- 1. a new run never replaces another ---------------------------------------------


def test_a_new_run_into_a_folder_holding_a_run_is_refused_before_any_work(
    trained, monkeypatch, capsys
):
    before = {p.name: p.read_bytes() for p in trained.iterdir()}
    no_data_loading(monkeypatch)
    capsys.readouterr()
    assert run("--epochs", "1", "--out", str(trained), "--preset", "classic") == 1
    assert error_line(capsys) == (
        f"error: --out {trained} already holds a run (checkpoint.npz, history.jsonl, 2 "
        f"samples_epoch_*.png); a new run would replace it. Pass --resume to continue that "
        f"run, a new --out for a separate one, or --overwrite to delete its files and start again"
    )
    assert {p.name: p.read_bytes() for p in trained.iterdir()} == before


def test_overwrite_deletes_only_the_earlier_runs_files(trained, capsys):
    (trained / "notes.txt").write_text("my notes")
    (trained / "samples_epoch_002.npy").write_bytes(b"a user's file with a similar name")
    capsys.readouterr()
    assert run("--epochs", "1", "--out", str(trained), "--overwrite") == 0
    assert "removed 6 files of the earlier run (--overwrite)" in capsys.readouterr().out
    assert not (trained / "samples_epoch_002.png").exists()
    assert (trained / "notes.txt").read_text() == "my notes"
    assert (trained / "samples_epoch_002.npy").exists()
    assert load_checkpoint(trained / "checkpoint.npz")["epoch"] == 1
    assert (trained / "history.jsonl").read_text().count("\n") == 3  # epoch 1 only


def test_resume_and_overwrite_together_are_refused(trained, capsys):
    capsys.readouterr()
    assert run("--out", str(trained), "--resume", "--overwrite") == 1
    assert "--resume continues the run in --out, --overwrite deletes it" in error_line(capsys)


# --- 2. never write onto the input ----------------------------------------------------


def test_sample_output_onto_the_checkpoint_is_refused(trained, tmp_path, capsys):
    checkpoint = trained / "checkpoint.npz"
    before = checkpoint.read_bytes()
    link = tmp_path / "same-file.npz"
    os.link(checkpoint, link)  # another name for the same file
    capsys.readouterr()
    for flags in (
        ["--output", str(checkpoint)],
        ["--output", str(link)],
        ["--output", str(tmp_path / "s.npy"), "--grid", str(checkpoint)],
        ["--output", str(trained / ".." / "run" / "checkpoint.npz")],
    ):
        assert sample("--checkpoint", str(checkpoint), *flags, "--overwrite") == 1
        assert "is the checkpoint being read" in error_line(capsys), flags
    assert checkpoint.read_bytes() == before


def test_sample_output_and_grid_must_differ_and_existing_files_need_overwrite(
    trained, tmp_path, capsys
):
    checkpoint, target = str(trained / "checkpoint.npz"), tmp_path / "s.npy"
    capsys.readouterr()
    assert sample("--checkpoint", checkpoint, "--output", str(target), "--grid", str(target)) == 1
    assert error_line(capsys) == f"error: --output and --grid are one file ({target}); give two"
    target.write_bytes(b"earlier samples")
    assert sample("--checkpoint", checkpoint, "--output", str(target)) == 1
    assert error_line(capsys) == (
        f"error: --output {target} already exists; pass --overwrite to replace it, "
        f"or choose another file"
    )
    assert target.read_bytes() == b"earlier samples"
    assert sample("--checkpoint", checkpoint, "--output", str(target), "--overwrite") == 0
    assert np.load(target).shape == (20, 28, 28)


# --- 3. every option checked before training; the checkpoint before evaluating ---------


@pytest.mark.parametrize(
    "flags, said",
    [
        (["--eval-every", "1", "--eval-samples", "1"], ("--eval-samples 1: the scores need at "
         "least 2 samples, and FID is reliable from about 256")),
        (["--batch-size", "400"], ("--batch-size 400 is more than the 300 training images "
         "(--train-size): not one full batch")),
        (["--checkpoint", "x.npz"], "--checkpoint, --output, --grid, --direction, --input and --caption go with --sample N"),
        (["--backend", "tpu"], "unknown backend 'tpu'"),
    ],
)  # fmt: skip
def test_bad_options_are_refused_before_any_work_and_leave_nothing(
    tmp_path, monkeypatch, capsys, flags, said
):
    no_data_loading(monkeypatch)
    out = tmp_path / "new" / "run"
    assert run("--out", str(out), *flags) == 1
    assert said in error_line(capsys)
    assert list(tmp_path.iterdir()) == []  # not even an empty folder


@pytest.mark.parametrize(
    "flag, value, said",
    [
        ("--label-smoothing", "1.5", "must lie in [0, 1), got 1.5"),
        ("--beta1", "1", "must lie in [0, 1), got 1"),
        ("--lr", "0", "must be a positive number, got 0"),
        ("--lr", "nan", "must be a positive number, got nan"),
        ("--d-noise", "-1", "must be a number >= 0 (0: none), got -1"),
        ("--d-dropout", "1", "must lie in [0, 1) (0: none), got 1"),
        ("--pack", "0", "must be a positive integer, got 0"),
        ("--d-augment", "colour", "must name DiffAugment steps, comma-separated, from color"),
        ("--labels", "15", "must be a multiple of 10 (the same count of each digit), got 15"),
    ],
)
def test_bad_numbers_are_refused_by_the_parser_naming_the_flag(
    tmp_path, monkeypatch, capsys, flag, value, said
):
    no_data_loading(monkeypatch)  # a parser that let it through must not start training
    with pytest.raises(SystemExit) as exit_info:
        example.main([flag, value, "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert f"argument {flag}: {said}" in capsys.readouterr().err


def test_the_checkpoint_is_written_before_evaluating(tmp_path, monkeypatch, capsys):
    from minigan.metrics import Evaluator

    class DiskFullEvaluator:
        def evaluate(self, images):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(
        Evaluator, "load_or_train", classmethod(lambda cls, **kw: DiskFullEvaluator())
    )
    out = tmp_path / "run"
    assert (
        run("--epochs", "1", "--out", str(out), "--eval-every", "1", "--eval-samples", "300") == 1
    )
    assert "No space left on device" in error_line(capsys)
    assert load_checkpoint(out / "checkpoint.npz")["epoch"] == 1  # the epoch is not lost


# --- 4. litter (the sweep of temporaries: tests/test_hostile_runs.py) ------------------------


def test_failed_download_leaves_no_folders(tmp_path, monkeypatch, capsys):
    dead = dataclasses.replace(data.MNIST, mirrors=("http://127.0.0.1:9/",))
    monkeypatch.setattr(data, "MNIST", dead)
    monkeypatch.setattr(runs, "load_mnist", data.load_mnist)
    monkeypatch.delenv("MINIGAN_DATA", raising=False)
    for data_dir in (["--data-dir", str(tmp_path / "mistyped" / "mnist")], []):  # then the cache
        assert run("--out", str(tmp_path / "runs" / "mnist"), *data_dir) == 1
        assert "no usable copy of train-images-idx3-ubyte.gz" in error_line(capsys)
        assert list(tmp_path.iterdir()) == []  # no runs/, no mistyped/, no cache/


# --- 8. files that are not checkpoints ----------------------------------------------------


def write_npy(path):
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))


def write_random(path):
    path.write_bytes(np.random.default_rng(0).bytes(3000))


def write_pickle(path):
    path.write_bytes(pickle.dumps({"gan": {}}))


def write_plain_npz(path):
    with open(path, "wb") as f:
        np.savez(f, weight=np.zeros(3))


def write_classifier_cache(path):
    save_checkpoint(path, {"format_version": 1, "classifier": {"0.weight": np.zeros(2)}})


@pytest.mark.parametrize(
    "write, said",
    [
        (write_npy, "is a NumPy .npy array, not a minigan checkpoint"),
        (write_random, "is not a readable minigan checkpoint: it starts with the bytes"),
        (write_pickle, "is a Python pickle, not a minigan checkpoint"),
        (write_plain_npz, "is a .npz archive of arrays (weight) without minigan's metadata"),
        (write_classifier_cache, ("is a minigan checkpoint, but not of a run of "
         "examples/mnist_gan.py (it holds classifier, format_version; no gan, config")),
    ],
)  # fmt: skip
def test_a_file_that_is_not_a_checkpoint_is_one_clear_line(
    tmp_path, monkeypatch, capsys, write, said
):
    no_data_loading(monkeypatch)
    out = tmp_path / "run"
    out.mkdir()
    write(out / "checkpoint.npz")
    assert run("--out", str(out), "--resume") == 1
    line = error_line(capsys)
    assert said in line and "allow_pickle" not in line
    target = tmp_path / "s.npy"
    assert sample("--checkpoint", str(out / "checkpoint.npz"), "--output", str(target)) == 1
    line = error_line(capsys)
    assert said in line and "allow_pickle" not in line
    assert not target.exists()


# --- 9. sizes that cannot fit ---------------------------------------------------------------


def test_a_model_too_big_for_memory_is_refused_up_front(tmp_path, monkeypatch, capsys):
    if runs.available_memory() is None:
        pytest.skip("this system does not say how much memory is available (/proc/meminfo)")
    no_data_loading(monkeypatch)
    assert run("--out", str(tmp_path / "run"), "--hidden", "10000000") == 1
    line = error_line(capsys)
    # Only the sizes that matter: no --eval-samples, which is never set here (issue 25, 17).
    assert line.startswith("error: training (--hidden 10000000, --batch-size 50, --train-size "
                           "300) needs about ")  # fmt: skip
    assert "GB of memory, and this machine has" in line and "available; choose smaller" in line
    assert list(tmp_path.iterdir()) == []


def test_the_memory_estimate_counts_adam_and_evaluation(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runs, "available_memory", lambda: 50_000_000)  # 50 MB free
    no_data_loading(monkeypatch)
    # 300 images and a small model fit; 20000 evaluation samples (2 x 63 MB) do not.
    args = ["--out", str(tmp_path / "run"), "--eval-every", "1", "--eval-samples", "20000"]
    assert run(*args) == 1
    assert "this machine has 50.0 MB available" in error_line(capsys)
    for cls, config in [
        (GAN, dataclasses.replace(PRESETS["classic"], hidden=1000)),
        (DCGAN, DCGAN.default_config()),
    ]:
        params = cls.parameter_count(config)
        assert params == weight_count(cls(config))
        assert cls.memory_bytes(config, 100) > 4 * 4 * params  # weights, grads, Adam's m, v


def test_sample_refuses_more_than_the_disk_holds(trained, tmp_path, capsys):
    n = 10**12  # 3 PB of float32 images
    capsys.readouterr()
    code = example.main(["--sample", str(n), "--checkpoint", str(trained / "checkpoint.npz"),
                         "--output", str(tmp_path / "s.npy")])  # fmt: skip
    assert code == 1
    assert error_line(capsys).startswith(f"error: --sample {n} writes 3,136,000.0 GB to ")
    assert not (tmp_path / "s.npy").exists()


def test_samples_are_written_in_chunks_with_little_memory(trained, tmp_path):
    state = load_checkpoint(trained / "checkpoint.npz")
    gan = GAN(GANConfig(**state["config"]), seed=3)
    gan.load_state_dict(state["gan"])
    n = 20_000  # 63 MB of images
    tracemalloc.start()
    first = write_samples(gan, n, tmp_path / "s.npy", chunk=1000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20e6, peak  # one chunk of 1000 images is 3 MB; all of them 63 MB
    images = np.load(tmp_path / "s.npy", mmap_mode="r")
    assert images.shape == (n, 28, 28) and images.dtype == np.float32
    np.testing.assert_array_equal(first, images[:64])
    # The same images as drawing all the noise at once: chunking changes nothing.
    gan.reseed_noise(3)
    whole = generate_unit_images(gan, gan.sample_noise(2500))
    gan.reseed_noise(3)
    write_samples(gan, 2500, tmp_path / "t.npy", chunk=700)
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), whole)


# --- 10. honest messages ------------------------------------------------------------------


def interrupt_at(monkeypatch, step: int) -> None:
    real_step = GAN.train_step

    def step_then_ctrl_c(self, batch):
        if self.steps == step:
            raise KeyboardInterrupt
        return real_step(self, batch)

    monkeypatch.setattr(GAN, "train_step", step_then_ctrl_c)


def test_ctrl_c_in_the_first_epoch_says_nothing_was_saved(tmp_path, monkeypatch, capsys):
    interrupt_at(monkeypatch, 3)
    assert run("--epochs", "2", "--out", str(tmp_path / "run")) == 130
    assert error_line(capsys) == ("interrupted: No epoch finished, so no checkpoint was saved")
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_ctrl_c_later_says_what_is_kept_and_how_to_resume(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    # Only the Ctrl-C is undone afterwards: the data set-up (synthetic digits where
    # MINIGAN_DATA has no MNIST) stays, so the resumed run needs no network either.
    with monkeypatch.context() as ctrl_c:
        interrupt_at(ctrl_c, 6 + 2)  # in epoch 2
        assert run("--epochs", "3", "--out", str(out)) == 130
    line = error_line(capsys)
    assert line.startswith(
        f"interrupted: The checkpoint from epoch 1 ({out / 'checkpoint.npz'}) is kept; "
        f"continue with: python "
    )
    assert line.endswith(f"mnist_gan.py --resume --out {out} --epochs 3 --log-every 2")
    assert run("--out", str(out), "--resume", "--epochs", "3") == 0  # the command works


def test_ctrl_c_while_loading_data_says_nothing_was_saved(tmp_path, monkeypatch, capsys):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "load_mnist", ctrl_c)
    assert run("--out", str(tmp_path / "run")) == 130
    assert error_line(capsys) == "interrupted: No epoch finished, so no checkpoint was saved"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "preset, advice",
    [
        ("default", "lower --lr"),
        ("classic", ("lower --lr, or train D on logits with BCEWithLogitsLoss (--d-output "
         "logits, as the default preset does)")),
    ],
)  # fmt: skip
def test_nan_in_the_first_epoch_says_nothing_was_saved(
    tmp_path, monkeypatch, capsys, preset, advice
):
    real_step = GAN.train_step

    def step_that_diverges(self, batch):
        figures = real_step(self, batch)
        figures["g_loss"] = figures["g_loss"] * np.inf
        return figures

    monkeypatch.setattr(GAN, "train_step", step_that_diverges)
    assert run("--out", str(tmp_path / "run"), "--preset", preset) == 1
    assert error_line(capsys) == (
        "error: g_loss became inf at epoch 1, step 1-2 of 6 (global step 1-2); training "
        f"stopped. No epoch finished, so no checkpoint was saved: {advice}"
    )


def test_resume_to_an_epoch_already_past_says_so_and_does_nothing(trained, capsys):
    before = (trained / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    assert run("--out", str(trained), "--resume", "--epochs", "1") == 1
    assert error_line(capsys) == (
        f"error: {trained / 'checkpoint.npz'} is already past epoch 1: it finished epoch 2; "
        f"nothing was done. --epochs counts every epoch, those done included: pass "
        f"--epochs 3 or more to train on"
    )
    assert run("--out", str(trained), "--resume", "--epochs", "2") == 0
    assert capsys.readouterr().out == (
        f"nothing to do: {trained / 'checkpoint.npz'} already finished epoch 2 of 2; pass a "
        f"larger --epochs to train on\n"
    )
    assert (trained / "checkpoint.npz").read_bytes() == before


def test_resume_names_train_size_when_it_changes_and_keeps_the_runs_own(trained, capsys):
    capsys.readouterr()
    argv = ["--batch-size", "50", "--hidden", "32", "--log-every", "2", "--out", str(trained),
            "--resume", "--epochs", "3"]  # fmt: skip
    assert example.main([*argv, "--train-size", "200"]) == 1
    assert error_line(capsys) == (
        f"error: {trained / 'checkpoint.npz'} was trained on 300 images, --train-size 200 "
        f"asks for another number; --resume continues that run unchanged: drop --train-size"
    )
    assert example.main(argv) == 0  # without --train-size: the run's own 300 images
    assert load_checkpoint(trained / "checkpoint.npz")["loader"]["num_examples"] == 300


def test_the_classifier_time_is_the_same_everywhere(capsys):
    """--help, the metrics' message, evaluate.py and the README quote one measured figure."""
    from minigan.metrics import evaluator

    with pytest.raises(SystemExit):
        example.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    root = Path(example.__file__).parent.parent
    readme = (root / "README.md").read_text()
    metrics = Path(evaluator.__file__).read_text()
    evaluate = (root / "examples" / "evaluate.py").read_text()
    for text in (help_text, readme, metrics, evaluate):
        text = " ".join(text.split())
        assert "about 3 CPU minutes" in text and "about 35 s" not in text


# --- issue 25, item 10: a flag that would be ignored is refused ---------------------------


def parser_error(capsys) -> str:
    """The message of argparse's refusal (exit 2), after its usage lines."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1].split(" error: ", 1)[1]


SAMPLING = ["--sample", "5", "--checkpoint", "c.npz", "--output", "s.npy"]


@pytest.mark.parametrize(
    "argv, said",
    [
        (["--label", "3"], ("argument --label: goes with --sample N (draw only digit K); "
         "training draws every digit: drop --label")),
        (["--eval-samples", "500"], ("argument --eval-samples: sets how many samples "
         "--eval-every K scores, and --eval-every is 0 (no scoring): add --eval-every K, or "
         "drop --eval-samples")),
        (["--resume", "--eval-every", "0", "--eval-samples", "500"], ("argument --eval-samples: "
         "sets how many samples --eval-every K scores, and --eval-every is 0 (no scoring): add "
         "--eval-every K, or drop --eval-samples")),
        (["--dataset", "folder:pictures", "--data-dir", "data"], ("argument --data-dir: is where "
         "the MNIST and Fashion-MNIST files are looked for, and --dataset folder:pictures reads "
         "its own folder: drop --data-dir")),
        ([*SAMPLING, "--epochs", "3", "--lr", "0.1"], ("--epochs and --lr would be ignored: "
         "--sample N only draws from the model in --checkpoint, with that run's settings; drop "
         "them")),
        ([*SAMPLING, "--out", "runs/other"], ("--out would be ignored: --sample N only draws "
         "from the model in --checkpoint, with that run's settings; drop it")),
        # Written out at their defaults, they are still choices that nothing will read.
        ([*SAMPLING, "--out", "runs/mnist", "--log-every", "20"], ("--out and --log-every "
         "would be ignored: --sample N only draws from the model in --checkpoint, with that "
         "run's settings; drop them")),
        (["--eval-samples", "10000"], ("argument --eval-samples: sets how many samples "
         "--eval-every K scores, and --eval-every is 0 (no scoring): add --eval-every K, or "
         "drop --eval-samples")),
        (["--eval-samp", "10000"], ("argument --eval-samples: sets how many samples "
         "--eval-every K scores, and --eval-every is 0 (no scoring): add --eval-every K, or "
         "drop --eval-samples")),
    ],
)  # fmt: skip
def test_a_flag_that_would_be_ignored_is_refused_naming_it(monkeypatch, capsys, argv, said):
    no_data_loading(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        example.main(argv)
    assert exit_info.value.code == 2
    assert parser_error(capsys) == said


@pytest.mark.parametrize(
    "argv",
    [
        # What --sample uses.
        [*SAMPLING, "--seed", "3", "--backend", "numpy", "--model", "cgan", "--label", "3",
         "--overwrite", "--threads", "1"],
        ["--eval-every", "2", "--eval-samples", "500"],
        ["--resume", "--seed", "1", "--data-dir", "data", "--eval-every", "1"],
        ["--dataset", "mnist", "--data-dir", "data"],
    ],
)  # fmt: skip
def test_flags_that_will_be_used_are_not_refused(argv):
    example.parse_args(argv)  # no SystemExit


# --- issue 25, item 18: more threads than cores ------------------------------------------


def test_more_threads_than_the_process_may_use_are_refused(monkeypatch, capsys):
    monkeypatch.setattr(example.cli, "usable_cores", lambda: 2)
    with pytest.raises(SystemExit) as exit_info:
        example.main(["--threads", "1000"])
    assert exit_info.value.code == 2
    assert parser_error(capsys) == (
        "argument --threads: 1000 is more than the 2 cores this process may use "
        "(os.sched_getaffinity): more threads than cores only wait for each other; pass at "
        "most 2"
    )
    assert example.parse_args(["--threads", "2"]).threads == 2


def test_the_cores_are_those_this_process_may_run_on():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("this system does not say which cores a process may use")
    assert example.cli.usable_cores() == len(os.sched_getaffinity(0))


def test_help_says_what_a_flag_means_for_a_model_whose_field_says_otherwise(capsys):
    with pytest.raises(SystemExit):
        example.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "width of the hidden layers of G and D (default: 512 for gan" in text
    assert ("; for sgan: width of G's hidden layers only: D's widths are d_hidden (1000, 500, "
            "250, 250, 250), which has no flag") in text  # fmt: skip


# --- issue 25, item 17: examples/evaluate.py checks the samples first ---------------------


@pytest.fixture
def evaluate_script(monkeypatch):
    """examples/evaluate.py, whose classifier must not be trained or loaded."""
    import importlib.util

    from minigan.metrics import Evaluator

    path = Path(example.__file__).parent / "evaluate.py"
    spec = importlib.util.spec_from_file_location("evaluate_for_hostile_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def no_classifier(*args, **kwargs):
        raise AssertionError("the classifier was trained or loaded before the file was checked")

    monkeypatch.setattr(Evaluator, "load_or_train", classmethod(no_classifier))
    return module


def evaluate_error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert len(captured.err.splitlines()) == 1, captured.err
    return captured.err.strip()


def test_evaluate_checks_the_samples_shape_before_training_its_classifier(
    evaluate_script, tmp_path, capsys
):
    path = tmp_path / "samples.npy"
    np.save(path, np.zeros((500, 32, 32), np.float32))
    assert evaluate_script.main([str(path)]) == 1
    assert evaluate_error(capsys) == (
        "evaluate.py: error: Evaluator: expected samples (N, 28, 28) or (N, 784), got (500, 32, 32)"
    )


@pytest.mark.parametrize(
    "content, said",
    [
        (b"0.5 0.25\n0.75 1\n", "it is a text file (it starts '0.5 0.25'), not a binary .npy"),
        (b"", "the file is empty"),
        (pickle.dumps([0.5]), "it is a Python pickle, and loading one could run any code"),
        (bytes(range(40)), ("it starts with the bytes 00 01 02 03 04 05, where a .npy file starts "
         "with 93 4e 55 4d 50 59 (\\x93NUMPY): it is damaged, or another format")),
    ],
    ids=["text", "empty", "pickle", "binary"],
)  # fmt: skip
def test_evaluate_says_what_a_file_that_is_no_npy_is(
    evaluate_script, tmp_path, capsys, content, said
):
    path = tmp_path / "samples.npy"
    path.write_bytes(content)
    assert evaluate_script.main([str(path)]) == 1
    assert evaluate_error(capsys) == (
        f"evaluate.py: error: cannot read {path} as a .npy array: {said}; give the .npy file "
        f"that sample.py --output FILE.npy writes (or np.save one)"
    )


def test_evaluate_refuses_an_npy_of_python_objects_without_numpys_advice(
    evaluate_script, tmp_path, capsys
):
    path = tmp_path / "samples.npy"
    np.save(path, np.array([{"image": 1}], dtype=object), allow_pickle=True)
    assert evaluate_script.main([str(path)]) == 1
    line = evaluate_error(capsys)
    assert line == (
        f"evaluate.py: error: cannot read {path} as a .npy array of numbers: it holds Python "
        f"objects (pickled), and loading them could run any code; give the .npy file that "
        f"sample.py --output FILE.npy writes (or np.save one)"
    )
    assert "allow_pickle" not in line
