"""Pictures in and out: folders of pictures as a GAN dataset, a model's samples as image
arrays and files, and a generator of synthetic pictures for tests.

``load_image_folder(path, image_size)`` reads every PNG and JPEG file under ``path``
(sub-folders included) with Pillow (a dependency of minigan, and of matplotlib):

1. open and decode; files that fail (truncated, corrupt, not really images) are
   skipped and counted, and the count is reported in one warning line at the end;
2. turn the right way up (a photo's EXIF orientation) and convert to 8-bit RGB, or to
   grey when every image is grey (``channels=None``), or as ``channels`` says. Each
   kind of file is scaled by its own range: a 16-bit grey PNG's 0-65535 becomes
   0-255 (Pillow's own conversion would clip it at 255, all white); 1, 2 and 4-bit
   grey, palettes and CMYK JPEGs are Pillow's. Transparent pixels (RGBA, grey+alpha,
   a palette's transparent colour) are laid over white, as a viewer or a web page
   shows them, rather than showing whatever colour they hide;
3. centre-crop the largest square (a GAN's images are square; cropping keeps the
   centre, where a photo's subject usually is, without stretching it);
4. resize to ``image_size`` x ``image_size`` (bicubic, anti-aliased when shrinking);
5. scale to [-1, 1] (``x / 127.5 - 1``, as for MNIST), as NCHW float32.

Files with other extensions are ignored (and counted in the same warning line). The
memory the result needs (N images x C x S x S x 4 bytes, and their pixels on the way)
is checked against the memory available before the first file is decoded.

Out: ``generate_unit_images(model, z)`` draws a model's images onto the host as float32
in [0, 1], laid out as image files are (``unit_images``); ``write_samples`` writes any
number of them to one ``.npy`` file, a chunk at a time.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from minigan.backend import to_host
from minigan.data import DataError, available_memory, to_gan_range
from minigan.files import atomic_write

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# Pillow's modes for a 16-bit grey PNG ("I" in Pillow before 10), scaled from 0-65535.
SIXTEEN_BIT_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")
GREY_MODES = ("1", "L", "LA", "La", "F", *SIXTEEN_BIT_GREY)
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
BACKGROUND = (255, 255, 255)  # what transparent pixels show


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
    from PIL import Image, ImageOps  # imported on first use: most runs read no pictures

    with Image.open(path) as image:
        image.load()  # decode now, so a corrupt file fails here
        grey = image.mode in GREY_MODES
        image = _rgb(ImageOps.exif_transpose(image))
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side))
    image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8), grey


def _rgb(image: Any) -> Any:
    """A Pillow image as 8-bit RGB, each mode scaled by its own range (module docstring)."""
    from PIL import Image

    if image.mode in SIXTEEN_BIT_GREY:  # v * 255 / 65535, rounded: 0 -> 0, 65535 -> 255
        values = np.asarray(image).astype(np.int64).clip(0, 65535)
        image = Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), "L")
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (*BACKGROUND, 255)), rgba)
    return image.convert("RGB")


def folder_memory_bytes(
    count: int, image_size: int, channels: int = 3, dtype: Any = np.float32
) -> int:
    """The memory ``load_image_folder`` needs for ``count`` images: the result, (count,
    channels, S, S) of ``dtype``, and on the way every image's RGB pixels (3 bytes each)
    and the result's planes as bytes (channels bytes each)."""
    pixels = count * image_size * image_size
    return pixels * (3 + channels + channels * np.dtype(dtype).itemsize)


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
        DataError: the images would not fit in the memory available.
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
    needed = folder_memory_bytes(len(files), image_size, channels or 3, dtype)
    available = available_memory()
    if available is not None and needed > available:
        raise DataError(
            f"{where}: the {len(files)} images under {folder} at {image_size}x{image_size} "
            f"need about {needed / 1e9:,.1f} GB of memory, and this machine has "
            f"{available / 1e9:,.1f} GB available; choose a smaller image_size (--image-size) "
            f"or a folder of fewer images"
        )
    # One array for every image's pixels, filled in turn: no list of them to stack.
    pixels = np.empty((len(files), image_size, image_size, 3), np.uint8)
    greys, failed = [], []
    for file in files:
        try:
            array, grey = _read_square(file, image_size)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            failed.append((file, error))  # Pillow raises SyntaxError for some broken PNGs
            continue
        pixels[len(greys)] = array
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
    if not greys:
        raise ValueError(
            f"{where}: none of the {len(files)} PNG/JPEG files under {folder} could be read"
        )
    if channels is None:
        channels = 1 if all(greys) else 3
    images = pixels[: len(greys)]  # (N, S, S, 3) uint8
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


# --- a model's images out -------------------------------------------------------------------

