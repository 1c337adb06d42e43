"""Datasets by name -> one in-memory Dataset: uint8 images N×C×H×W, int64 labels, class names
and seeded train/val/test index splits. No Streamlit here; errors are DataError with one
plain sentence the UI can show as is."""
from __future__ import annotations

import colorsys
import math
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import numpy as np
import torch
from PIL import Image, ImageDraw, UnidentifiedImageError

from core.config import TORCHVISION_DATASETS, DataConfig, ModelConfig
from core.imagecache import DecodeBudget, Unreadable, read_image
from core.serving.limits import ENV_NAMES, LimitError, WorkLimits
from core.serving.roots import FolderError, resolve_folder, shown_path
from core.validation import ConfigError, check_section

Progress = Callable[[int, int], None]


class DataError(Exception):
    """A dataset could not be loaded; the message is one sentence for the user."""


DATASETS: dict[str, str] = {
    "digits": "scikit-learn digits: 1,797 handwritten digits, 8×8 grey, 10 classes (built in, offline)",
    "shapes": "Generated shapes: circles, squares, triangles, stars and crosses in colour, with known "
    "position, size, rotation and hue (offline)",
    "mnist": "MNIST: 70,000 handwritten digits, 28×28 grey, 10 classes (torchvision)",
    "fashion-mnist": "Fashion-MNIST: 70,000 clothing images, 28×28 grey, 10 classes (torchvision)",
    "cifar10": "CIFAR-10: 60,000 small photos, 32×32 colour, 10 classes (torchvision)",
    "folder": "Your own image folder: one sub-folder per class, any image format, resized to a square",
}
OFFLINE_DATASETS = ("digits", "shapes")
SHAPE_NAMES = ("circle", "square", "triangle", "star", "cross")
SPLITS = ("train", "val", "test")


@dataclass
class Dataset:
    name: str
    images: torch.Tensor  # uint8 N×C×H×W, all images (train+val+test)
    labels: torch.Tensor  # int64 N
    class_names: list[str]
    splits: dict[str, torch.Tensor]  # "train" / "val" / "test" -> int64 indices into images
    factors: dict[str, np.ndarray] = field(default_factory=dict)  # shapes: per-image factors
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file path, reason)
    source: str = ""

    @property
    def shape(self) -> tuple[int, int, int]:
        _, c, h, w = self.images.shape
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in self.splits:
            raise DataError(f"There is no '{name}' split; use one of {', '.join(self.splits)}.")
        index = self.splits[name]
        return self.images[index], self.labels[index]

    def class_counts(self, split: str | None = None) -> dict[str, int]:
        labels = self.labels if split is None else self.split(split)[1]
        counts = torch.bincount(labels, minlength=self.num_classes).tolist()
        return dict(zip(self.class_names, counts))


def load_dataset(cfg: DataConfig, progress: Progress | None = None, limits: WorkLimits | None = None) -> Dataset:
    """`limits` bound an image folder's walk (depth, files, time, pixels per image); by default
    those of the environment (core.serving.limits.WorkLimits.from_env)."""
    try:
        check_section(cfg, "data")  # the split fractions and the image limit
    except ConfigError as exc:
        raise DataError(str(exc)) from None
    if cfg.dataset == "digits":
        ds, official_test = _load_digits(), None
    elif cfg.dataset == "shapes":
        ds, official_test = _make_shapes(cfg, progress), None
    elif cfg.dataset in _TORCHVISION:
        ds, official_test = _load_torchvision(cfg, progress)
    elif cfg.dataset == "folder":
        ds, official_test = _load_folder(cfg, progress, limits or WorkLimits.from_env()), None
    else:
        raise DataError(f"Unknown dataset '{cfg.dataset}'; choose one of {', '.join(DATASETS)}.")
    return _apply_splits(ds, official_test, cfg)


def fill_model_shape(model_cfg: ModelConfig, dataset: Dataset) -> ModelConfig:
    model_cfg.in_channels, model_cfg.image_size, _ = dataset.shape
    model_cfg.num_classes = dataset.num_classes
    return model_cfg


def balanced_sample_weights(labels: torch.Tensor) -> torch.Tensor:
    """1 / (count of the item's class): every class gets the same total weight."""
    labels = labels.long()
    if labels.numel() == 0:
        return torch.zeros(0)
    counts = torch.bincount(labels).float()
    return 1.0 / counts[labels]


# ---------------------------------------------------------------- splits

