"""What a training run draws: ``real.png`` once, and after every epoch a picture of the model.

The picture of every epoch (``samples_epoch_NNN.png``) comes from inputs fixed for the
whole run, so the pictures show one model changing, not new draws:

- a model drawing from noise: 64 samples from fixed noise (a conditional model: 8 of each
  digit, a row per digit);
- a translation model (cyclegan): 8 images of each domain, their translations and
  reconstructions (``minigan.unpaired.translation_grid``);
- a text-to-image model (stackgan): a caption per row, Stage-I's image beside Stage-II's
  (``minigan.captioned.caption_grid``);
- a 2-D task (``--dataset 2d-ring``, ``2d-grid``): a frame of the plane, the real points
  and modes, 1,000 of G's points from fixed noise, and D's output as a shaded surface
  (``minigan.frames``); every frame so far is also strung into ``frames.gif``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from minigan import captioned, frames, plane, unpaired
from minigan.backend import to_host
from minigan.images import by_digit, generate_unit_images, unit_images
from minigan.plotting import save_captioned_grid, save_image_grid

GIF = "frames.gif"  # a 2-D run's frames, animated


class EpochPictures:
    """The fixed inputs of a run's pictures, and the pictures drawn from them."""

    def __init__(self, gan: Any, dataset: str, seed: int, images: Any, domains: Any = None,
                 scheme: Any = None):  # fmt: skip
        self.dataset, self.images, self.domains, self.scheme = dataset, images, domains, scheme
        backend, self.labels = gan.backend, None
        if gan.translation:
            self.z = [backend.asarray(d[: unpaired.GRID_IMAGES]) for d in (domains.a, domains.b)]
            return
        count = plane.FRAME_POINTS if dataset in plane.DATASETS else 64
        noise = np.random.default_rng([seed, 1]).standard_normal((count, gan.config.latent_dim))
        self.z = backend.asarray(noise, dtype=np.float32)
        if gan.conditional:  # 8 of each digit, a row per digit
            self.z = backend.xp.concatenate([self.z[:8]] * 10)
            self.labels = backend.asarray(by_digit(np.arange(80) % 10))

    def save_real(self, out: Path) -> None:
        """``real.png``: 64 training images (a translation's: 32 of A, then 32 of B); none
        for a 2-D task, whose frames show the real points."""
        if self.dataset in plane.DATASETS:
            return
        real = self.images[:64]
        if self.domains is not None:
            real = np.concatenate([self.images[:32], self.domains.b[:32]])
        save_image_grid(unit_images(real), out / "real.png")

    def save(self, gan: Any, epoch: int, out: Path, title: str) -> None:
        """The picture of ``gan`` after ``epoch`` (1-based): ``samples_epoch_NNN.png``."""
        path = out / f"samples_epoch_{epoch:03d}.png"
        if self.scheme is not None:
            save_captioned_grid(*captioned.caption_grid(gan, self.scheme, self.z), path)
        elif gan.translation:
            save_image_grid(unpaired.translation_grid(gan, *self.z), path)
        elif self.dataset in plane.DATASETS:
            fake = to_host(gan.generate(self.z))
            plane.draw_points(gan, self.dataset, fake, path, f"{title}, epoch {epoch}")
            frames.write_gif([out / f"samples_epoch_{e:03d}.png" for e in range(1, epoch + 1)
                              if (out / f"samples_epoch_{e:03d}.png").exists()], out / GIF)  # fmt: skip
        else:
            shape = self.images.shape[1:]  # (C, H, W): the MLPs' flat images laid out
            save_image_grid(generate_unit_images(gan, self.z, shape, labels=self.labels), path)
