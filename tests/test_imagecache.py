"""Large images are decoded once and in a bound (issue 17: a 16 KB zip of 30 black 6000×6000 PNGs
cost 11-15 s of CPU for every new ?size= or ?channels=). Decodes are counted where Pillow does them
(ImageFile.load), so the tests hold for any implementation of the folder reader."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from core import imagecache
from core.config import DataConfig
from core.data import DataError, load_dataset
from core.serving.limits import WorkLimits

SIDE = 1500  # 2.25 megapixels: large enough to be kept, quick to write


@pytest.fixture(autouse=True)
def empty_cache():
    imagecache.MASTERS.clear()
    yield
    imagecache.MASTERS.clear()


@pytest.fixture
def decodes(monkeypatch) -> list[int]:
    """The pixel count of every image Pillow decodes from a file from now on."""
    counted: list[int] = []
    real = ImageFile.ImageFile.load

    def load(self):
        if self.tile:  # still to decode (a loaded image has no tiles left)
            counted.append(self.width * self.height)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return counted


def large_folder(root, per_class: int = 3, same: bool = False):
    """Two classes of large, nearly black PNGs (distinct unless `same`), a few KB each."""
    for c, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = np.zeros((SIDE, SIDE, 3), np.uint8)
            if not same:
                image[i, c] = 255
            Image.fromarray(image).save(root / name / f"{i}.png")
    return root


def folder_config(root, **settings) -> DataConfig:
    return DataConfig(dataset="folder", folder=str(root), val_fraction=0.2, test_fraction=0.2, **settings)


def test_a_new_size_channels_or_seed_decodes_no_large_image_again(tmp_path, decodes):
    root = large_folder(tmp_path / "big")
    first = load_dataset(folder_config(root, image_size=16, channels=3))
    assert len(decodes) == 6 and first.images.shape == (6, 3, 16, 16)
    decodes.clear()
    for settings in ({"image_size": 32, "channels": 3}, {"image_size": 16, "channels": 1},
                     {"image_size": 64, "seed": 5}):
        again = load_dataset(folder_config(root, **settings))
        assert again.images.shape[1:] == (settings.get("channels", 3), settings["image_size"], settings["image_size"])
    assert decodes == []


def test_identical_files_are_decoded_once(tmp_path, decodes):
    load_dataset(folder_config(large_folder(tmp_path / "same", per_class=4, same=True), image_size=16))
    assert len(decodes) == 1


def test_a_load_that_would_decode_too_much_is_one_sentence(tmp_path, decodes):
    root = large_folder(tmp_path / "big", per_class=4)  # 8 × 2.25 = 18 megapixels
    with pytest.raises(DataError) as info:
        load_dataset(folder_config(root, image_size=16), limits=WorkLimits(max_decode_mp=10))
    message = str(info.value)
    assert "AE_LAB_MAX_DECODE_MP" in message and "10 megapixels" in message and "\n" not in message
    assert sum(decodes) <= 10_000_000  # it stopped at the bound, not after decoding everything
    # What was read is kept: the next load goes on from there and finishes.
    assert len(load_dataset(folder_config(root, image_size=16), limits=WorkLimits(max_decode_mp=10)).labels) == 8


def test_an_image_over_the_pixel_limit_is_never_decoded(tmp_path, decodes):
    root = large_folder(tmp_path / "big", per_class=2)
    with pytest.raises(DataError, match="No readable images"):  # every image refused from its header
        load_dataset(folder_config(root, image_size=16), limits=WorkLimits(max_image_pixels=SIDE * SIDE - 1))
    assert decodes == []


@pytest.mark.parametrize("side", [60, 2400])  # read whole, and reduced first
def test_a_camera_rotation_is_applied(tmp_path, side):
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 256, (side, side * 3 // 2, 3), dtype=np.uint8))
    exif = picture.getexif()
    exif[0x0112] = 6  # the camera was turned: rotate 90° clockwise to show it upright
    path = tmp_path / "turned.jpg"
    picture.save(path, exif=exif.tobytes(), quality=95)
    expected = ImageOps.fit(ImageOps.exif_transpose(Image.open(path)), (24, 24), Image.Resampling.BICUBIC)
    read = imagecache.read_image(path, 24, 3)
    assert read.shape == (24, 24, 3)
    assert np.abs(read.astype(int) - np.asarray(expected, dtype=int)).mean() < 3  # noise images: rotation matters


def test_the_cache_stays_within_its_bytes():
    masters = imagecache._Masters(capacity=3 * 100 * 100 * 3)
    for n in range(10):
        masters.put(bytes([n]), Image.new("RGB", (100, 100)))
    assert masters.size <= masters.capacity and len(masters.items) == 3
    assert masters.get(bytes([9])) is not None and masters.get(bytes([0])) is None