def _part(n: int, fraction: float) -> int:
    """round(n * fraction), but at least one item when the fraction asks for any."""
    return 0 if fraction <= 0 or n == 0 else max(1, int(math.floor(n * fraction + 0.5)))


def _apply_splits(ds: Dataset, official_test: torch.Tensor | None, cfg: DataConfig) -> Dataset:
    """Seeded split. With an official test set, "test" is it and "val" comes from the official
    train part; otherwise test and val are cut from one shuffle. `limit` keeps the first items of
    each shuffled pool, proportionally, and the dataset then holds only the images kept."""
    n = len(ds.labels)
    limit = cfg.limit if 0 < cfg.limit < n else n
    g = torch.Generator().manual_seed(cfg.seed)
    if official_test is None:
        order = torch.randperm(n, generator=g)[:limit]
        n_test = _part(limit, cfg.test_fraction)
        n_val = _part(limit, cfg.val_fraction)
        test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    else:
        is_test = torch.zeros(n, dtype=torch.bool)
        is_test[official_test] = True
        train_pool = torch.nonzero(~is_test).flatten()
        test_pool = torch.nonzero(is_test).flatten()
        train_pool = train_pool[torch.randperm(len(train_pool), generator=g)]
        test_pool = test_pool[torch.randperm(len(test_pool), generator=g)]
        n_train_pool = int(math.floor(len(train_pool) * limit / n + 0.5))
        train_pool, test = train_pool[:n_train_pool], test_pool[:limit - n_train_pool]
        n_val = _part(len(train_pool), cfg.val_fraction)
        val, train = train_pool[:n_val], train_pool[n_val:]
    if len(train) == 0 or (cfg.val_fraction > 0 and len(val) == 0) or len(test) == 0:
        raise DataError(f"{limit} images are too few to make train, validation and test splits; "
                        "raise the image limit or use a larger dataset.")
    if limit < n:  # keep only the images in use, so counts, previews and memory match the limit
        used = torch.cat([train, val, test])
        ds.images, ds.labels = ds.images[used].contiguous(), ds.labels[used]
        ds.factors = {k: v[used.numpy()] for k, v in ds.factors.items()}
        ends = np.cumsum([0, len(train), len(val), len(test)]).tolist()
        train, val, test = (torch.arange(a, b) for a, b in zip(ends[:-1], ends[1:]))
    ds.splits = {"train": train, "val": val, "test": test}
    if cfg.exclude_classes:
        _exclude_classes(ds, cfg.exclude_classes)
    return ds


def _exclude_classes(ds: Dataset, classes: list[int]) -> None:
    """Drop `classes` from the train and validation splits; the test split keeps every class."""
    unknown = sorted({int(c) for c in classes if not 0 <= int(c) < ds.num_classes})
    if unknown:
        raise DataError(f"Class {unknown[0]} cannot be left out: {ds.name} has classes 0 to "
                        f"{ds.num_classes - 1}; pick one of those.")
    left_out = torch.tensor(sorted({int(c) for c in classes}), dtype=torch.int64)
    for split in ("train", "val"):
        index = ds.splits[split]
        ds.splits[split] = index[~torch.isin(ds.labels[index], left_out)]
    if len(ds.splits["train"]) == 0:
        raise DataError("Leaving out those classes leaves no training images; leave out fewer classes.")


def _report(progress: Progress | None, done: int, total: int) -> None:
    # ~100 updates at most: a UI progress bar does not need one message per file.
    if progress is not None and (done == total or done % max(1, math.ceil(total / 100)) == 0):
        progress(done, total)


# ---------------------------------------------------------------- built-in datasets

def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no network

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    return Dataset("digits", torch.from_numpy(images).unsqueeze(1),
                   torch.from_numpy(bunch.target.astype(np.int64)), [str(d) for d in range(10)],
                   {}, source="built-in: scikit-learn digits")


