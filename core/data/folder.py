"""An image folder of class sub-folders (any Pillow-readable format, colour or grey, resized and
centre-cropped to a square), read within the server's limits; unreadable files are skipped and
listed with their reason."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from core.config import DataConfig
from core.data.base import DataError, Dataset, Progress, one_line as _one_line, report as _report
from core.imagecache import DecodeBudget, Unreadable, read_image
from core.serving.limits import ENV_NAMES, LimitError, WorkLimits
from core.serving.roots import FolderError, resolve_folder, shown_path, split_folders


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


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


def load_folder(cfg: DataConfig, progress: Progress | None,
                limits: WorkLimits) -> tuple[Dataset, dict[str, torch.Tensor] | None]:
    """The folder's images and, when it has its own train/ and val/ (or test/) sub-folders of
    classes (core.serving.roots.split_folders), those splits as indices (else None)."""
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
    parts = split_folders(root) or {"": root}  # split -> its folder of classes ("": no split of its own)
    listed = {split: _list_folder(folder, walk) for split, folder in parts.items()}
    skipped = [(name_of(p), "not inside a class sub-folder") for _, loose in listed.values() for p in loose]
    skipped += [(name_of(p), "a link, which is not followed") for p in walk.links]
    skipped += [(name_of(p), f"more than {limits.max_walk_depth} folders deep, not searched") for p in walk.too_deep]
    total = sum(len(files) for classes, _ in listed.values() for files in classes.values())
    read: dict[tuple[str, str], list[np.ndarray]] = {}  # (split, class) -> its images
    done = 0
    budget = DecodeBudget(limits, shown)  # large images decode once (core.imagecache), and in a bound
    for split, (classes, _) in listed.items():
        for name, files in classes.items():
            images = read.setdefault((split, name), [])
            for path in files:
                try:
                    images.append(read_image(path, size, cfg.channels, limits.max_image_pixels, budget))
                except LimitError as exc:
                    raise DataError(str(exc)) from None
                except Exception as exc:  # any decoder failure skips this one file, never the load
                    skipped.append((name_of(path), _unreadable_reason(exc)))
                done += 1
                _report(progress, done, total)
            if not images:
                skipped.append((name_of(parts[split] / name), "class folder without readable images"))
    class_names = list(dict.fromkeys(name for (_, name), images in read.items() if images))
    if not class_names:
        raise DataError(f"No readable images were found in {shown}; put image files in one sub-folder per class.")
    if len(class_names) == 1:
        raise DataError(f"The folder {shown} has only one class ({class_names[0]}); "
                        "add at least one more class sub-folder with images.")
    images, labels, split_of = [], [], []
    for (split, name), found in read.items():
        if not found:
            continue
        images += found
        labels += [class_names.index(name)] * len(found)
        split_of += [split] * len(found)
    stacked = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    given = None
    source = shown
    if "" not in parts:
        where = np.array(split_of)
        given = {split: torch.from_numpy(np.flatnonzero(where == split)) for split in parts}
        if not len(given["train"]):
            raise DataError(f"The train/ folder of {shown} holds no readable images; put the training images there.")
        kept = ", ".join(f"{split}/" for split in parts)
        cut = [f"{'validation' if s == 'val' else s} split cut from train/" for s in ("val", "test") if s not in parts]
        source = f"{shown} (its own split: {kept}" + (f"; the {' and '.join(cut)}" if cut else "") + ")"
    return Dataset("folder", stacked, torch.tensor(labels, dtype=torch.int64), class_names, {},
                   skipped=skipped, source=source), given
