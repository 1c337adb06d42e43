"""What a folder of large images costs the server (issue 17: a 16 KB zip of 30 black 6000×6000 PNGs
cost 11-15 s of CPU for every new ?size= or ?channels=). CPU seconds of core.data.load_dataset on
such a folder for a first size and then for each new size, channel count and seed, with
core.imagecache against the reader it replaced (decode the whole image, transpose, convert, fit:
kept below as the baseline), in the same process; with the default limits, how long the server
works before it refuses the folder; and the common case, 300 small photos, old reader against new.

    .venv/bin/python -m bench.large_images [--quick]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
from PIL import Image, ImageOps

from bench.photo_folder import write_photo_folder
from core import imagecache
from core.config import DataConfig
from core.data import DataError, load_dataset
from core.serving.limits import ENV_NAMES, WorkLimits

SETTINGS = [{"image_size": 32, "channels": 3}, {"image_size": 64, "channels": 3}, {"image_size": 32, "channels": 1},
            {"image_size": 32, "channels": 3, "seed": 1}]


def old_read_image(path: Path, size: int, channels: int, max_pixels: int | None = None, budget=None) -> np.ndarray:
    """core.data._read_image before core.imagecache (the baseline)."""
    if path.stat().st_size == 0:
        raise imagecache.Unreadable("empty file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = Image.open(path)
    with im:
        if max_pixels is not None and im.width * im.height > max_pixels:
            raise imagecache.Unreadable(f"{im.width:,}×{im.height:,} pixels, above the limit "
                                        f"({ENV_NAMES['max_image_pixels']})")
        im.draft(None, (size, size))
        im.load()
        im = ImageOps.exif_transpose(im)
        im = im.convert("L" if channels == 1 else "RGB")
        im = ImageOps.fit(im, (size, size), Image.Resampling.BICUBIC)
    arr = np.asarray(im, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def write_black_pngs(root: Path, count: int, side: int) -> Path:
    """count nearly black side×side PNGs in two classes, each different by one pixel (a few KB each)."""
    for i in range(count):
        folder = root / ("a" if i % 2 == 0 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        image = Image.new("RGB", (side, side))
        image.putpixel((i, 0), (255, 255, 255))
        image.save(folder / f"{i}.png")
    return root


def cpu_seconds(function) -> float:
    started = time.process_time()
    function()
    return time.process_time() - started


def loads(root: Path, limits: WorkLimits) -> list[float]:
    """CPU seconds of one load per SETTINGS entry, in order (each is a new dataset for the server)."""
    return [cpu_seconds(lambda s=s: load_dataset(DataConfig(dataset="folder", folder=str(root), **s), limits=limits))
            for s in SETTINGS]


def small_folder_seconds(scratch: Path) -> tuple[float, float]:
    """CPU seconds of loading 300 photo-like 64-px PNGs at 32 px: (the old reader, core.imagecache),
    the common case, where nothing is large enough to be kept."""
    root = write_photo_folder(scratch / "photos", per_class=150, size=64)
    config = DataConfig(dataset="folder", folder=str(root))
    with mock.patch("core.data.folder.read_image", old_read_image):
        before = min(cpu_seconds(lambda: load_dataset(config)) for _ in range(3))
    after = min(cpu_seconds(lambda: load_dataset(config)) for _ in range(3))
    return before, after


def measure(quick: bool) -> dict:
    count, side = (8, 3000) if quick else (30, 6000)
    with tempfile.TemporaryDirectory() as scratch:
        root = write_black_pngs(Path(scratch) / "black", count, side)
        zipped_kb = sum(p.stat().st_size for p in root.rglob("*.png")) / 1024
        unlimited = WorkLimits(max_decode_mp=10**9)
        with mock.patch("core.data.folder.read_image", old_read_image):
            before = loads(root, unlimited)
        imagecache.MASTERS.clear()
        after = loads(root, unlimited)
        imagecache.MASTERS.clear()
        default, answer = WorkLimits(), []

        def load_with_default_limits() -> None:
            try:
                load_dataset(DataConfig(dataset="folder", folder=str(root)), limits=default)
            except DataError as exc:  # the expected answer when the folder is over the default bound
                answer.append(str(exc))

        refused = cpu_seconds(load_with_default_limits)
        small_before, small_after = small_folder_seconds(Path(scratch))
    new_settings_before, new_settings_after = sum(before[1:]) / 3, sum(after[1:]) / 3
    return {
        "images": count, "side": side, "megapixels": round(count * side * side / 1e6), "files_kb": round(zipped_kb),
        "settings": SETTINGS,
        "cpu_s_before": [round(s, 3) for s in before], "cpu_s_after": [round(s, 3) for s in after],
        "first_load_ratio": round(before[0] / after[0], 2),
        "new_setting_cpu_s_before": round(new_settings_before, 3),
        "new_setting_cpu_s_after": round(new_settings_after, 4),
        "new_setting_ratio": round(new_settings_before / max(new_settings_after, 1e-4), 1),
        "small_folder_cpu_s": {"before": round(small_before, 3), "after": round(small_after, 3),
                               "ratio": round(small_before / small_after, 2)},
        "default_limits": {"max_decode_mp": default.max_decode_mp, "refused": bool(answer),
                           "cpu_s_to_answer": round(refused, 3), "message": answer[0] if answer else ""},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 images of 3000 px instead of 30 of 6000")
    print(json.dumps(measure(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()