MNIST_SHAPE = (1, 28, 28)  # one image: (channels, height, width)
SAMPLE_CHUNK = 1000  # write_samples generates and writes this many images at a time


def unit_images(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> float32 in [0, 1], laid out as image files are:
    (N, H, W) for grey images, (N, H, W, 3) for colour."""
    unit = images.astype(np.float32)  # one copy, then in place: little memory per chunk
    unit += 1
    unit /= 2
    np.clip(unit, 0, 1, out=unit)
    return unit[:, 0] if unit.shape[1] == 1 else unit.transpose(0, 2, 3, 1)


def file_layout(shape: tuple[int, ...]) -> tuple[int, ...]:
    """One image's shape as ``unit_images`` lays it out: (H, W), or (H, W, 3) in colour."""
    channels, height, width = shape
    return (height, width) if channels == 1 else (height, width, channels)


def generate_unit_images(
    gan: Any,
    z: Any,
    shape: tuple[int, ...] = MNIST_SHAPE,
    chunk: int = 1000,
    labels: Any = None,
) -> np.ndarray:
    """G(z) -> host float32 images in [0, 1] (see ``unit_images``), ``chunk`` at a time;
    ``shape`` is one image's (channels, height, width); a conditional model draws the
    digits ``labels`` (on the device). One read from the device per chunk."""

    def images(i: int) -> Any:
        if labels is None:
            return gan.generate(z[i : i + chunk])
        return gan.generate(z[i : i + chunk], labels[i : i + chunk])

    batches = [to_host(images(i)) for i in range(0, len(z), chunk)]
    return unit_images(np.concatenate(batches).reshape(-1, *shape))


def digit_labels(backend: Any, n: int, label: int | None = None) -> Any:
    """The labels a conditional model is asked for: all ``label``, or 0-9 in turn."""
    labels = np.full(n, label) if label is not None else np.arange(n) % 10
    return backend.asarray(labels.astype(np.int64))


def by_digit(images: np.ndarray, per_digit: int = 8) -> np.ndarray:
    """The first ``per_digit`` images of each digit, when image i shows digit i % 10:
    reordered so that a grid of ``per_digit`` columns has one row per digit."""
    count = min(len(images), 10 * per_digit)
    order = np.argsort(np.arange(count) % 10, kind="stable")
    return images[order]


@contextlib.contextmanager
def float32_npy_file(path: str | os.PathLike, shape: tuple[int, ...]) -> Iterator[Any]:
    """A .npy file of a float32 array of ``shape``: written atomically, its header first,
    then each chunk of rows as it comes, so any size needs the memory of one chunk.
    ``with float32_npy_file(path, shape) as write: write(rows)``."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
              "fortran_order": False, "shape": tuple(shape)}  # fmt: skip
    with atomic_write(path) as f:
        np.lib.format.write_array_header_1_0(f, header)
        yield lambda rows: f.write(np.ascontiguousarray(rows, dtype=np.float32).tobytes())


def unit_image_file(path: str | os.PathLike, n: int, shape: tuple[int, ...]) -> Any:
    """``float32_npy_file`` for ``n`` images in [0, 1] of ``shape`` (C, H, W), laid out as
    ``unit_images`` gives them, (n, H, W) or (n, H, W, 3).
    ``with unit_image_file(path, n, shape) as write: write(images)``."""
    return float32_npy_file(path, (n, *file_layout(shape)))


def write_samples(
    gan: Any,
    n: int,
    path: str | os.PathLike,
    shape: tuple[int, ...] = MNIST_SHAPE,
    chunk: int = SAMPLE_CHUNK,
    label: int | None = None,
) -> np.ndarray:
    """Write G's images for ``n`` fresh noise vectors to the .npy file ``path``.

    The file is float32 in [0, 1], (n, H, W) or (n, H, W, 3) (see ``unit_images``),
    written ``chunk`` images at a time after its .npy header, so any ``n`` needs the
    memory of one chunk; the noise is drawn chunk by chunk from one stream, which
    gives the same numbers as one draw. A conditional model draws digit ``label``,
    or sample i shows digit i % 10. Returns the first 64 images (80 for a conditional
    model: 8 of each digit), for a grid.
    """
    first = None
    with unit_image_file(path, n, shape) as write:
        for start in range(0, n, chunk):
            noise = gan.sample_noise(min(chunk, n - start))
            labels = None
            if gan.conditional:  # digit i % 10 (or label) for sample i, whatever the chunk
                labels = digit_labels(gan.backend, len(noise), label)
                if label is None:
                    labels = (labels + start) % 10
            images = generate_unit_images(gan, noise, shape, chunk, labels)
            write(images)
            grid = 80 if gan.conditional else 64  # 8 of each digit, or 64 samples
            first = images[:grid] if first is None else first
    return first