def _shape_polygon(kind: str, cx: float, cy: float, r: float, degrees: float) -> list[tuple[float, float]]:
    """Vertices (x right, y down) of a shape whose circumscribed circle has radius r."""
    if kind == "square":
        local = [(r * math.cos(math.radians(45 + 90 * k)), r * math.sin(math.radians(45 + 90 * k))) for k in range(4)]
    elif kind == "triangle":
        local = [(r * math.cos(math.radians(90 + 120 * k)), r * math.sin(math.radians(90 + 120 * k))) for k in range(3)]
    elif kind == "star":
        local = [((r if k % 2 == 0 else 0.45 * r) * math.cos(math.radians(90 + 36 * k)),
                  (r if k % 2 == 0 else 0.45 * r) * math.sin(math.radians(90 + 36 * k))) for k in range(10)]
    else:  # cross: a plus sign whose arm tips touch the circle
        a = 0.3 * r
        tip = math.sqrt(r * r - a * a)
        local = [(a, tip), (a, a), (tip, a), (tip, -a), (a, -a), (a, -tip),
                 (-a, -tip), (-a, -a), (-tip, -a), (-tip, a), (-a, a), (-a, tip)]
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    # counter-clockwise on screen: y grows downwards, hence the minus signs
    return [(cx + c * px - s * py, cy - (s * px + c * py)) for px, py in local]


_SYMMETRY_DEGREES = {"circle": 0.0, "square": 90.0, "triangle": 120.0, "star": 72.0, "cross": 90.0}


def _make_shapes(cfg: DataConfig, progress: Progress | None) -> Dataset:
    """Coloured shapes on a dark background. Factors: x, y (centre, fraction of the side, x to the
    right, y down), size (circumscribed diameter, fraction of the side), rotation (degrees within
    the shape's symmetry period, 0 for circles, so it is what the eye sees) and hue (0..1)."""
    size, count = cfg.image_size, cfg.shapes_count
    if not 8 <= size <= 512:
        raise DataError(f"Image size {size} is not supported for shapes; pick a size between 8 and 512 pixels.")
    if count < 10:
        raise DataError(f"{count} shapes are too few to train on; generate at least 10.")
    rng = np.random.default_rng(cfg.seed)
    shape = rng.integers(0, len(SHAPE_NAMES), count).astype(np.int64)
    extent = rng.uniform(0.35, 0.8, count)
    x = rng.uniform(extent / 2, 1 - extent / 2)
    y = rng.uniform(extent / 2, 1 - extent / 2)
    rotation = rng.uniform(0, 1, count) * np.array([_SYMMETRY_DEGREES[SHAPE_NAMES[s]] for s in shape])
    hue = rng.uniform(0, 1, count)
    background = np.full((3, 1, 1), 16.0, np.float32)
    supersample = 4 if size <= 48 else 2  # draw larger, then box-downscale: anti-aliased edges
    canvas = size * supersample
    images = np.empty((count, 3, size, size), np.uint8)
    for i in range(count):
        mask = Image.new("L", (canvas, canvas), 0)
        cx, cy, r = x[i] * canvas, y[i] * canvas, extent[i] * canvas / 2
        kind = SHAPE_NAMES[shape[i]]
        if kind == "circle":
            ImageDraw.Draw(mask).ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        else:
            ImageDraw.Draw(mask).polygon(_shape_polygon(kind, cx, cy, r, rotation[i]), fill=255)
        alpha = np.asarray(mask.resize((size, size), Image.Resampling.BOX), np.float32)[None] / 255.0
        colour = np.array(colorsys.hsv_to_rgb(hue[i], 0.85, 1.0), np.float32).reshape(3, 1, 1) * 255.0
        images[i] = np.rint(background * (1 - alpha) + colour * alpha).astype(np.uint8)
        _report(progress, i + 1, count)
    factors = {"shape": shape, "x": x.astype(np.float32), "y": y.astype(np.float32),
               "size": extent.astype(np.float32), "rotation": rotation.astype(np.float32),
               "hue": hue.astype(np.float32)}
    return Dataset("shapes", torch.from_numpy(images), torch.from_numpy(shape.copy()), list(SHAPE_NAMES),
                   {}, factors, source=f"generated: {count} shapes at {size}×{size}, seed {cfg.seed}")


# ---------------------------------------------------------------- torchvision datasets

def _torchvision_classes():
    from torchvision import datasets

    # name -> (torchvision class, title for messages, folder under data_root that holds the files)
    return {"mnist": (datasets.MNIST, "MNIST", "MNIST/raw"),
            "fashion-mnist": (datasets.FashionMNIST, "Fashion-MNIST", "FashionMNIST/raw"),
            "cifar10": (datasets.CIFAR10, "CIFAR-10", "cifar-10-batches-py")}


_TORCHVISION = TORCHVISION_DATASETS


def _download_address(tv_class) -> tuple[str, int]:
    """(host, port) of the first download URL. The port follows the URL: Fashion-MNIST is served
    over plain http by a host that does not answer on 443, so a fixed 443 would call it offline."""
    url = urlparse(tv_class.mirrors[0] if hasattr(tv_class, "mirrors") else tv_class.url)
    return url.hostname or "", url.port or (80 if url.scheme == "http" else 443)


