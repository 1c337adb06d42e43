"""Reading one image file of a folder dataset: refused from its header when it is too large,
decoded at the smallest scale that still serves every size, and kept (for a large one) so that the
next size, channel count, split or seed of the same folder does not decode it again.

A served app reloads a folder for every new ?size=, ?channels=, seed or image limit (each is a
new dataset). A 16 KB zip of 30 black 6000×6000 PNGs cost 11-15 s of CPU every time: a PNG has no
reduced decoding (a JPEG has: Image.draft), and the full-size image was then transposed,
converted and resized as a whole. Now:
- every image is brought down to a "master" first: Image.draft (JPEG), then Image.reduce (a fast
  box filter by a whole factor) to no less than MASTER_SIDE (or twice the size asked for), then
  the centre square that ImageOps.fit would keep; orientation, modes and transparency after that;
- a master decoded from more than CACHE_MIN_PIXELS is kept in a process-wide cache keyed by the
  file's content (blake2b; identical files share one entry), bounded to CACHE_BYTES;
- DecodeBudget bounds what one load may decode (WorkLimits.max_decode_mp): cached images cost
  nothing, a folder that needs more is refused with one sentence instead of taking minutes.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from core.serving.limits import ENV_NAMES, LimitError, WorkLimits

logger = logging.getLogger(__name__)

MASTER_SIDE = 256  # twice the largest image a served app trains on (AE_LAB_MAX_IMAGE_SIZE, 128)
CACHE_MIN_PIXELS = 1_000_000  # decoding less than this takes a few ms: not worth keeping
CACHE_BYTES = 256 * 2**20  # a master is at most (2·side)² × 3 bytes: 0.8 MB at 256, some 300 of the largest
_DIGEST_ENTRIES = 100_000  # file versions whose content digest is remembered
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"}
_ORIENTATION = 0x0112  # the EXIF tag a camera's rotation is written in
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


class Unreadable(Exception):
    """A file refused before Pillow decodes it; the message is the reason."""


class DecodeBudget:
    """The megapixels one load may still decode; spend() refuses (LimitError) past them."""

    def __init__(self, limits: WorkLimits, shown: str):
        self.left = limits.max_decode_mp * 1_000_000
        self.limit_mp = limits.max_decode_mp
        self.shown = shown

    def spend(self, pixels: int) -> None:
        self.left -= pixels
        if self.left < 0:
            logger.info("a folder load stopped at the decode bound of %s megapixels (%s cached images)",
                        f"{self.limit_mp:,}", len(MASTERS.items))
            raise LimitError(
                f"The images of {self.shown} would take more than {self.limit_mp:,} megapixels of decoding in one "
                f"load, this server's limit ({ENV_NAMES['max_decode_mp']}); use fewer or smaller images (the large "
                "ones read so far are kept, so loading it again goes on from there).")


class _Masters:
    """content digest -> master image (PIL, L or RGB), least recently used dropped past CACHE_BYTES."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.lock = threading.Lock()
        self.items: OrderedDict[bytes, Image.Image] = OrderedDict()
        self.size = 0
        self.digests: OrderedDict[tuple, bytes] = OrderedDict()  # (path, size, mtime, inode) -> digest

    def get(self, key: bytes) -> Image.Image | None:
        with self.lock:
            master = self.items.get(key)
            if master is not None:
                self.items.move_to_end(key)
            return master

    def put(self, key: bytes, master: Image.Image) -> None:
        nbytes = master.width * master.height * len(master.getbands())
        with self.lock:
            old = self.items.pop(key, None)
            if old is not None:
                self.size -= old.width * old.height * len(old.getbands())
            if nbytes > self.capacity:
                return
            self.items[key] = master
            self.size += nbytes
            while self.size > self.capacity:
                _, dropped = self.items.popitem(last=False)
                self.size -= dropped.width * dropped.height * len(dropped.getbands())

    def digest(self, path: Path) -> bytes:
        """The file's content digest, read once per version of the file (its size, time and inode)."""
        stat = path.stat()
        version = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        with self.lock:
            known = self.digests.get(version)
        if known is not None:
            return known
        hasher = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                hasher.update(block)
        digest = hasher.digest()
        with self.lock:
            self.digests[version] = digest
            while len(self.digests) > _DIGEST_ENTRIES:
                self.digests.popitem(last=False)
        return digest

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.digests.clear()
            self.size = 0


