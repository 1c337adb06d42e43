"""The folders a served app may read image datasets from, and how a student names one.

Allowed roots: the app's own data folder (AE_LAB_DATA_DIR, default data/ beside app.py; uploads
go into its uploads/ sub-folder) and the folders listed in AE_LAB_DATA_DIRS (os.pathsep-separated,
each `path` or `name=path`). Each root has a short name — the one the teacher set, else the folder's
own name, else (taken) its parent's and its own (/srv/shared/data: "shared-data", not "data-2") —
and a folder inside one is named "<root name>/<relative path>": a value safe to show and to keep in
a URL, never a server path.
Resolving refuses absolute paths, '..', links and anything that ends outside its root, and every
message names folders relative to the roots, so nothing outside them can be probed.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.serving.limits import WorkLimits

APP_DATA_ENV = "AE_LAB_DATA_DIR"
EXTRA_ROOTS_ENV = "AE_LAB_DATA_DIRS"
UPLOADS_FOLDER = "uploads"
APP_DIR = Path(__file__).resolve().parents[2]  # where app.py lives
# Extensions that make a sub-folder look like a class of images when looking for datasets.
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                  ".pbm", ".pnm"}
MAX_FOLDER_CHARS = 500  # a folder named inside a root; the file system's own limit is 4096 bytes
# Entries a class folder is peeked at when looking for datasets (not the whole folder).
_PEEK_ENTRIES = 50

log = logging.getLogger(__name__)


class FolderError(ValueError):
    """A folder name was refused; one sentence that names folders only relative to the roots."""


@dataclass(frozen=True)
class DataRoot:
    name: str  # what students see and type, e.g. "data"
    path: Path  # resolved; never shown in the served app
    app: bool = False  # the app's own data folder (uploads go into it)


def _named(entry: str) -> tuple[str, str]:
    """'pictures=/srv/art' -> ('pictures', '/srv/art'); a plain path -> ('', path). A part before '='
    that is not a plain name (e.g. a Windows drive) is part of the path."""
    name, sep, path = entry.partition("=")
    if sep and name.strip() and _safe_name(name.strip()) == name.strip():
        return name.strip(), path.strip()
    return "", entry.strip()


def allowed_roots(environ=None) -> list[DataRoot]:
    """The app's data folder first, then AE_LAB_DATA_DIRS in order; names made unique."""
    environ = os.environ if environ is None else environ
    entries = [("", str(environ.get(APP_DATA_ENV) or APP_DIR / "data"))]
    entries += [_named(p) for p in environ.get(EXTRA_ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    roots: list[DataRoot] = []
    seen_paths = set()
    for given, text in entries:
        resolved = Path(text).expanduser().resolve()
        if resolved in seen_paths:
            continue
        seen_paths.add(resolved)
        taken = {r.name for r in roots}
        own = _safe_name(resolved.name) or "data"
        candidates = [given] if given else [own, _safe_name(f"{resolved.parent.name}-{own}") or own]
        base = next((c for c in candidates if c not in taken), candidates[-1])
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        roots.append(DataRoot(name, resolved, app=not roots))
    return roots


def _safe_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in text).strip("-.")


def app_data_root(environ=None) -> DataRoot:
    """The root uploads are stored in (the app's own data folder)."""
    return allowed_roots(environ)[0]


def folder_value(root: str, relative: str) -> str:
    """The value a student sees and a URL keeps: "data/uploads/cats", or "data" for a root itself."""
    relative = relative.strip("/")
    return f"{root}/{relative}" if relative and relative != "." else root


def split_value(value: str) -> tuple[str, str]:
    """ "data/uploads/cats" -> ("data", "uploads/cats"); the first part names the root."""
    value = value.strip().replace("\\", "/")
    if value.startswith("/") or value.startswith("~") or (len(value) > 1 and value[1] == ":"):
        raise FolderError("Type a folder inside this server's data folders, like data/my-images; "
                          "absolute paths are not allowed.")
    root, _, relative = value.partition("/")
    return root, relative.strip("/")


def check_folder_text(relative: str) -> None:
    """FolderError for what the file system cannot take, before it is asked: a null byte raised
    ValueError from deep inside pathlib, a name over 255 bytes OSError (both a traceback on the page)."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in relative):
        raise FolderError("A folder name cannot hold control characters (such as a null byte or a line break); "
                          "type the folder's name as it is.")
    if len(relative) > MAX_FOLDER_CHARS or any(len(part.encode("utf-8", "surrogatepass")) > 255
                                               for part in relative.split("/")):
        raise FolderError(f"That folder name is too long (at most {MAX_FOLDER_CHARS} characters, 255 bytes a "
                          "folder); type the folder's name as it is.")


def resolve_folder(root_name: str, relative: str, roots: list[DataRoot] | None = None,
                   must_exist: bool = True) -> Path:
    """The real folder root_name/relative, checked to stay inside its root. FolderError when the
    root is unknown, the path is absolute, uses '..' or a link, or (must_exist) is missing or a file."""
    roots = allowed_roots() if roots is None else roots
    by_name = {r.name: r for r in roots}
    if root_name not in by_name:
        raise FolderError(f"There is no data folder named '{root_name}' on this server; start the path with "
                          f"one of: {', '.join(by_name)}.")
    relative = (relative or "").strip().replace("\\", "/")
    check_folder_text(relative)
    shown = folder_value(root_name, relative)
    if relative.startswith("/") or relative.startswith("~"):
        raise FolderError("Type a folder inside this server's data folders, like data/my-images; "
                          "absolute paths are not allowed.")
    parts = [p for p in PurePosixPath(relative).parts if p not in ("", ".")]
    if ".." in parts:
        raise FolderError(f"'{shown}' goes up with '..', which is not allowed; name a folder inside "
                          f"{root_name}.")
    root = by_name[root_name].path
    candidate = root.joinpath(*parts)
    real = candidate.resolve()
    if real != candidate:  # a link somewhere on the way (to anywhere: inside or outside the root)
        raise FolderError(f"'{shown}' goes through a link, which is not allowed; name a real folder inside "
                          f"{root_name}.")
    if must_exist:
        if not real.exists():
            raise FolderError(f"The folder {shown} does not exist; choose one of the listed datasets or check "
                              "the path.")
        if not real.is_dir():
            raise FolderError(f"{shown} is a file, not a folder; name a folder with one sub-folder per class.")
    return real


def shown_path(path: Path, roots: list[DataRoot] | None = None) -> str:
    """path as "<root name>/<relative>" when it lies in a root, else only its own name."""
    roots = allowed_roots() if roots is None else roots
    for root in roots:
        try:
            relative = path.relative_to(root.path)
        except ValueError:
            continue
        return folder_value(root.name, relative.as_posix())
    return path.name


def inside_roots(path: Path, roots: list[DataRoot] | None = None) -> bool:
    roots = allowed_roots() if roots is None else roots
    real = Path(path).expanduser().resolve()
    return any(real == r.path or r.path in real.parents for r in roots)


# ---------------------------------------------------------------- finding datasets

def _looks_like_class(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            for n, entry in enumerate(entries):
                if n >= _PEEK_ENTRIES:
                    return False
                if entry.is_file(follow_symlinks=False) and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                    return True
    except OSError:
        return False
    return False


def _subfolders(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return sorted((Path(e.path) for e in entries
                           if not e.name.startswith(".") and e.name != "__MACOSX" and e.is_dir(follow_symlinks=False)),
                          key=lambda p: p.name)
    except OSError:
        return []


# A folder's own split: sub-folder name -> split (the common train/ + val/ layout, and its variants).
SPLIT_FOLDER_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                      "test": "test", "testing": "test"}


def split_folders(folder: Path) -> dict[str, Path] | None:
    """{split: its folder} when `folder` holds a split of its own — a train/ folder of class folders
    and a val/ or test/ one beside it (names as in SPLIT_FOLDER_NAMES, any case) — else None."""
    found: dict[str, Path] = {}
    for sub in _subfolders(folder):
        split = SPLIT_FOLDER_NAMES.get(sub.name.lower())
        if split and split not in found:
            found[split] = sub
    if "train" not in found or len(found) < 2:
        return None
    if sum(1 for s in _subfolders(found["train"])[:_PEEK_ENTRIES] if _looks_like_class(s)) < 2:
        return None
    return {split: found[split] for split in ("train", "val", "test") if split in found}


def find_datasets(roots: list[DataRoot] | None = None, limits: WorkLimits | None = None,
                  max_folders: int = 2_000) -> tuple[list[str], str | None]:
    """The class-folder datasets in the roots (a folder with at least two sub-folders holding
    images, or with a split of its own: train/ and val/ or test/ of such folders), as folder values, and one sentence when the search stopped at a limit (depth,
    folders or time) or None. Links are not followed."""
    roots = allowed_roots() if roots is None else roots
    limits = limits or WorkLimits.from_env()
    deadline = time.monotonic() + limits.max_walk_seconds
    found: list[str] = []
    visited = 0
    note = None
    for root in roots:
        pending = [(root.path, 0)]
        while pending:
            folder, depth = pending.pop(0)
            visited += 1
            if visited > max_folders or time.monotonic() > deadline:
                note = (f"The search for datasets stopped after {visited - 1:,} folders (a limit of this server); "
                        "type the path of a folder that is not listed.")
                return sorted(found), note
            subs = _subfolders(folder)
            if split_folders(folder) is not None or sum(1 for s in subs[:_PEEK_ENTRIES] if _looks_like_class(s)) >= 2:
                found.append(folder_value(root.name, folder.relative_to(root.path).as_posix()))
                continue  # its class folders are not datasets of their own
            if depth >= limits.max_walk_depth:
                if subs:
                    note = (f"Folders more than {limits.max_walk_depth} levels deep were not searched for datasets; "
                            "type the path of a folder that is not listed.")
                continue
            pending += [(s, depth + 1) for s in subs]
    return sorted(found), note


def find_torchvision_folders(dataset: str, roots: list[DataRoot] | None = None, depth: int = 2) -> list[str]:
    """The folder values (e.g. "shared-data/MNIST-10k") that hold `dataset` in torchvision's layout
    (MNIST/raw, FashionMNIST/raw, cifar-10-batches-py), searched in each root down to `depth`
    folders: the Data page's examples are folders that work here. Links are not followed."""
    from core.data.torchvision_sets import TORCHVISION_FOLDERS

    marker = TORCHVISION_FOLDERS.get(dataset)
    if marker is None:
        return []
    roots = allowed_roots() if roots is None else roots
    found = []
    for root in roots:
        pending = [(root.path, 0)]
        while pending:
            folder, level = pending.pop(0)
            target = folder / marker
            if target.is_dir() and not target.is_symlink():
                found.append(folder_value(root.name, folder.relative_to(root.path).as_posix()))
            if level < depth:
                pending += [(sub, level + 1) for sub in _subfolders(folder)[:_PEEK_ENTRIES]]
    return found


# ---------------------------------------------------------------- the served app's data rule

_TORCHVISION = ("mnist", "fashion-mnist", "cifar10")


def served_data_config(cfg, roots: list[DataRoot] | None = None):
    """The DataConfig a served app loads for cfg, after check_served_data. A folder given as a
    plain path (a run pre-trained with the CLI) that lies inside a root is named by that root,
    so it loads (and is shown) like a folder chosen on the Data page; a torchvision data folder
    that starts with a root's name is resolved inside that root. cfg itself is not changed."""
    roots = allowed_roots() if roots is None else roots
    cfg = _named_by_roots(cfg, roots)
    check_served_data(cfg, roots)
    return cfg


def _named_by_roots(cfg, roots: list[DataRoot]):
    from dataclasses import replace

    for typed in (cfg.data_root, cfg.folder):
        check_folder_text(typed)
    if cfg.dataset in _TORCHVISION and not Path(cfg.data_root.strip() or ".").expanduser().is_absolute():
        # "data" or "data/MNIST-10k": a root's name first, like a folder value (the default "data"
        # is the app's own data folder wherever the server was started)
        name, relative = split_value(cfg.data_root.strip() or ".")
        if name in {r.name for r in roots}:
            cfg = replace(cfg, data_root=str(resolve_folder(name, relative, roots, must_exist=False)))
    if cfg.dataset == "folder" and not cfg.folder_root and cfg.folder.strip():
        real = Path(cfg.folder).expanduser().resolve()
        for root in roots:
            if real == root.path or root.path in real.parents:
                cfg = replace(cfg, folder_root=root.name, folder=real.relative_to(root.path).as_posix())
                break
    return cfg


def hide_root_paths(text: str, roots: list[DataRoot] | None = None) -> str:
    """text with every root's server path replaced by the root's name (for messages and sources
    that name a file inside a root by its full path, e.g. torchvision's folder)."""
    roots = allowed_roots() if roots is None else roots
    for root in sorted(roots, key=lambda r: len(str(r.path)), reverse=True):
        text = text.replace(str(root.path), root.name)
    return text


def _outside_roots(cfg, roots: list[DataRoot]) -> Path | None:
    """The folder cfg's data would be read from when a served app may not read it (an image
    folder given as a path, not by a root's name; a torchvision folder outside every root);
    None when it may (or the dataset is built in)."""
    if cfg.dataset == "folder" and not cfg.folder_root:
        return Path(cfg.folder or ".").expanduser().resolve()
    if cfg.dataset in _TORCHVISION and not inside_roots(Path(cfg.data_root or "."), roots):
        return Path(cfg.data_root or ".").expanduser().resolve()
    return None


def check_served_data(cfg, roots: list[DataRoot] | None = None) -> None:
    """What a served app may load (cfg: core.config.DataConfig): an image folder only by root
    name and relative path, a torchvision dataset only from (or downloaded into) a folder inside
    the roots. FolderError otherwise, in words every student may read (no server path: the
    server log names the folder, for the teacher); the CLI does not call this."""
    roots = allowed_roots() if roots is None else roots
    if cfg.dataset == "folder" and not cfg.folder.strip():
        raise FolderError("No image folder is chosen; choose one of the listed datasets.")
    outside = _outside_roots(cfg, roots)
    if outside is None:
        return
    log.warning("Refused to read %s data from %r: not inside the data folders (%s). To allow it, add that folder "
                "(or one above it) to %s and restart the app.", cfg.dataset, str(outside),
                os.pathsep.join(str(r.path) for r in roots), EXTRA_ROOTS_ENV)
    raise FolderError(f"This data is not inside this server's data folders ({', '.join(r.name for r in roots)}), "
                      f"so the app may not read it; use one of them, or ask the teacher to add its folder to "
                      f"{EXTRA_ROOTS_ENV} and restart the app (the server log names the folder).")


def app_reach_warning(cfg, environ=None) -> str | None:
    """For the CLI, which reads any folder: one sentence when an app started with this environment
    (its data folders: AE_LAB_DATA_DIR, AE_LAB_DATA_DIRS) could not load cfg's data, so a run
    trained on it could not be inspected there; it names the folder and how to allow it. None
    when the app could (or the dataset is built in)."""
    roots = allowed_roots(environ)
    try:
        outside = _outside_roots(_named_by_roots(cfg, roots), roots)
    except FolderError:  # a root's name followed by '..' or a link: not inside it
        outside = Path(cfg.data_root).expanduser().resolve()
    if outside is None:
        return None
    return (f"the app cannot show this run's data: {outside} is not inside its data folders "
            f"({os.pathsep.join(str(r.path) for r in roots)}); start the app with {EXTRA_ROOTS_ENV}={outside} "
            f"(or a folder above it; several are separated by '{os.pathsep}') so students can inspect the run.")