def _network_reachable(host: str, port: int, timeout: float = 5.0) -> bool:
    """One quick TCP connection to the download host. It runs in a thread joined with a deadline
    because the name lookup inside create_connection ignores `timeout` and can hang offline."""
    answer: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                answer.append(True)
        except OSError:
            answer.append(False)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout + 3.0)
    return bool(answer and answer[0])


def _open_torchvision(tv_class, root: Path, download: bool):
    return tv_class(str(root), train=True, download=download), tv_class(str(root), train=False, download=download)


def _load_torchvision(cfg: DataConfig, progress: Progress | None) -> tuple[Dataset, torch.Tensor]:
    tv_class, title, folder = _torchvision_classes()[cfg.dataset]
    root = Path(cfg.data_root).expanduser()
    where = root / folder
    _report(progress, 0, 2)
    try:  # a copy already on disk in torchvision's layout is used as is
        train, test = _open_torchvision(tv_class, root, download=False)
    except Exception:  # missing: RuntimeError; a damaged IDX file: AssertionError, ValueError, ...
        if not cfg.download:
            raise DataError(f"{title} was not found (or is damaged) in {where}; turn on download, put the "
                            f"files there, or use an offline dataset ({', '.join(OFFLINE_DATASETS)}).") from None
        if not _network_reachable(*_download_address(tv_class)):
            raise DataError(f"Could not download {title}: no network connection; put the files under {where} "
                            f"or use an offline dataset ({', '.join(OFFLINE_DATASETS)}).") from None
        try:
            train, test = _open_torchvision(tv_class, root, download=True)
        except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ... here
            raise DataError(f"Could not download {title} into {where} ({_one_line(exc)}); try again later or "
                            f"use an offline dataset ({', '.join(OFFLINE_DATASETS)}).") from None
    _report(progress, 1, 2)
    parts = []
    for which, part in (("training", train), ("test", test)):
        if len(part.data) != len(part.targets):  # torchvision reads the two IDX files separately
            raise DataError(f"The {title} {which} files in {where} disagree: {len(part.data):,} images but "
                            f"{len(part.targets):,} labels; replace them with a matching pair (or download again).")
        data = torch.as_tensor(np.asarray(part.data))
        # MNIST keeps N×H×W, CIFAR-10 N×H×W×C: both become N×C×H×W
        data = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)
        parts.append((data.to(torch.uint8).contiguous(), torch.as_tensor(part.targets, dtype=torch.int64)))
    _report(progress, 2, 2)
    (train_x, train_y), (test_x, test_y) = parts
    images, labels = torch.cat([train_x, test_x]), torch.cat([train_y, test_y])
    official_test = torch.arange(len(train_y), len(labels))
    return Dataset(cfg.dataset, images, labels, list(train.classes), {}, source=str(where)), official_test


# ---------------------------------------------------------------- image folder

def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]


def _unreadable_reason(exc: Exception) -> str:
    if isinstance(exc, Unreadable):
        return str(exc)
    if isinstance(exc, UnidentifiedImageError):
        return "not an image Pillow can read"
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return "the image is too large to open safely"
    if "truncated" in str(exc):
        return "the image data is truncated"
    return f"could not be decoded ({_one_line(exc)})"


class _Walk:
    """A folder walk bounded in depth, files and time (WorkLimits); links are not followed when
    `no_links` (the served app: a link could lead out of the allowed roots)."""

    def __init__(self, limits: WorkLimits, shown: str, no_links: bool):
        self.limits, self.shown, self.no_links = limits, shown, no_links
        self.deadline = time.monotonic() + limits.max_walk_seconds
        self.files = 0
        self.too_deep: list[Path] = []  # folders below the depth limit, not searched
        self.links: list[Path] = []

    def count(self, n: int = 1) -> None:
        self.files += n
        if self.files > self.limits.max_images:
            raise DataError(f"The folder {self.shown} holds more than {self.limits.max_images:,} files, this "
                            f"server's limit ({ENV_NAMES['max_images']}); use a smaller folder.")
        if time.monotonic() > self.deadline:
            raise DataError(f"Listing the folder {self.shown} took longer than {self.limits.max_walk_seconds:g} s, "
                            f"this server's limit ({ENV_NAMES['max_walk_seconds']}); use a smaller folder.")

    def files_of(self, folder: Path) -> list[Path]:
        files: list[Path] = []
        top_depth = len(folder.parts)
        for dirpath, dirnames, filenames in os.walk(folder):
            here = Path(dirpath)
            if self.no_links:
                self.links += [here / d for d in dirnames if (here / d).is_symlink()]
                dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
            dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
            if len(here.parts) - top_depth >= self.limits.max_walk_depth:
                self.too_deep += [here / d for d in dirnames]
                dirnames[:] = []
            names = [f for f in sorted(filenames) if not _hidden(f)]
            if self.no_links:
                self.links += [here / f for f in names if (here / f).is_symlink()]
                names = [f for f in names if not (here / f).is_symlink()]
            self.count(len(names))
            files += [here / f for f in names]
        return files


