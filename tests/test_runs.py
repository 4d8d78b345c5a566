"""minigan.runs: the run folder's safety, the memory check, planning and resuming a run.

These are the library's parts, tested alone; tests/test_hostile_cli.py and
tests/test_mnist_gan_example.py drive them through examples/mnist_gan.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from minigan import cli, runs
from minigan.checkpoint import CheckpointError, save_checkpoint
from minigan.models import DCGAN, GAN, MODELS, PRESETS


def parse(*argv: str) -> argparse.Namespace:
    """examples/mnist_gan.py's command line, parsed."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "examples" / "mnist_gan.py"
    spec = importlib.util.spec_from_file_location("mnist_gan_for_runs_tests", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example.parse_args(list(argv))


# --- the run folder --------------------------------------------------------------------------


def test_check_out_dir_creates_nothing_and_names_what_is_in_the_way(tmp_path):
    runs.check_out_dir(tmp_path / "new" / "deeper")  # may be created later: fine
    assert list(tmp_path.iterdir()) == []
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(runs.RunError, match=r"cannot write to --out .*: .*a-file is not a folder"):
        runs.check_out_dir(blocker / "run")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_check_out_dir_refuses_a_folder_it_cannot_write(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(runs.RunError, match="is not writable"):
            runs.check_out_dir(locked / "run")
    finally:
        locked.chmod(0o700)


def test_run_files_are_only_the_files_a_run_writes(tmp_path):
    names = ["checkpoint.npz", "history.jsonl", "history.png", "real.png", "samples_epoch_001.png",
             "samples_epoch_1234.png", "notes.txt", "samples_epoch_01.png", "samples_epoch_002.npy",
             ".checkpoint.npz.k3j_9x2a.tmp", ".notes.txt.abc.tmp", ".checkpoint.npz.tmp"]  # fmt: skip
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "real.png.d").mkdir()
    assert [p.name for p in runs.run_files(tmp_path)] == [
        "checkpoint.npz", "history.jsonl", "history.png", "real.png",
        "samples_epoch_001.png", "samples_epoch_1234.png",
    ]  # fmt: skip
    assert runs.stale_temporary_files(tmp_path) == []  # no minigan mark: never swept
    assert [p.name for p in runs.old_temporary_files(tmp_path)] == [".checkpoint.npz.k3j_9x2a.tmp"]
    assert runs.run_files(tmp_path / "missing") == runs.stale_temporary_files(tmp_path / "x") == []


def test_a_folder_holding_a_run_is_not_replaced(tmp_path):
    runs.refuse_to_replace_a_run(tmp_path)  # empty: fine
    (tmp_path / "real.png").write_bytes(b"x")  # no checkpoint, history or grid yet: fine
    runs.refuse_to_replace_a_run(tmp_path)
    (tmp_path / "samples_epoch_001.png").write_bytes(b"x")
    with pytest.raises(runs.RunError) as error:  # stopped before its first checkpoint
        runs.refuse_to_replace_a_run(tmp_path)
    assert str(error.value).startswith(
        f"--out {tmp_path} holds a run that saved no checkpoint (1 samples_epoch_"
    )
    (tmp_path / "checkpoint.npz").write_bytes(b"x")
    with pytest.raises(runs.RunError) as error:
        runs.refuse_to_replace_a_run(tmp_path)
    assert str(error.value).startswith(
        f"--out {tmp_path} already holds a run (checkpoint.npz, 1 samples_epoch_"
    )


def test_remove_files_says_how_many_and_how_much(tmp_path, capsys):
    paths = [tmp_path / "a", tmp_path / "b"]
    for path in paths:
        path.write_bytes(b"\0" * 300_000)
    runs.remove_files(paths, "old things")
    assert capsys.readouterr().out == f"removed 2 old things (0.6 MB) from {tmp_path}\n"
    assert not any(p.exists() for p in paths)
    runs.remove_files([], "nothing")
    assert capsys.readouterr().out == ""


def test_same_file_sees_links_and_paths_that_do_not_exist_yet(tmp_path):
    a = tmp_path / "a"
    a.write_bytes(b"x")
    os.link(a, tmp_path / "b")
    assert runs.same_file(a, tmp_path / "b")
    assert runs.same_file(tmp_path / "new", tmp_path / "." / "new")
    assert not runs.same_file(a, tmp_path / "new")


# --- memory ------------------------------------------------------------------------------------


def test_check_memory_refuses_what_does_not_fit(monkeypatch):
    monkeypatch.setattr(runs, "available_memory", lambda: 50_000_000)
    runs.check_memory(49_000_000, "a small run")
    with pytest.raises(runs.RunError) as error:
        runs.check_memory(3_000_000_000, "a big run")
    assert str(error.value) == (
        "a big run needs about 3.0 GB of memory, and this machine has 50.0 MB available; "
        "choose smaller sizes"
    )
    monkeypatch.setattr(runs, "available_memory", lambda: None)  # unknown: no refusal
    runs.check_memory(10**15, "anything")


# --- planning ----------------------------------------------------------------------------------


def test_a_new_run_takes_the_models_defaults_and_the_flags_given():
    plan = runs.plan_new_run(parse())
    assert (plan.model, plan.dataset, plan.seed, plan.epochs) == ("gan", "mnist", 0, 20)
    assert plan.config == PRESETS["default"] and plan.image_shape == (1, 28, 28)
    assert plan.train_size == 60000
    plan = runs.plan_new_run(parse("--model", "dcgan", "--lr", "1e-3", "--beta1", "0.3"))
    assert plan.config == dataclasses.replace(DCGAN.default_config(), lr=1e-3, betas=(0.3, 0.999))
    plan = runs.plan_new_run(parse("--label-smoothing", "0.2", "--d-output", "sigmoid"))
    assert plan.config.real_label == 0.8 and plan.config.logits is False


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_each_preset_is_a_bundle_of_field_values_that_flags_change(preset):
    assert runs.plan_new_run(parse("--preset", preset)).config == PRESETS[preset]
    plan = runs.plan_new_run(parse("--preset", preset, "--hidden", "48"))
    assert plan.config == dataclasses.replace(PRESETS[preset], hidden=48)


def test_a_folder_dataset_is_planned_at_its_image_size(tmp_path):
    plan = runs.plan_new_run(parse("--model", "dcgan", "--dataset", f"folder:{tmp_path}"))
    assert plan.image_shape == (3, 32, 32) and plan.train_size is None
    assert (plan.config.channels, plan.config.image_size) == (3, 32)
    with pytest.raises(runs.RunError, match="--model dcgan cannot train on folder:.*image_size"):
        runs.plan_new_run(parse("--model", "dcgan", "--dataset", f"folder:{tmp_path}",
                                "--image-size", "48"))  # fmt: skip


def a_saved_run(tmp_path: Path, model: str = "gan", **config_changes) -> dict:
    cls = MODELS[model]
    config = dataclasses.replace(cls.default_config(), **config_changes)
    gan = cls(config, seed=0)
    rng = np.random.default_rng(0).bit_generator.state  # a loader's shuffling state
    state = {"gan": gan.state_dict(), "loader": {"rng": rng, "num_examples": 300},
             "history": [], "epoch": 2, "config": config.to_dict(), "seed": 4,
             "dataset": "mnist", "image_shape": [1, 28, 28]}  # fmt: skip
    save_checkpoint(tmp_path / "checkpoint.npz", state)
    return state


def test_a_resumed_run_is_the_saved_one_and_refuses_changes(tmp_path):
    state = a_saved_run(tmp_path, "lsgan", hidden=24)
    path = tmp_path / "checkpoint.npz"
    plan = runs.plan_resumed_run(parse("--resume", "--epochs", "5"), runs.load_run(path), path)
    assert (plan.model, plan.seed, plan.epochs, plan.start_epoch) == ("lsgan", 4, 5, 2)
    assert plan.config.hidden == 24 and plan.train_size == 300 and plan.state is not None
    same = parse("--resume", "--hidden", "24", "--model", "lsgan", "--seed", "4")
    assert runs.plan_resumed_run(same, state, path).config.hidden == 24
    with pytest.raises(CheckpointError) as error:
        runs.plan_resumed_run(parse("--resume", "--hidden", "32", "--seed", "1"), state, path)
    assert f"{path} was trained with other settings (hidden=24 there, 32 here; seed=4 there, " \
        "1 here); --resume continues that run unchanged" in str(error.value)  # fmt: skip
    with pytest.raises(runs.RunError, match=r"is already past epoch 1: it finished epoch 2"):
        runs.plan_resumed_run(parse("--resume", "--epochs", "1"), state, path)
    with pytest.raises(ValueError, match="--clip does not apply to --model lsgan"):
        runs.plan_resumed_run(parse("--resume", "--clip", "0.1"), state, path)


def test_load_run_refuses_a_checkpoint_of_something_else_and_upgrades_an_old_run(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"format_version": 1, "classifier": {"0.weight": np.zeros(2)}})
    with pytest.raises(CheckpointError, match=r"not of a run of examples/mnist_gan.py \(it "
                       r"holds classifier, format_version; no gan, config, loader"):  # fmt: skip
        runs.load_run(path)
    state = a_saved_run(tmp_path)
    del state["gan"]["model"], state["dataset"], state["image_shape"], state["config"]["pack"]
    save_checkpoint(path, state)
    loaded = runs.load_run(path)
    assert loaded["gan"]["model"] == "gan" and loaded["dataset"] == "mnist"
    assert list(loaded["image_shape"]) == [1, 28, 28] and loaded["config"]["pack"] == 1


