"""Frames of a 2-D GAN learning (minigan/frames.py): D's surface over the plane, the PNG
frame, the animated GIF, and the one read back per surface on the CuPy stand-in."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from minigan import frames
from minigan.data import grid_mixture, ring_mixture
from minigan.models import MODELS
from minigan.models.points import RECIPES


def point_model(name, pack=1, backend="numpy"):
    cls = MODELS[name]
    config = dataclasses.replace(
        cls.default_config(), arch="points", ema=0.0, pack=pack, **RECIPES[name]
    )
    return cls(cls.config_for_images(config, (2,)), backend, seed=0)


def test_the_plane_grid_runs_row_by_row_from_the_bottom():
    grid = frames.plane_grid((-1, 1, -2, 2), resolution=3)
    assert grid.shape == (9, 2) and grid.dtype == np.float32
    np.testing.assert_array_equal(grid[:3], [[-1, -2], [0, -2], [1, -2]])
    np.testing.assert_array_equal(grid[-1], [1, 2])


@pytest.mark.parametrize("name", ["gan", "lsgan", "wgan", "wgan-gp"])
@pytest.mark.parametrize("pack", [1, 2])
def test_the_surface_is_ds_verdict_on_each_grid_point(name, pack):
    model = point_model(name, pack)
    extent = frames.EXTENTS["2d-ring"]
    values, label, limits = frames.d_surface(model, extent, resolution=7)
    assert values.shape == (7, 7) and values.dtype == np.float64
    grid = frames.plane_grid(extent, 7)
    scores = model.discriminator(np.repeat(grid, pack, axis=0))[:, 0]
    if name == "gan":  # a probability, from D's logit
        scores = 1 / (1 + np.exp(-scores.astype(np.float64)))
        assert limits == (0.0, 1.0) and "probability" in label
        assert ((values > 0) & (values < 1)).all()
    else:
        assert limits is None
        assert ("critic" in label) == name.startswith("wgan")
    np.testing.assert_allclose(values.ravel(), scores, rtol=1e-6)
    assert model.discriminator.training  # switched back after the evaluation pass


def test_a_frame_is_a_png_and_a_gif_holds_every_frame(tmp_path):
    model = point_model("gan", pack=2)
    real, centres = grid_mixture(500, 0)
    extent = frames.EXTENTS["2d-grid"]
    paths = []
    for i in range(3):
        path = tmp_path / f"frame_{i}.png"
        frames.model_frame(path, model, real, extent, f"step {i}", centres=centres, samples=200)
        model.train_step(grid_mixture(200, i + 1)[0])
        paths.append(path)
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (560, 460)
    gif = tmp_path / "frames.gif"
    frames.write_gif(paths, gif, duration_ms=100, hold_last_ms=900)
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == 3 and image.size == (560, 460)
        image.seek(2)
        assert image.info["duration"] == 900
    assert not list(tmp_path.glob(".*tmp"))  # written atomically: no temporaries left


def test_a_frame_draws_its_own_noise_and_leaves_trainings_untouched(tmp_path):
    model, twin = point_model("gan"), point_model("gan")
    real = ring_mixture(100, 0)[0]
    frames.model_frame(tmp_path / "f.png", model, real, frames.EXTENTS["2d-ring"], "t")
    np.testing.assert_array_equal(model.sample_noise(5), twin.sample_noise(5))


def test_a_frame_without_a_surface_or_centres_still_draws(tmp_path):
    real = ring_mixture(100, 0)[0]
    fake = np.zeros((10, 2))
    frames.draw_frame(tmp_path / "f.png", real, fake, frames.EXTENTS["2d-ring"], "real only")
    with Image.open(tmp_path / "f.png") as image:
        assert image.format == "PNG"


def test_write_gif_needs_frames(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        frames.write_gif([], tmp_path / "x.gif")


def test_the_surface_reads_back_once_on_the_stand_in(fake_cupy):
    model = point_model("wgan-gp", pack=2, backend="cupy")
    fake_cupy.reset()
    values, _, _ = frames.d_surface(model, frames.EXTENTS["2d-ring"], resolution=5)
    assert len(fake_cupy.reads) == 1 and values.shape == (5, 5)
    expected, _, _ = frames.d_surface(point_model("wgan-gp", pack=2), frames.EXTENTS["2d-ring"], 5)
    np.testing.assert_array_equal(values, expected)