def _list_folder(root: Path, walk: _Walk) -> tuple[dict[str, list[Path]], list[Path]]:
    """Class name -> its files (sub-folders searched too, hidden ones ignored), and the files
    lying directly in root, outside any class."""
    classes: dict[str, list[Path]] = {}
    loose = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if _hidden(entry.name):
            continue
        if walk.no_links and entry.is_symlink():
            walk.links.append(entry)
            continue
        walk.count(0)
        if entry.is_dir():
            classes[entry.name] = walk.files_of(entry)
        elif entry.is_file():
            walk.count()
            loose.append(entry)
    return classes, loose


def _folder_root(cfg: DataConfig) -> tuple[Path, str]:
    """(the folder, how messages name it). Inside an allowed root (cfg.folder_root) the path is
    checked to stay inside it and named relative to it; otherwise it is the path as given (CLI)."""
    if cfg.folder_root:
        try:
            root = resolve_folder(cfg.folder_root, cfg.folder)
        except FolderError as exc:
            raise DataError(str(exc)) from None
        return root, shown_path(root)
    if not cfg.folder.strip():
        raise DataError("No image folder was chosen; enter the path of a folder with one sub-folder per class.")
    root = Path(cfg.folder).expanduser()
    if root.exists() and not root.is_dir():
        raise DataError(f"{root} is a file, not a folder; enter the path of a folder with one sub-folder per class.")
    if not root.is_dir():
        raise DataError(f"The folder {root} does not exist; enter the path of a folder with one sub-folder per class.")
    return root, str(root)


def _load_folder(cfg: DataConfig, progress: Progress | None, limits: WorkLimits) -> Dataset:
    root, shown = _folder_root(cfg)
    served = bool(cfg.folder_root)

    def name_of(path: Path) -> str:  # the served app never shows a server path
        return shown_path(path) if served else str(path)

    if cfg.channels not in (1, 3):
        raise DataError(f"Images can have 1 (grey) or 3 (colour) channels, not {cfg.channels}; pick 1 or 3.")
    size = cfg.image_size
    if not 8 <= size <= 512:
        raise DataError(f"Image size {size} is not supported; pick a size between 8 and 512 pixels.")
    walk = _Walk(limits, shown, no_links=served)
    classes, loose = _list_folder(root, walk)
    skipped = [(name_of(p), "not inside a class sub-folder") for p in loose]
    skipped += [(name_of(p), "a link, which is not followed") for p in walk.links]
    skipped += [(name_of(p), f"more than {limits.max_walk_depth} folders deep, not searched") for p in walk.too_deep]
    total = sum(len(files) for files in classes.values())
    images, labels, class_names, done = [], [], [], 0
    budget = DecodeBudget(limits, shown)  # large images decode once (core.imagecache), and in a bound
    for name, files in classes.items():
        read = []
        for path in files:
            try:
                read.append(read_image(path, size, cfg.channels, limits.max_image_pixels, budget))
            except LimitError as exc:
                raise DataError(str(exc)) from None
            except Exception as exc:  # any decoder failure skips this one file, never the load
                skipped.append((name_of(path), _unreadable_reason(exc)))
            done += 1
            _report(progress, done, total)
        if not read:
            skipped.append((name_of(root / name), "class folder without readable images"))
            continue
        labels += [len(class_names)] * len(read)
        class_names.append(name)
        images += read
    if not class_names:
        raise DataError(f"No readable images were found in {shown}; put image files in one sub-folder per class.")
    if len(class_names) == 1:
        raise DataError(f"The folder {shown} has only one class ({class_names[0]}); "
                        "add at least one more class sub-folder with images.")
    stacked = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return Dataset("folder", stacked, torch.tensor(labels, dtype=torch.int64), class_names, {},
                   skipped=skipped, source=shown)
