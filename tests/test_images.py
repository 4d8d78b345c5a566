"""The folder loader: mixed sizes and modes, corrupt and foreign files, errors."""

import numpy as np
import pytest

from minigan.images import load_image_folder, write_shape_images


@pytest.fixture
def mixed_folder(tmp_path):
    """Six generated pictures (RGB/grey PNG, JPEG; mixed sizes) in two folders, one
    corrupt PNG and one text file."""
    folder = tmp_path / "pictures"
    write_shape_images(folder / "a", 4, seed=1)
    write_shape_images(folder / "b" / "deeper", 2, seed=2, size_range=(20, 30))
    (folder / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_folder_loads_crops_resizes_and_scales_every_readable_image(mixed_folder):
    with pytest.warns(UserWarning) as caught:
        images = load_image_folder(mixed_folder, image_size=32)
    assert len(caught) == 1  # one warning line for everything skipped
    message = str(caught[0].message)
    assert "skipped 1 of 7 image files that could not be read (first: b/broken.png:" in message
    assert "ignored 1 files that are not PNG/JPEG" in message
    assert images.shape == (6, 3, 32, 32) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1
    assert images.std() > 0.1  # real pictures, not a constant


def test_centre_crop_keeps_the_middle_and_scaling_is_exact(tmp_path):
    from PIL import Image

    # 60 x 20: left third black, middle third white, right third black
    pixels = np.zeros((20, 60), np.uint8)
    pixels[:, 20:40] = 255
    folder = tmp_path / "one"
    folder.mkdir()
    Image.fromarray(pixels).save(folder / "stripe.png")
    images = load_image_folder(folder, image_size=8)
    assert images.shape == (1, 1, 8, 8)  # grey in, one channel out
    np.testing.assert_array_equal(images, 1.0)  # the centred 20 x 20 square is all white
    rgb = load_image_folder(folder, image_size=8, channels=3)
    assert rgb.shape == (1, 3, 8, 8)


def test_grey_only_folders_give_one_channel_and_rgb_give_three(tmp_path):
    from PIL import Image

    folder = tmp_path / "greys"
    folder.mkdir()
    for i, size in enumerate([(30, 40), (50, 50)]):
        Image.new("L", size, 10 * i).save(folder / f"g{i}.png")
    assert load_image_folder(folder, 16).shape == (2, 1, 16, 16)
    Image.new("RGB", (20, 20), (255, 0, 0)).save(folder / "red.jpg")
    colour = load_image_folder(folder, 16)
    assert colour.shape == (3, 3, 16, 16)
    assert load_image_folder(folder, 16, channels=1).shape == (3, 1, 16, 16)


def test_empty_and_missing_folders_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="load_image_folder: no folder at"):
        load_image_folder(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="found no PNG or JPEG images under"):
        load_image_folder(empty)
    (empty / "readme.txt").write_text("hello")
    with pytest.raises(ValueError, match="1 other files ignored"):
        load_image_folder(empty)
    (empty / "bad.jpg").write_bytes(b"garbage")
    with (
        pytest.warns(UserWarning, match="skipped 1 of 1"),
        pytest.raises(ValueError, match="none of the 1 PNG/JPEG files under .* could be read"),
    ):
        load_image_folder(empty)


def test_bad_arguments_and_no_overwrite(tmp_path):
    with pytest.raises(ValueError, match="image_size must be a positive integer, got 0"):
        load_image_folder(tmp_path, image_size=0)
    with pytest.raises(ValueError, match=r"channels must be 1 \(grey\), 3 \(RGB\) or None, got 2"):
        load_image_folder(tmp_path, channels=2)
    write_shape_images(tmp_path / "s", 1)
    with pytest.raises(FileExistsError, match="is not empty; give a new folder"):
        write_shape_images(tmp_path / "s", 1)
