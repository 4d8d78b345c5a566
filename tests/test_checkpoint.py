"""Checkpoint files and atomic writes."""

import pickle

import numpy as np
import pytest

from minigan.checkpoint import (
    FORMAT,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
    upgrade,
)
from minigan.files import atomic_write
from minigan.plotting import history_figure, image_grid


def test_checkpoint_round_trips_nested_arrays_and_values(tmp_path):
    rng = np.random.default_rng(0)
    state = {
        "gan": {"generator": {"0.weight": rng.standard_normal((3, 2)).astype(np.float32)},
                "steps": 12},
        "loader": {"rng": rng.bit_generator.state},  # PCG64 state: 128-bit integers
        "history": [{"epoch": 1.0, "d_loss": 0.5}],
        "epoch": 1,
    }  # fmt: skip
    save_checkpoint(tmp_path / "c.npz", state)
    loaded = load_checkpoint(tmp_path / "c.npz")
    np.testing.assert_array_equal(
        loaded["gan"]["generator"]["0.weight"], state["gan"]["generator"]["0.weight"]
    )
    assert loaded["gan"]["generator"]["0.weight"].dtype == np.float32
    assert loaded["loader"]["rng"] == state["loader"]["rng"]
    assert loaded["history"] == state["history"] and loaded["epoch"] == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_checkpoint_raises_a_clear_error(tmp_path, damage):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"w": np.zeros(1000)})
    content = {"truncate": path.read_bytes()[:500], "garbage": b"not a zip file", "empty": b""}
    path.write_bytes(content[damage])
    with pytest.raises(
        CheckpointError, match=r"is not a readable minigan checkpoint.*truncated or damaged"
    ):
        load_checkpoint(path)


def write_npy(path):
    with open(path, "wb") as f:  # through a file: np.save(path) would append ".npy"
        np.save(f, np.zeros(3))


def write_pickle(path):
    path.write_bytes(pickle.dumps({"gan": [1, 2]}))


def write_plain_npz(path):
    with open(path, "wb") as f:
        np.savez(f, weight=np.zeros((2, 2)), bias=np.zeros(2))


def write_npz_of_objects(path):
    with open(path, "wb") as f:  # np.savez pickles object arrays; np.load must not unpickle
        np.savez(f, __meta__=np.array([{"format": FORMAT}], dtype=object))


@pytest.mark.parametrize(
    "write, said",
    [
        (write_npy, "is a NumPy .npy array, not a minigan checkpoint"),
        (write_pickle, "is a Python pickle, not a minigan checkpoint"),
        (
            write_plain_npz,
            r"is a .npz archive of arrays \(weight, bias\) without minigan's metadata",
        ),
        (write_npz_of_objects, "holds pickled Python objects, not a minigan checkpoint"),
    ],
)
def test_a_file_that_is_not_a_checkpoint_says_what_it_is(tmp_path, write, said):
    path = tmp_path / "c.npz"
    write(path)
    with pytest.raises(CheckpointError, match=said) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "expected a .npz written by minigan's save_checkpoint" in message
    assert "allow_pickle" not in message and "\n" not in message


def test_a_folder_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        load_checkpoint(tmp_path)


def test_missing_checkpoint_says_so(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nope.npz")


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(path, "w") as f:
        f.write("half of the new")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temp file left


def test_image_grid_tiles_images_with_padding():
    images = np.zeros((10, 28, 28), np.float32)
    images[3] = 1.0
    grid = image_grid(images, ncols=8)
    assert grid.shape == (2 * 30 + 2, 8 * 30 + 2)
    assert grid[2:30, 3 * 30 + 2 : 3 * 30 + 30].min() == 1.0  # image 3: row 0, column 3


def test_atomic_write_into_a_missing_folder_names_the_target(tmp_path):
    target = tmp_path / "missing" / "f.txt"
    with (
        pytest.raises(FileNotFoundError, match=r"cannot write .*f.txt: the folder .*missing"),
        atomic_write(target, "w") as f,
    ):
        f.write("x")


def test_history_of_a_single_log_line_draws_markers():
    """An epoch shorter than --log-every logs one row: a line through one point is
    invisible, so single points must be drawn as markers."""
    row = {"epoch": 1.0, "d_loss": 0.7, "g_loss": 0.8, "d_real": 0.5, "d_fake": 0.4}
    fig = history_figure([row])
    for ax in fig.axes:
        for line in ax.get_lines():
            assert line.get_marker() not in (None, "None", ""), line.get_label()
    two = history_figure([row, {**row, "epoch": 2.0}])
    assert two.axes[0].get_lines()[0].get_marker() in (None, "None", "")  # lines stay lines


# --- older checkpoints: upgrade() ------------------------------------------------------------
# Each layout a run's checkpoint had, rebuilt from a model trained with the settings of its
# time, is upgraded and then loads into today's model, unchanged.


def run_state(model: str, **config_changes) -> tuple[dict, object]:
    """A run's checkpoint as today's code writes it, of a ``model`` built with
    ``config_changes``, and the model itself."""
    import dataclasses

    from minigan.models import MODELS

    cls = MODELS[model]
    config = dataclasses.replace(cls.default_config(), **config_changes)
    if model not in ("dcgan",):
        config = dataclasses.replace(config, hidden=16)
    gan = cls(config, seed=0)
    state = {"gan": gan.state_dict(), "loader": {"rng": {}, "num_examples": 300},
             "history": [{"epoch": 1.0}], "epoch": 1, "config": config.to_dict(), "seed": 0,
             "dataset": "mnist", "image_shape": [1, 28, 28]}  # fmt: skip
    return state, gan


def as_saved_then(state: dict, added: list[str], tmp_path) -> dict:
    """``state`` as an older minigan wrote it, whose config had no fields ``added``,
    through a file and back."""
    state["config"] = {k: v for k, v in state["config"].items() if k not in added}
    save_checkpoint(tmp_path / "old.npz", state)
    return load_checkpoint(tmp_path / "old.npz")


def load_upgraded(state: dict, expected_gan) -> None:
    """``state`` upgraded builds today's model with the old one's config and weights."""
    from minigan.models import MODELS

    new = upgrade(state)
    cls = MODELS[new["gan"]["model"]]
    config = cls.config_class(**new["config"])
    assert config == expected_gan.config
    gan = cls(config, seed=1)
    gan.load_state_dict(new["gan"])
    for name, value in expected_gan.generator.state_dict().items():
        np.testing.assert_array_equal(gan.generator.state_dict()[name], value, err_msg=name)


def test_a_gan_state_from_before_the_family_is_a_gan(tmp_path):
    """Before the GAN family, a GAN's state named no model, and its config had no d_lr,
    ema, minibatch_std, pack or d_dropout: one learning rate, the live G, no spread, one
    image at a time, no dropout."""
    added = ["d_lr", "ema", "minibatch_std", "pack", "d_dropout"]
    from minigan.models import PRESETS

    classic = {f: getattr(PRESETS["classic"], f) for f in ("logits", "lr", "betas", "latent_dim")}
    state, gan = run_state("gan", ema=0.0, pack=1, d_lr=None, minibatch_std=0, d_dropout=0.0,
                           real_label=1.0, **classic)  # fmt: skip
    del state["gan"]["model"], state["dataset"], state["image_shape"]
    old = as_saved_then(state, added, tmp_path)
    new = upgrade(old)
    assert new["gan"]["model"] == "gan" and "model" not in old["gan"]  # the input untouched
    assert new["dataset"] == "mnist" and list(new["image_shape"]) == [1, 28, 28]
    load_upgraded(old, gan)


def test_a_run_from_before_datasets_trained_on_mnist():
    state, _ = run_state("lsgan")
    del state["dataset"], state["image_shape"]
    new = upgrade(state)
    assert new["dataset"] == "mnist" and new["image_shape"] == [1, 28, 28]


@pytest.mark.parametrize(
    "model, added, trained_with",
    [
        ("dcgan", ["g_lr"], {"g_lr": None}),
        ("dcgan", ["ema"], {"ema": 0.0}),
        ("dcgan", ["real_label"], {"real_label": 1.0}),
        ("dcgan", ["pack"], {"pack": 1}),
        ("dcgan", ["d_dropout", "d_noise"], {"d_dropout": 0.0, "d_noise": 0.0}),
        ("dcgan", ["d_norm", "g_full_res_channels"], {"d_norm": "batch", "g_full_res_channels": 0}),
        ("dcgan", ["d_fc_width"], {"d_fc_width": 0}),  # D had no fully connected hidden layer
        ("dcgan", ["g_fc_width"], {"g_fc_width": 0}),  # nor G
        ("dcgan", ["d_augment"], {"d_augment": ""}),
        ("cgan", ["discriminator", "arch"], {"discriminator": "concat", "arch": "mlp"}),
        ("cgan", ["arch", "base_channels"], {"arch": "mlp"}),  # before the convolutions
        ("acgan", ["classifier", "twin_weight"], {"classifier": "paper", "twin_weight": 1.0}),
        ("acgan", ["twin_weight"], {"classifier": "twin", "twin_weight": 1.0}),  # first twins
        ("gan", ["pack"], {"pack": 1}),  # the default is pack 2 now; runs before judged one
        ("gan", ["d_dropout"], {"d_dropout": 0.0}),
        ("gan", ["ema", "d_lr", "minibatch_std"], {"ema": 0.0, "d_lr": None, "minibatch_std": 0}),
    ],
)
def test_config_fields_added_later_get_the_values_old_runs_trained_with(
    tmp_path, model, added, trained_with
):
    changes = dict(trained_with)
    if model == "dcgan" and changes.get("ema") == 0.0:
        changes["base_channels"] = 8  # small
    state, gan = run_state(model, **changes)
    load_upgraded(as_saved_then(state, added, tmp_path), gan)


def test_a_checkpoint_of_today_is_upgraded_to_itself(tmp_path):
    for model in ("gan", "dcgan", "cgan", "acgan", "sgan"):
        state, _ = run_state(model)
        new = upgrade(state)
        assert new.keys() == state.keys() and new["config"] == state["config"]
        assert new["gan"] == state["gan"] and new["dataset"] == "mnist"


def test_upgrade_leaves_what_is_not_a_run_alone():
    classifier = {"format_version": 1, "classifier": {"0.weight": np.zeros(2)}}
    assert upgrade(classifier) == classifier
    assert upgrade({"gan": {}}) == {"gan": {"model": "gan"}}  # no config: nothing else added


# --- history.png: the mode-collapse measures of --eval-every (issue 29) ------------------------

STEP_ROWS = [{"epoch": e / 2, "d_loss": 0.7, "g_loss": 0.8, "d_real": 0.5, "d_fake": 0.4}
             for e in range(1, 9)]  # fmt: skip


def by_title(fig) -> dict:
    """The figure's titled panels by title (a twin axis has none)."""
    return {ax.get_title(): ax for ax in fig.axes if ax.get_title()}


def twin_of(fig, ax):
    """The axes sharing ``ax``'s x axis on the right (its twin), or None."""
    twins = [a for a in fig.axes if a is not ax and a.get_shared_x_axes().joined(a, ax)]
    return twins[0] if twins else None


def test_history_with_stacked_mnist_modes_plots_modes_of_1000_and_kl_on_a_twin_axis():
    scored = [{"epoch": 2, "modes": 819, "kl": 1.25}, {"epoch": 4, "modes": 997, "kl": 0.29}]
    fig = history_figure(STEP_ROWS + scored)
    panels = by_title(fig)
    assert list(panels) == ["losses", "discriminator outputs", "Stacked MNIST: modes, KL"]
    ax = panels["Stacked MNIST: modes, KL"]
    modes, everything = ax.get_lines()
    np.testing.assert_array_equal(modes.get_xdata(), [2, 4])
    np.testing.assert_array_equal(modes.get_ydata(), [819, 997])
    assert everything.get_label() == "all 1000" and list(everything.get_ydata()) == [1000, 1000]
    kl = twin_of(fig, ax).get_lines()[0]
    assert kl.get_label() == "KL to uniform"
    np.testing.assert_array_equal(kl.get_ydata(), [1.25, 0.29])
    assert ax.get_xlim() == panels["losses"].get_xlim()  # scored epochs line up with the steps
    assert len(fig.axes) == 4  # three panels and the twin


def test_history_with_2d_measures_plots_modes_reverse_kl_and_high_quality():
    counts = [5, 0, 0, 0, 0, 0, 0, 0]  # 8 modes: the ring
    scored = [
        {"epoch": 1, "modes": 1, "high_quality": 0.5, "reverse_kl": None, "counts": [0] * 8},
        {"epoch": 2, "modes": 1, "high_quality": 0.25, "reverse_kl": 2.08, "counts": counts},
        {"epoch": 4, "modes": 8, "high_quality": 0.95, "reverse_kl": 0.07, "counts": [1] * 8},
    ]
    fig = history_figure(STEP_ROWS + scored)
    panels = by_title(fig)
    modes_title, quality_title = list(panels)[2:]
    assert list(panels)[:2] == ["losses", "discriminator outputs"] and len(panels) == 4
    ax = panels[modes_title]
    assert "reverse KL" in modes_title
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [1, 1, 8])
    assert ax.get_lines()[1].get_label() == "all 8"
    kl = twin_of(fig, ax).get_lines()[0]
    np.testing.assert_array_equal(kl.get_ydata(), [np.nan, 2.08, 0.07])  # None: no KL, a gap
    share = panels[quality_title].get_lines()[0]
    np.testing.assert_array_equal(share.get_ydata(), [50, 25, 95])  # percent
    assert "high-quality" in quality_title and twin_of(fig, panels[quality_title]) is None


def test_history_without_mode_measures_draws_the_panels_it_drew_before():
    plain = history_figure(STEP_ROWS)
    assert [ax.get_title() for ax in plain.axes] == ["losses", "discriminator outputs"]
    fid = history_figure(STEP_ROWS + [{"epoch": 4, "fid": 12.5}])
    titles = [ax.get_title() for ax in fid.axes]
    assert titles == ["losses", "discriminator outputs", "FID vs MNIST test (lower is better)"]
    np.testing.assert_array_equal(fid.axes[2].get_lines()[0].get_ydata(), [12.5])
    sgan = history_figure(STEP_ROWS + [{"epoch": 4, "test_error": 0.1}])
    assert sgan.axes[-1].get_title() == "D's test error as a classifier" and len(sgan.axes) == 3
    for fig in (plain, fid, sgan):
        assert fig.get_size_inches()[0] == 4.2 * len(fig.axes)