MASTERS = _Masters(CACHE_BYTES)


def _open(path: Path, max_pixels: int | None) -> Image.Image:
    """The image with only its header read; Unreadable when empty or over max_pixels."""
    if path.stat().st_size == 0:
        raise Unreadable("empty file")
    # Pillow warns (DecompressionBombWarning, on stderr) for images between its limit and twice
    # it: made an error here, it becomes a skipped file with a reason instead of a raw warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = Image.open(path)
    if max_pixels is not None and im.width * im.height > max_pixels:
        im.close()
        raise Unreadable(f"{im.width:,}×{im.height:,} pixels, above the limit of {max_pixels / 1e6:g} "
                         f"megapixels ({ENV_NAMES['max_image_pixels']})")
    return im


def _normalised(im: Image.Image) -> Image.Image:
    """L for grey images, RGB for the others: 16/32-bit grey scaled to 8 bits, transparent parts
    black (the same dark background whatever the format)."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(im, dtype=np.float64)
        arr = arr / 257.0 if arr.max() > 255 else arr
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    grey = im.mode in _GREY_MODES
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        im = Image.alpha_composite(Image.new("RGBA", im.size, (0, 0, 0, 255)), im.convert("RGBA"))
    wanted = "L" if grey else "RGB"
    return im if im.mode == wanted else im.convert(wanted)


def _centre_square(im: Image.Image) -> Image.Image:
    """The centred square ImageOps.fit keeps of a picture it resizes to a square."""
    side = min(im.size)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    return im if im.width == im.height else im.crop((left, top, left + side, top + side))


def _decode_master(im: Image.Image, side: int) -> Image.Image:
    """The decoded image, upright, in L or RGB, at no less than `side` pixels a side where it was
    larger (reduced before anything else copies it), cut to its centre square."""
    im.load()
    orientation = im.getexif().get(_ORIENTATION, 1)
    im = _normalised(im)
    factor = min(im.size) // side
    if factor >= 2:
        im = im.reduce(factor)
    if orientation in _TRANSPOSE:  # what ImageOps.exif_transpose does, on the reduced image
        im = im.transpose(_TRANSPOSE[orientation])
    return _centre_square(im)


def read_image(path: Path, size: int, channels: int, max_pixels: int | None = None,
               budget: DecodeBudget | None = None) -> np.ndarray:
    """H×W×C uint8 at size×size: the shorter side resized to `size` and centre-cropped, so the
    aspect ratio is kept (a wide photo loses its sides rather than being squashed). An image over
    `max_pixels` (or Pillow's own bomb threshold) is refused from its header, before decoding; a
    large one is decoded once (MASTERS) and what is decoded is spent from `budget`."""
    side = max(MASTER_SIDE, 2 * size)
    with _open(path, max_pixels) as im:
        im.draft(None, (side, side))  # JPEG: decode at a reduced scale that is still >= side
        pixels = im.width * im.height
        key = MASTERS.digest(path) if pixels > CACHE_MIN_PIXELS else None
        master = MASTERS.get(key) if key is not None else None
        if master is not None and (min(master.size) < side <= min(im.size)):
            master = None  # kept for smaller sizes than this one asks for
        if master is None:
            if budget is not None:
                budget.spend(pixels)
            master = _decode_master(im, side)
            if key is not None:
                MASTERS.put(key, master)
    fitted = ImageOps.fit(master.convert("L" if channels == 1 else "RGB"), (size, size), Image.Resampling.BICUBIC)
    arr = np.asarray(fitted, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr
