"""Folders of pictures as a GAN dataset, and a generator of synthetic pictures for tests.

``load_image_folder(path, image_size)`` reads every PNG and JPEG file under ``path``
(sub-folders included) with Pillow, which matplotlib already installs:

1. open and decode; files that fail (truncated, corrupt, not really images) are
   skipped and counted, and the count is reported in one warning line at the end;
2. turn the right way up (a photo's EXIF orientation) and convert to RGB, or to
   grey when every image is grey (``channels=None``), or as ``channels`` says;
3. centre-crop the largest square (a GAN's images are square; cropping keeps the
   centre, where a photo's subject usually is, without stretching it);
4. resize to ``image_size`` x ``image_size`` (bicubic, anti-aliased when shrinking);
5. scale to [-1, 1] (``x / 127.5 - 1``, as for MNIST), as NCHW float32.

Files with other extensions are ignored (and counted in the same warning line).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from minigan.data import to_gan_range
from minigan.files import atomic_write

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _image_files(folder: Path) -> tuple[list[Path], int]:
    """Every PNG / JPEG under ``folder`` in a fixed (sorted) order, and how many others."""
    images, others = [], 0
    for root, dirs, files in os.walk(folder):
        dirs.sort()  # walk sub-folders in a fixed order: the same dataset every run
        for name in sorted(files):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                images.append(Path(root) / name)
            else:
                others += 1
    return images, others


def _read_square(path: Path, image_size: int) -> tuple[np.ndarray, bool]:
    """One file as a uint8 (image_size, image_size, 3) RGB array, and whether it is grey."""
    from PIL import Image, ImageOps  # Pillow comes with matplotlib; imported on first use

    with Image.open(path) as image:
        image.load()  # decode now, so a corrupt file fails here
        grey = image.mode in GREY_MODES
        image = ImageOps.exif_transpose(image).convert("RGB")
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side))
    image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8), grey


def load_image_folder(
    path: str | os.PathLike,
    image_size: int = 32,
    channels: int | None = None,
    dtype: Any = np.float32,
) -> np.ndarray:
    """All PNG / JPEG images under ``path``, as a (N, C, image_size, image_size) array.

    Args:
        path: a folder; searched recursively.
        image_size: the side of the square images returned.
        channels: 1 (grey) or 3 (RGB); None picks 1 when every image is grey, else 3.
        dtype: a floating dtype for the result.

    Returns:
        float images in [-1, 1], in the sorted order of their paths.

    Raises:
        FileNotFoundError: ``path`` is not a folder.
        ValueError: a bad argument, or no image could be read.
    """
    from PIL import Image

    where = "load_image_folder"
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"{where}: image_size must be a positive integer, got {image_size!r}")
    if channels not in (None, 1, 3):
        raise ValueError(f"{where}: channels must be 1 (grey), 3 (RGB) or None, got {channels!r}")
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{where}: no folder at {folder}; give a folder of PNG/JPEG images")
    files, others = _image_files(folder)
    if not files:
        raise ValueError(
            f"{where}: found no PNG or JPEG images under {folder} (searched sub-folders too"
            f"{f'; {others} other files ignored' if others else ''}); put .png / .jpg files there"
        )
    arrays, greys, failed = [], [], []
    for file in files:
        try:
            array, grey = _read_square(file, image_size)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            failed.append((file, error))  # Pillow raises SyntaxError for some broken PNGs
            continue
        arrays.append(array)
        greys.append(grey)
    parts = []
    if failed:
        first, error = failed[0]
        parts.append(
            f"skipped {len(failed)} of {len(files)} image files that could not be read "
            f"(first: {first.relative_to(folder)}: {error})"
        )
    if others:
        parts.append(f"ignored {others} files that are not PNG/JPEG")
    if parts:
        warnings.warn(f"{where}: under {folder}: " + "; ".join(parts), stacklevel=2)
    if not arrays:
        raise ValueError(
            f"{where}: none of the {len(files)} PNG/JPEG files under {folder} could be read"
        )
    if channels is None:
        channels = 1 if all(greys) else 3
    images = np.stack(arrays)  # (N, S, S, 3) uint8
    # Grey images were converted to RGB with three equal channels: keep one.
    images = images[..., :1] if channels == 1 else images
    n = images.shape[0]
    planes = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(
        n * channels, *images.shape[1:3]
    )
    return to_gan_range(planes, flatten=False, dtype=dtype).reshape(
        n, channels, image_size, image_size
    )


def write_shape_images(
    folder: str | os.PathLike, count: int, seed: int = 0, size_range: tuple[int, int] = (40, 96)
) -> list[Path]:
    """Write ``count`` synthetic pictures of coloured shapes into a new, empty ``folder``.

    Each is an ellipse, rectangle or triangle on a plain background, of a random size
    in ``size_range`` (width and height drawn apart, so most are not square), saved
    alternately as RGB PNG, grey PNG and RGB JPEG: the mixture a real folder holds.
    For tests and for trying ``--dataset folder:PATH`` without a photo collection.

    Raises:
        FileExistsError: ``folder`` exists and is not empty (nothing is overwritten).
    """
    from PIL import Image, ImageDraw

    out = Path(folder)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"write_shape_images: {out} is not empty; give a new folder")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []
    for index in range(count):
        w, h = (int(v) for v in rng.integers(size_range[0], size_range[1] + 1, 2))
        background, colour = (tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(2))
        image = Image.new("RGB", (w, h), background)
        draw = ImageDraw.Draw(image)
        x0, y0 = int(rng.integers(0, w // 3)), int(rng.integers(0, h // 3))
        x1, y1 = int(rng.integers(2 * w // 3, w)), int(rng.integers(2 * h // 3, h))
        shape = index % 3
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=colour)
        kind = (index // 3) % 3  # RGB PNG, grey PNG, RGB JPEG, for every shape
        if kind == 1:
            image = image.convert("L")
        path = out / f"shape_{index:04d}.{'jpg' if kind == 2 else 'png'}"
        with atomic_write(path) as f:
            image.save(f, format="JPEG" if kind == 2 else "PNG")
        written.append(path)
    return written