# --- a stopped run, and sampling ---------------------------------------------------------------


def test_the_resume_command_keeps_the_flags_a_checkpoint_does_not(monkeypatch):
    monkeypatch.setattr(cli, "usable_cores", lambda: 2)  # --threads 2 passes on any machine
    defaults = vars(parse())
    args = parse("--out", "runs/my run", "--epochs", "9", "--threads", "2", "--hidden", "64",
                 "--log-every", "20")  # fmt: skip
    monkeypatch.setattr(runs.shutil, "which", lambda name: sys.executable)  # python is this one
    script = os.path.abspath("examples/mnist_gan.py")
    assert runs.resume_command("examples/mnist_gan.py", args, defaults) == (
        f"python {script} --resume --out 'runs/my run' --epochs 9 --threads 2"
    )


def test_a_stopped_run_says_what_it_kept():
    path = Path("run/checkpoint.npz")
    assert runs.kept(path, None) == "No epoch finished, so no checkpoint was saved"
    assert runs.kept(path, 3) == f"The checkpoint from epoch 3 ({path}) is kept"
    assert runs.divergence_advice(PRESETS["default"]) == "lower --lr"
    assert "--d-output logits" in runs.divergence_advice(PRESETS["classic"])


def test_sampling_never_writes_onto_the_checkpoint_or_an_existing_file(tmp_path):
    checkpoint = tmp_path / "checkpoint.npz"
    checkpoint.write_bytes(b"a model")
    (tmp_path / "old.npy").write_bytes(b"old samples")
    for files, said in [
        ((None, "s.npy", None), "--sample needs --checkpoint PATH and --output FILE.npy"),
        ((checkpoint, None, None), "--sample needs --checkpoint PATH and --output FILE.npy"),
        ((checkpoint, checkpoint, None), "is the checkpoint being read"),
        ((checkpoint, tmp_path / "s.npy", checkpoint), "--grid .* is the checkpoint being read"),
        ((checkpoint, tmp_path / "old.npy", None), "already exists; pass --overwrite"),
        ((checkpoint, tmp_path / "no" / "s.npy", None), "the folder .*no does not exist"),
        ((checkpoint, tmp_path / "s.npy", tmp_path / "s.npy"), "are one file"),
    ]:
        with pytest.raises(runs.RunError, match=said):
            runs.check_sample_files(*files, overwrite=False)
    runs.check_sample_files(checkpoint, tmp_path / "old.npy", None, overwrite=True)


def test_sampling_a_run_writes_what_the_model_draws(tmp_path):
    a_saved_run(tmp_path, "gan", hidden=16)
    out = tmp_path / "s.npy"
    said = runs.sample_run(str(tmp_path / "checkpoint.npz"), 30, str(out), seed=2)
    assert said == f"wrote 30 samples, float32 (30, 28, 28) in [0, 1], to {out}"
    state = runs.load_run(tmp_path / "checkpoint.npz", runs.MODEL_KEYS)
    gan = GAN(runs.config_from_checkpoint(state, tmp_path), seed=2)
    gan.load_state_dict(state["gan"])
    expected = (gan.generate(gan.sample_noise(30)).reshape(30, 28, 28) + 1) / 2
    np.testing.assert_allclose(np.load(out), np.clip(expected, 0, 1), rtol=0, atol=1e-7)
    with pytest.raises(runs.RunError, match="holds a 'gan' model, not 'wgan'"):
        runs.sample_run(str(tmp_path / "checkpoint.npz"), 5, str(tmp_path / "t.npy"), model="wgan")
