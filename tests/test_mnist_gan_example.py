"""examples/mnist_gan.py end to end: outputs, resume, sampling, failures, learning."""

import dataclasses
import importlib.util
import json
import os
import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from minigan import data, runs
from minigan.checkpoint import load_checkpoint, save_checkpoint
from minigan.gan import GAN
from minigan.images import unit_images
from minigan.models import MODELS, PRESETS

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mnist_gan.py"
_spec = importlib.util.spec_from_file_location("mnist_gan_example", EXAMPLE)
example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example)

SMALL = ["--train-size", "300", "--batch-size", "50", "--hidden", "32", "--log-every", "2"]


def real_mnist_available() -> bool:
    root = os.environ.get("MINIGAN_DATA")
    return bool(root) and (Path(root) / "mnist" / "train-images-idx3-ubyte.gz").is_file()


@pytest.fixture(autouse=True)
def mnist_or_synthetic(monkeypatch, tmp_path):
    """Real MNIST when MINIGAN_DATA has it; otherwise blobs of synthetic 'digits'."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if real_mnist_available():
        return
    rng = np.random.default_rng(0)
    images = (rng.uniform(size=(1000, 28, 28)) > 0.8).astype(np.uint8) * 255
    labels = rng.integers(0, 10, 1000).astype(np.uint8)
    monkeypatch.setattr(runs, "load_mnist", lambda split, root=None: (images, labels))


def run(*args: str) -> int:
    return example.main([*SMALL, *args])


def test_training_writes_every_output_with_finite_figures(tmp_path):
    out = tmp_path / "run"
    assert run("--epochs", "2", "--out", str(out)) == 0
    for name in ["real.png", "samples_epoch_001.png", "samples_epoch_002.png",
                 "history.png", "history.jsonl", "checkpoint.npz"]:  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 3  # 6 steps per epoch, logged every 2
    assert rows[-1]["epoch"] == 2.0
    for row in rows:
        assert all(np.isfinite(row[k]) for k in ("d_loss", "g_loss", "d_real", "d_fake"))
    assert load_checkpoint(out / "checkpoint.npz")["epoch"] == 2
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def test_resume_gives_bit_identical_weights_to_an_uninterrupted_run(tmp_path):
    assert run("--epochs", "3", "--out", str(tmp_path / "straight")) == 0
    assert run("--epochs", "1", "--out", str(tmp_path / "resumed")) == 0
    assert run("--epochs", "3", "--out", str(tmp_path / "resumed"), "--resume") == 0
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.npz")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoint.npz")
    for net in ("generator", "discriminator"):
        for name, value in a["gan"][net].items():
            np.testing.assert_array_equal(value, b["gan"][net][name], err_msg=f"{net} {name}")
    for opt in ("g_optimizer", "d_optimizer"):
        np.testing.assert_array_equal(a["gan"][opt]["m"], b["gan"][opt]["m"])
        np.testing.assert_array_equal(a["gan"][opt]["v"], b["gan"][opt]["v"])
    assert a["history"] == b["history"]


def test_sample_mode_writes_float32_images_in_unit_range(tmp_path):
    out = tmp_path / "run"
    assert run("--epochs", "1", "--out", str(out)) == 0
    npy, grid = tmp_path / "s.npy", tmp_path / "s.png"
    code = example.main(["--sample", "130", "--checkpoint", str(out / "checkpoint.npz"),
                         "--output", str(npy), "--grid", str(grid)])  # fmt: skip
    assert code == 0
    samples = np.load(npy)
    assert samples.shape == (130, 28, 28) and samples.dtype == np.float32
    assert 0.0 <= samples.min() and samples.max() <= 1.0 and samples.std() > 0
    assert grid.stat().st_size > 0
    # examples/sample.py is the same command on its own: the same samples, bit for bit.
    spec = importlib.util.spec_from_file_location("sample_example", EXAMPLE.parent / "sample.py")
    sample_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sample_script)
    again = tmp_path / "again.npy"
    code = sample_script.main(["--sample", "130", "--checkpoint", str(out / "checkpoint.npz"),
                               "--output", str(again), "--grid", str(tmp_path / "again.png")])  # fmt: skip
    assert code == 0 and again.read_bytes() == npy.read_bytes()
    assert (tmp_path / "again.png").read_bytes() == grid.read_bytes()
    assert sample_script.main(["--sample", "5", "--checkpoint", str(out / "checkpoint.npz"),
                               "--output", str(again)]) == 1  # fmt: skip


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert run("--epochs", "1", "--out", str(out)) == 0
    before = (out / "checkpoint.npz").read_bytes()
    real_step = GAN.train_step

    def step_that_diverges(self, batch):
        figures = real_step(self, batch)
        if self.steps == 6 + 4:  # the 4th step of epoch 2
            figures["d_loss"] = figures["d_loss"] * np.nan
        return figures

    monkeypatch.setattr(GAN, "train_step", step_that_diverges)
    assert run("--epochs", "2", "--out", str(out), "--resume") == 1
    err = capsys.readouterr().err
    assert "d_loss became nan at epoch 2, step 3-4 of 6 (global step 9-10); training stopped" in err
    assert f"The checkpoint from epoch 1 ({out / 'checkpoint.npz'}) is kept: lower --lr\n" in err
    assert "BCEWithLogits" not in err  # the default preset already trains on logits
    assert (out / "checkpoint.npz").read_bytes() == before


def test_truncated_checkpoint_is_reported_clearly(tmp_path, capsys):
    out = tmp_path / "run"
    assert run("--epochs", "1", "--out", str(out)) == 0
    path = out / "checkpoint.npz"
    path.write_bytes(path.read_bytes()[:1000])
    assert run("--epochs", "2", "--out", str(out), "--resume") == 1
    assert "is not a readable minigan checkpoint" in capsys.readouterr().err
    code = example.main(
        ["--sample", "5", "--checkpoint", str(path), "--output", str(tmp_path / "x.npy")]
    )
    assert code == 1
    assert "truncated or damaged" in capsys.readouterr().err


def test_resume_refuses_flags_that_would_change_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert run("--epochs", "1", "--out", str(out)) == 0
    for flags, said in [
        (["--hidden", "48"], "hidden=32 there, 48 here"),
        (["--lr", "0.01"], "lr=0.0004 there, 0.01 here"),
        (["--preset", "classic"], "logits=True there, False here"),
        (["--seed", "3"], "seed=0 there, 3 here"),
    ]:
        assert run(*flags, "--epochs", "2", "--out", str(out), "--resume") == 1
        err = capsys.readouterr().err
        assert "was trained with other settings" in err and said in err, err
    assert load_checkpoint(out / "checkpoint.npz")["epoch"] == 1


def test_resume_keeps_the_runs_own_seed(tmp_path):
    """--resume without --seed continues a --seed 5 run exactly, not a seed-0 one."""
    assert run("--seed", "5", "--epochs", "2", "--out", str(tmp_path / "straight")) == 0
    assert run("--seed", "5", "--epochs", "1", "--out", str(tmp_path / "resumed")) == 0
    assert run("--epochs", "2", "--out", str(tmp_path / "resumed"), "--resume") == 0
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.npz")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoint.npz")
    assert b["seed"] == 5
    for name, value in a["gan"]["generator"].items():
        np.testing.assert_array_equal(value, b["gan"]["generator"][name], err_msg=name)


def test_bad_counts_are_refused_by_the_parser(capsys):
    for flag in ("--log-every", "--epochs", "--batch-size"):
        with pytest.raises(SystemExit) as exit_info:
            example.main([flag, "0"])
        assert exit_info.value.code == 2
        assert "must be a positive integer, got 0" in capsys.readouterr().err


def test_sample_into_a_missing_folder_is_a_clean_error(tmp_path, capsys):
    out = tmp_path / "run"
    assert run("--epochs", "1", "--out", str(out)) == 0
    capsys.readouterr()
    target = tmp_path / "no-such-folder" / "x.npy"
    code = example.main(
        ["--sample", "5", "--checkpoint", str(out / "checkpoint.npz"), "--output", str(target)]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err == f"error: cannot write {target}: the folder {target.parent} does not exist\n"


def test_unwritable_out_is_reported_before_training(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert run("--out", str(blocker / "run")) == 1
    assert f"cannot write to --out {blocker / 'run'}" in capsys.readouterr().err


def test_missing_data_gives_a_clean_error_without_traceback(tmp_path, monkeypatch, capsys):
    dead = dataclasses.replace(data.MNIST, mirrors=("http://127.0.0.1:9/",))
    monkeypatch.setattr(data, "MNIST", dead)
    monkeypatch.setattr(runs, "load_mnist", data.load_mnist)
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path / "empty"))
    assert run("--out", str(tmp_path / "run"), "--data-dir", str(tmp_path / "nothing")) == 1
    err = capsys.readouterr().err
    assert err.startswith("MNIST: downloading http://127.0.0.1:9/train-images-idx3-ubyte.gz")
    assert "\nerror: MNIST: no usable copy of train-images-idx3-ubyte.gz" in err
    assert "Traceback" not in err and "MINIGAN_DATA" in err


def test_unknown_or_missing_backend_is_a_clean_error(tmp_path, capsys):
    assert run("--backend", "tpu", "--out", str(tmp_path / "a")) == 1
    assert "unknown backend 'tpu'; valid backends are 'numpy', 'cupy'" in capsys.readouterr().err


def test_sample_without_checkpoint_says_what_is_needed(capsys):
    assert example.main(["--sample", "10"]) == 1
    assert "--sample needs --checkpoint PATH and --output FILE.npy" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not real_mnist_available(), reason="needs real MNIST: set MINIGAN_DATA")
def test_a_few_hundred_steps_on_mnist_move_samples_towards_the_data():
    """Honest and cheap: at first G paints grey noise, half of its pixels bright; after
    300 steps about as many pixels are ink as in real digits, and D(G(z)) has moved."""
    images, _ = data.load_mnist("train")
    x = data.to_gan_range(images[:30000])
    gan = GAN(PRESETS["default"], seed=0)
    z = gan.sample_noise(500)

    def ink(batch):  # the fraction of pixels brighter than mid-grey
        return float(((batch + 1) / 2 > 0.5).mean())

    real, start = ink(x[:5000]), ink(gan.generate(z))
    d_fake = [float(gan.train_step(x[i * 100 : (i + 1) * 100])["d_fake"]) for i in range(300)]
    end = ink(gan.generate(z))
    # measured: 0.51 at the start, 0.12-0.18 after 300 steps (the data: 0.13)
    assert abs(end - real) < abs(start - real) / 3, (start, end, real)
    assert np.mean(d_fake[:5]) - np.mean(d_fake[-50:]) > 0.08  # D learned to spot fakes


@pytest.mark.skipif(not real_mnist_available(), reason="needs real MNIST: set MINIGAN_DATA")
def test_eval_every_logs_scores_into_history(tmp_path, monkeypatch):
    from minigan.metrics import Evaluator

    train_small = Evaluator.load_or_train.__func__  # a quick classifier: 1 epoch, 2000 images
    monkeypatch.setattr(
        Evaluator,
        "load_or_train",
        classmethod(lambda cls, **kw: train_small(cls, **kw, epochs=1, num_train=2000)),
    )
    out = tmp_path / "run"
    assert (
        run("--epochs", "2", "--out", str(out), "--eval-every", "1", "--eval-samples", "300") == 0
    )
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    scored = [row for row in rows if "fid" in row]
    assert [row["epoch"] for row in scored] == [1, 2]
    for row in scored:
        assert row["fid"] > 0 and 1 <= row["inception_score"] <= 10 and row["n_samples"] == 300
    assert (out / "history.png").stat().st_size > 0


def test_eval_every_on_fashion_scores_through_the_fashion_classifier(tmp_path, monkeypatch):
    from minigan.data import DataError, load_fashion_mnist
    from minigan.metrics import Evaluator

    try:
        load_fashion_mnist("test", download=False)
    except DataError:
        pytest.skip("needs Fashion-MNIST: set MINIGAN_DATA")
    asked = []
    train_small = Evaluator.load_or_train.__func__

    def load_or_train(cls, **kw):
        asked.append(kw["dataset"])
        return train_small(cls, **kw, epochs=1, num_train=2000)

    monkeypatch.setattr(Evaluator, "load_or_train", classmethod(load_or_train))
    out = tmp_path / "run"
    flags = ["--dataset", "fashion", "--eval-every", "1", "--eval-samples", "300"]
    assert run("--epochs", "1", "--out", str(out), *flags) == 0
    assert asked == ["fashion"]
    assert (tmp_path / "cache" / "minigan" / "fashion_classifier.npz").is_file()
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    (scored,) = [row for row in rows if "fid" in row]
    assert scored["fid"] > 0 and scored["n_samples"] == 300


# --- the GAN family and other datasets ------------------------------------------------


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--n-critic", "3"], r"--n-critic does not apply to --model gan; its settings are "),
        (["--d-noise", "0.2"], r"--d-noise does not apply to --model gan; its settings are "),
        (["--d-augment", "color"], r"--d-augment does not apply to --model gan; its settings "),
        (["--d-norm", "batch"], r"--d-norm does not apply to --model gan; its settings are "),
        (["--d-fc-width", "9"], r"--d-fc-width does not apply to --model gan; its settings "),
        (["--g-fc-width", "9"], r"--g-fc-width does not apply to --model gan; its settings "),
        (["--pack", "3"], r"batch size 100 is not a multiple of pack 3 .*or pack 1"),
        (["--model", "wgan-gp", "--clip", "0.1"], r"--clip does not apply to --model wgan-gp"),
        (["--model", "dcgan", "--hidden", "64"], r"--hidden does not apply to --model dcgan"),
        (["--model", "lsgan", "--preset", "classic"], r"--preset names a recipe of --model gan"),
        (
            ["--dataset", f"folder:{EXAMPLE.parent}", "--eval-every", "1"],
            r"it has no classifier for folder:.*works with --dataset mnist or fashion only",
        ),
        (["--image-size", "32"], r"--image-size 32: mnist images are 28x28"),
        (["--dataset", "folder:no/such/folder"], r"no folder at no/such/folder"),
    ],
)
def test_flags_that_do_not_fit_the_model_or_data_are_refused_before_any_work(
    tmp_path, capsys, flags, message
):
    assert example.main(["--train-size", "300", "--out", str(tmp_path / "run"), *flags]) == 1
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_each_model_trains_its_own_default_number_of_epochs(tmp_path, capsys):
    from minigan.models import (
        ACGAN,
        CGAN,
        DCGAN,
        GAN,
        LSGAN,
        SGAN,
        WGANGP,
        CycleGAN,
        Model,
        StackGAN,
    )

    assert GAN.default_epochs == 20 < Model.default_epochs == 30
    assert CGAN.default_epochs == ACGAN.default_epochs < GAN.default_epochs  # convolutions
    assert DCGAN.default_epochs < GAN.default_epochs  # a DCGAN epoch costs more
    assert SGAN.default_epochs < GAN.default_epochs  # so does SGAN's (a 5-layer D, 3 batches)
    for model, cls in [("gan", GAN), ("lsgan", LSGAN), ("dcgan", DCGAN), ("sgan", SGAN)]:
        plan = runs.plan_new_run(example.parse_args(["--model", model]))
        assert plan.epochs == cls.default_epochs
    plan = runs.plan_new_run(example.parse_args(["--model", "dcgan", "--epochs", "2"]))
    assert plan.epochs == 2
    with pytest.raises(SystemExit):
        example.parse_args(["--help"])
    expected = (
        f"(default: 30; 20 for gan, {LSGAN.default_epochs} for lsgan, "
        f"{WGANGP.default_epochs} for wgan-gp, {DCGAN.default_epochs} for dcgan, "
        f"{CGAN.default_epochs} for cgan, {ACGAN.default_epochs} for acgan, {SGAN.default_epochs} for sgan, "
        f"{CycleGAN.default_epochs} for cyclegan, {StackGAN.default_epochs} for stackgan)"
    )
    assert expected in " ".join(capsys.readouterr().out.split())
    out = tmp_path / "run"
    flags = ["--model", "dcgan", "--base-channels", "4", "--batch-size", "50"]
    assert example.main(["--train-size", "300", *flags, "--epochs", "1", "--out", str(out)]) == 0
    state = load_checkpoint(out / "checkpoint.npz")
    resumed = runs.plan_resumed_run(example.parse_args(["--resume"]), state, out)
    assert resumed.epochs == DCGAN.default_epochs  # the run's own model decides


@pytest.mark.parametrize("model", ["lsgan", "wgan", "wgan-gp"])
def test_each_model_trains_resumes_and_refuses_to_become_another(tmp_path, capsys, model):
    out = tmp_path / "run"
    small = ["--train-size", "200", "--batch-size", "20", "--hidden", "16", "--log-every", "5"]
    assert example.main([*small, "--model", model, "--epochs", "1", "--out", str(out)]) == 0
    assert example.main([*small, "--resume", "--epochs", "2", "--out", str(out)]) == 0
    state = load_checkpoint(out / "checkpoint.npz")
    assert state["gan"]["model"] == model and state["epoch"] == 2
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert set(rows[-1]) - {"epoch"} == set(MODELS[model].stats)  # its own figures
    capsys.readouterr()
    assert example.main(["--resume", "--model", "gan", "--epochs", "3", "--out", str(out)]) == 1
    assert f"model='{model}' there, 'gan' here" in capsys.readouterr().err
    sample = ["--sample", "5", "--checkpoint", str(out / "checkpoint.npz")]
    assert example.main([*sample, "--output", str(tmp_path / "s.npy"), "--model", "gan"]) == 1
    assert f"holds a '{model}' model, not 'gan'" in capsys.readouterr().err


def test_dcgan_trains_on_a_folder_of_colour_pictures_and_samples_them(tmp_path):
    from minigan.images import write_shape_images

    write_shape_images(tmp_path / "pictures", 24, seed=0)
    out, folder = tmp_path / "run", f"folder:{tmp_path / 'pictures'}"
    flags = ["--model", "dcgan", "--dataset", folder, "--batch-size", "8", "--base-channels", "4"]
    assert example.main([*flags, "--epochs", "1", "--out", str(out)]) == 0
    state = load_checkpoint(out / "checkpoint.npz")
    assert list(state["image_shape"]) == [3, 32, 32] and state["dataset"] == folder
    assert matplotlib.image.imread(out / "samples_epoch_001.png").shape[2] in (3, 4)  # colour
    samples = tmp_path / "samples.npy"
    args = ["--sample", "10", "--checkpoint", str(out / "checkpoint.npz"), "--output", str(samples)]
    assert example.main(args) == 0
    images = np.load(samples)
    assert images.shape == (10, 32, 32, 3) and 0 <= images.min() and images.max() <= 1


def test_a_conditional_model_trains_on_labels_and_draws_the_digit_asked_for(tmp_path, capsys):
    out = tmp_path / "run"
    small = ["--train-size", "200", "--batch-size", "20", "--hidden", "16", "--log-every", "5"]
    assert example.main([*small, "--model", "cgan", "--epochs", "1", "--out", str(out)]) == 0
    grid = matplotlib.image.imread(out / "samples_epoch_001.png")
    assert grid.shape[:2] == (10 * 30 + 2, 8 * 30 + 2)  # one row per digit, 8 columns
    samples = tmp_path / "sevens.npy"
    checkpoint = str(out / "checkpoint.npz")
    args = ["--sample", "30", "--checkpoint", checkpoint, "--output", str(samples)]
    assert example.main([*args, "--label", "7", "--grid", str(tmp_path / "s.png")]) == 0
    assert np.load(samples).shape == (30, 28, 28)
    # Asking for a digit only means something to a conditional model.
    gan_run = tmp_path / "gan"
    assert example.main([*small, "--epochs", "1", "--out", str(gan_run)]) == 0
    capsys.readouterr()
    other = ["--sample", "5", "--checkpoint", str(gan_run / "checkpoint.npz")]
    assert example.main([*other, "--output", str(tmp_path / "x.npy"), "--label", "3"]) == 1
    assert "--label asks a conditional model (cgan, acgan) for a digit" in capsys.readouterr().err
    assert not (tmp_path / "x.npy").exists()


def test_sgan_reports_its_test_error_and_labelled_models_need_labels(tmp_path, capsys):
    out = tmp_path / "run"
    small = ["--train-size", "300", "--batch-size", "50", "--log-every", "5"]
    assert example.main([*small, "--model", "sgan", "--epochs", "1", "--out", str(out)]) == 0
    assert "test error of D as a classifier" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert 0 <= rows[-1]["test_error"] <= 1
    state = load_checkpoint(out / "checkpoint.npz")
    assert len(state["gan"]["labelled_indices"]) == 100
    for flags, message in [  # --labels 15: see test_hostile_cli's bad numbers
        (["--model", "gan", "--labels", "20"], "--labels does not apply to --model gan"),
        (["--model", "cgan", "--dataset", f"folder:{tmp_path}"], "learns from digit labels"),
    ]:
        assert example.main([*small, *flags, "--out", str(tmp_path / "new")]) == 1
        assert message in capsys.readouterr().err
        assert not (tmp_path / "new").exists()


def test_checkpoints_saved_before_a_new_config_field_load_with_the_value_they_trained_with(
    tmp_path,
):
    """A CGAN saved before the projection D (its config has no ``discriminator``) samples and
    resumes as the concat CGAN it is (minigan.checkpoint.upgrade: every older layout is
    tested in tests/test_checkpoint.py)."""
    from minigan.models import CGAN, CGANConfig

    out = tmp_path / "run"
    small = ["--train-size", "200", "--batch-size", "20", "--hidden", "16", "--log-every", "5"]
    cgan = ["--model", "cgan", "--arch", "mlp"]  # the MLPs: before the convolutions too
    assert example.main([*small, *cgan, "--epochs", "1", "--out", str(out)]) == 0
    state = load_checkpoint(out / "checkpoint.npz")
    config = {k: v for k, v in state["config"].items() if k not in ("discriminator", "arch")}
    old = CGAN(CGANConfig(**config, discriminator="concat", arch="mlp"), seed=0)  # the old D
    state["config"], state["gan"] = config, old.state_dict()
    save_checkpoint(out / "checkpoint.npz", state)
    samples = tmp_path / "old.npy"
    args = ["--sample", "20", "--checkpoint", str(out / "checkpoint.npz"), "--output", str(samples)]
    assert example.main(args) == 0 and np.load(samples).shape == (20, 28, 28)
    assert example.main(["--resume", "--epochs", "2", "--out", str(out)]) == 0
    assert load_checkpoint(out / "checkpoint.npz")["config"]["discriminator"] == "concat"


def test_ema_run_resumes_bit_identically_and_samples_from_the_average(tmp_path, capsys):
    ema = ("--ema", "0.9", "--d-lr", "4e-4")
    assert run(*ema, "--epochs", "2", "--out", str(tmp_path / "straight")) == 0
    assert run(*ema, "--epochs", "1", "--out", str(tmp_path / "resumed")) == 0
    assert run("--epochs", "2", "--out", str(tmp_path / "resumed"), "--resume") == 0
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.npz")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoint.npz")
    assert a["gan"]["generator_ema"]["updates"] == b["gan"]["generator_ema"]["updates"] == 12
    for name, value in a["gan"]["generator_ema"]["weights"].items():
        np.testing.assert_array_equal(value, b["gan"]["generator_ema"]["weights"][name])
    assert run("--ema", "0.5", "--epochs", "3", "--out", str(tmp_path / "resumed"), "--resume") == 1
    assert "ema=0.9 there, 0.5 here" in capsys.readouterr().err

    npy = tmp_path / "s.npy"
    path = str(tmp_path / "straight" / "checkpoint.npz")
    assert example.main(["--sample", "64", "--checkpoint", path, "--output", str(npy)]) == 0
    gan = GAN(runs.config_from_checkpoint(a, Path(path)), seed=0)
    gan.load_state_dict(a["gan"])
    z = gan.sample_noise(64)  # the noise --sample draws (seed 0)
    expected = unit_images(gan.generator_ema.averaged.forward(z).reshape(-1, 1, 28, 28))
    np.testing.assert_array_equal(np.load(npy), expected)
    live = unit_images(gan.generator.forward(z).reshape(-1, 1, 28, 28))
    assert not np.array_equal(live, expected)


def test_a_checkpoint_from_before_ema_d_lr_and_minibatch_std_samples_and_resumes(tmp_path):
    out = tmp_path / "run"
    assert run("--ema", "0", "--epochs", "1", "--out", str(out)) == 0
    path = out / "checkpoint.npz"
    state = load_checkpoint(path)
    for key in ("ema", "d_lr", "minibatch_std"):  # fields that older versions did not write
        del state["config"][key]
    save_checkpoint(path, state)
    npy = tmp_path / "s.npy"
    assert example.main(["--sample", "10", "--checkpoint", str(path), "--output", str(npy)]) == 0
    assert np.load(npy).shape == (10, 28, 28)
    assert run("--epochs", "2", "--out", str(out), "--resume") == 0
    assert "generator_ema" not in load_checkpoint(path)["gan"]


def test_ema_of_one_or_more_is_refused(capsys):
    with pytest.raises(SystemExit):
        example.parse_args(["--ema", "1"])
    assert "argument --ema: must lie in [0, 1) (0: no average), got 1" in capsys.readouterr().err
