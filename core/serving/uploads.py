"""A student's own images: a .zip of class folders, checked and unpacked under the app's data
folder (<data>/uploads/<name>), where it is then listed like any other dataset.

Refused with one sentence: a zip over the upload size, anything core.serving.zipsafe refuses
(not a zip, encrypted, entries that escape the folder or are links, a declared size over the
per-zip limit, a member or the whole archive inflating like a zip bomb, a header that lies), more
files than the image limit, an image over the pixel limit, fewer than two class folders with
images, and a zip that would take the uploads folder past the class's space or the student past
their own share (AE_LAB_MAX_STUDENT_UPLOADS_MB: every unpacked file counts, unreadable ones too).
Files that are not images are left out (and counted). Unpacking goes into a hidden temporary
folder that is renamed into place at the end, so a refused or failed upload leaves nothing behind.

An upload remembers who sent it (owner_key of the browser's owner id, in a hidden file the folder
walk skips), so that the student who uploaded it, or the teacher, can delete it: delete_upload.
Nobody else can: a class shares one list of datasets.
"""
from __future__ import annotations

import io
import logging
import os
import re
import secrets
import shutil
import threading
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from core.atomic import remove_folder, reserve_folder
from core.logs import short_owner
from core.serving.access import owner_key, same_owner
from core.serving.limits import ENV_NAMES, WorkLimits
from core.serving.roots import IMAGE_SUFFIXES, UPLOADS_FOLDER, DataRoot, app_data_root, folder_value
from core.serving.zipsafe import (NotAZip, ZipBounds, ZipProblem, check_archive, copy_member, open_archive, shown,
                                  source_size)

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,59}")
UPLOADER_FILE = ".uploaded-by"  # hidden: the folder walk and the class listing skip it
_MB = 1 << 20
_ADVICE = "zip the class folders of ordinary image files and upload again"


class UploadError(ValueError):
    """The zip was refused; one sentence saying why and what to do."""


class UploadPermissionError(UploadError):
    """Someone other than the uploader (or the teacher) asked to delete an upload; one sentence."""


@dataclass
class UploadResult:
    value: str  # folder value of the new dataset, e.g. "data/uploads/cats-dogs"
    path: Path  # where it was unpacked (server side; not for students' eyes)
    classes: dict[str, int]  # class folder -> image files unpacked
    left_out: int  # members that were not images (or hidden/system files)
    unreadable: int = 0  # image files unpacked that cannot be read as images (skipped when loading)

    def summary(self) -> str:
        images = sum(self.classes.values())
        text = (f"Unpacked {images:,} image{'s' if images != 1 else ''} in {len(self.classes)} classes "
                f"into {self.value}")
        if self.left_out == 1:
            text += "; 1 file that is not an image was left out"
        elif self.left_out:
            text += f"; {self.left_out:,} files that are not images were left out"
        if self.unreadable:
            text += (f"; {self.unreadable:,} image file{' is' if self.unreadable == 1 else 's are'} unreadable and "
                     "will be skipped, but still count toward your upload space")
        return text + "."


def dataset_name_from(filename: str) -> str:
    """A valid dataset name made from the uploaded file's name ("My cats.zip" -> "My-cats")."""
    stem = Path(filename or "").stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:60] or "upload"


def check_dataset_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise UploadError(f"'{name}' is not a valid dataset name; use up to 60 letters, digits, '.', '_' or '-', "
                          "starting with a letter or digit.")
    return name


def _hidden(part: str) -> bool:
    return part.startswith(".") or part == "__MACOSX"


def _class_layout(files: list[tuple[zipfile.ZipInfo, tuple[str, ...]]]) -> int:
    """How many leading folders to drop: 1 when everything sits in one top folder (a zipped
    folder of classes), else 0 (the classes are at the top)."""
    tops = {parts[0] for _, parts in files if len(parts) > 1}
    loose = any(len(parts) == 1 for _, parts in files)
    if len(tops) == 1 and not loose and len({parts[1] for _, parts in files if len(parts) > 2}) >= 2:
        return 1
    return 0


def _readable_image(path: Path, where: str, limits: WorkLimits) -> bool:
    """Whether the file reads as an image (its header only); UploadError when it is over the pixel limit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:  # reads the header only
                width, height = im.size
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        width = height = None
    except Exception:
        return False  # not readable as an image: the dataset skips it, with the reason
    if width is None or width * height > limits.max_image_pixels:
        size = "too large to open safely" if width is None else f"{width:,}×{height:,} pixels"
        raise UploadError(f"{where} in the zip is {size}, above this server's limit of "
                          f"{limits.max_image_pixels / 1e6:g} megapixels ({ENV_NAMES['max_image_pixels']}); "
                          "shrink it and upload again.")
    return True


def unpack_zip(source, name: str, limits: WorkLimits | None = None, root: DataRoot | None = None,
               on_taken: str = "refuse", uploader: str | None = None, teacher: bool = False) -> UploadResult:
    """Check and unpack a zip of class folders (bytes, a path or a binary file) as
    <data root>/uploads/<name>; UploadError with one sentence when it is refused. When the name
    is taken: on_taken="refuse" refuses, "next" uses name-2, name-3, ... (reserved atomically).
    uploader: the browser's owner id (who may delete it besides the teacher; None: only the
    teacher). Unless teacher=True, the upload counts against that student's share of the upload
    space (AE_LAB_MAX_STUDENT_UPLOADS_MB), every unpacked file included."""
    limits = limits or WorkLimits.from_env()
    root = root or app_data_root()
    check_dataset_name(name)
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    size = source_size(source) or 0
    if size > limits.max_upload_mb * _MB:
        raise UploadError(f"The zip is {size / _MB:.1f} MB, above this server's upload limit of "
                          f"{limits.max_upload_mb} MB ({ENV_NAMES['max_upload_mb']}); upload fewer or smaller images.")
    uploads = root.path / UPLOADS_FOLDER
    if on_taken == "refuse" and (uploads / name).exists():
        raise UploadError(f"A dataset named {name} was already uploaded "
                          f"({folder_value(root.name, f'{UPLOADS_FOLDER}/{name}')}); choose another name.")
    bounds = ZipBounds(max_members=2 * limits.max_images + 1000, max_total=limits.max_unzipped_mb * _MB,
                       max_ratio=limits.max_zip_ratio)
    try:
        archive = open_archive(source, bounds.max_members)
    except NotAZip:
        raise UploadError("The file is not a zip archive (or it is damaged); zip the class folders and upload "
                          "again.") from None
    except ZipProblem as exc:
        raise UploadError(f"The zip {exc.clause}; {_ADVICE}.") from None
    student = None if teacher or not uploader else uploader
    who = "teacher" if teacher else short_owner(uploader)
    try:
        with archive, _owner_lock(owner_key(student) if student else ""):
            images, left_out = _images(archive, bounds, limits, size)
            _check_room(uploads, sum(info.file_size for info, _ in images), limits, student)
            target, unreadable = _unpack_into_place(archive, images, uploads, name, on_taken, root, limits, uploader)
    except UploadError as exc:
        log.warning("upload %s refused for %s: %s", name, who, exc)
        raise
    log.info("upload %s unpacked for %s: %d images, %d unreadable", target.name, who, len(images), unreadable)
    classes: dict[str, int] = {}
    for _, parts in images:
        classes[parts[0]] = classes.get(parts[0], 0) + 1
    return UploadResult(folder_value(root.name, f"{UPLOADS_FOLDER}/{target.name}"), target,
                        dict(sorted(classes.items())), left_out, unreadable)


def _images(archive: zipfile.ZipFile, bounds: ZipBounds, limits: WorkLimits, size: int):
    """[(info, class-relative parts)] of the image members worth unpacking, and how many members
    were left out (not images, hidden or system files); UploadError for an archive the zip-safety
    checks refuse, too many files, or fewer than two class folders."""
    try:
        members = check_archive(archive, bounds, size or None)
    except ZipProblem as exc:
        if exc.clause.startswith("would unpack to more than"):
            raise UploadError(f"The zip would unpack to more than {limits.max_unzipped_mb} MB, this server's limit "
                              f"({ENV_NAMES['max_unzipped_mb']}); upload fewer or smaller images.") from None
        raise UploadError(f"The zip {exc.clause}; {_ADVICE}.") from None
    files = [(info, parts) for info, parts in members if not any(_hidden(p) for p in parts)]
    if len(files) > limits.max_images:
        raise UploadError(f"The zip holds more than {limits.max_images:,} files, this server's limit "
                          f"({ENV_NAMES['max_images']}); upload fewer images.")
    drop = _class_layout(files)
    kept = [(info, parts[drop:]) for info, parts in files]
    images = [(info, parts) for info, parts in kept
              if len(parts) >= 2 and Path(parts[-1]).suffix.lower() in IMAGE_SUFFIXES]
    classes = {parts[0] for _, parts in images}
    if len(classes) < 2:
        raise UploadError(f"The zip has {len(classes)} class folder{'s' if len(classes) != 1 else ''} with "
                          "images; it needs at least two (one folder of images per class).")
    return images, len(members) - len(images)


def _extract(archive: zipfile.ZipFile, images, into: Path, limits: WorkLimits) -> int:
    """Stream each image out (zipsafe.copy_member: never more than its header declared, the whole
    never more than the per-zip limit), checking its pixels; returns how many are unreadable."""
    budget = limits.max_unzipped_mb * _MB
    unreadable = 0
    for info, parts in images:
        dest = into.joinpath(*parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        where = shown("/".join(parts))
        try:
            budget -= copy_member(archive, info, dest, budget)
        except ZipProblem as exc:
            raise UploadError(f"The zip {exc.clause}; {_ADVICE}.") from None
        except FileExistsError:
            raise UploadError(f"The zip holds {where} twice; zip the images again and upload.") from None
        unreadable += not _readable_image(dest, where, limits)
    return unreadable


def _unpack_into_place(archive, images, uploads: Path, name: str, on_taken: str, root: DataRoot,
                       limits: WorkLimits, uploader: str | None) -> tuple[Path, int]:
    """Unpack into a hidden folder, then rename it onto a reserved name; (its path, how many
    image files could not be read as images)."""
    tmp = uploads / f".tmp-{name}-{secrets.token_hex(4)}"
    target = None
    try:
        uploads.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        unreadable = _extract(archive, images, tmp, limits)
        if uploader:
            (tmp / UPLOADER_FILE).write_text(owner_key(uploader))
        target = _reserve(uploads, name, on_taken, root)
        os.rename(tmp, target)  # onto our own empty reservation
        return target, unreadable
    except OSError as exc:
        if target is not None:
            shutil.rmtree(target, ignore_errors=True)
        raise UploadError(f"The zip could not be unpacked ({exc.strerror or 'disk error'}); ask the teacher "
                          "to check the server's disk.") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def upload_name(value: str, root: DataRoot | None = None) -> str | None:
    """The upload's name when a folder value ("data/uploads/cats") is an uploaded dataset, else None."""
    root = root or app_data_root()
    head, _, relative = value.strip().strip("/").partition("/")
    folder, _, name = relative.partition("/")
    if head != root.name or folder != UPLOADS_FOLDER or not _NAME_RE.fullmatch(name):
        return None
    return name


def _recorded_uploader(folder: Path) -> str | None:
    try:
        return (folder / UPLOADER_FILE).read_text()[:200].strip() or None
    except OSError:
        return None


def uploaded_by(name: str, owner: str | None, root: DataRoot | None = None) -> bool:
    """Whether `owner` (a browser's owner id) uploaded the dataset `name`."""
    root = root or app_data_root()
    if not owner or not _NAME_RE.fullmatch(name or ""):
        return False
    return same_owner(_recorded_uploader(root.path / UPLOADS_FOLDER / name), owner)


def delete_upload(name: str, by: str | None, root: DataRoot | None = None) -> None:
    """Delete the uploaded dataset `name` for everyone. by: the owner id asking (it must be the
    uploader's), or None for the teacher. The folder is first renamed out of sight (atomic), so
    no student ever lists or loads a half-deleted dataset. UploadError: one sentence."""
    root = root or app_data_root()
    check_dataset_name(name)
    uploads = root.path / UPLOADS_FOLDER
    folder = uploads / name
    where = folder_value(root.name, f"{UPLOADS_FOLDER}/{name}")
    if not folder.is_dir() or folder.is_symlink():
        raise UploadError(f"There is no uploaded dataset {where} any more; choose another dataset.")
    if by is not None and not uploaded_by(name, by, root):
        log.warning("delete of upload %s refused for %s", name, short_owner(by))
        raise UploadPermissionError(f"Only the student who uploaded {where} (or the teacher) can delete it.")
    try:
        remove_folder(folder)
    except FileNotFoundError:
        raise UploadError(f"There is no uploaded dataset {where} any more; choose another dataset.") from None
    except OSError as exc:
        raise UploadError(f"{where} could not be deleted ({exc.strerror or 'disk error'}); ask the teacher to "
                          "check the server's disk.") from None
    log.info("deleted upload %s by %s", name, short_owner(by))


def _reserve(uploads: Path, name: str, on_taken: str, root: DataRoot) -> Path:
    """Create uploads/<name> (or the next free name) as an empty folder: os.mkdir is atomic, so
    two students uploading under one name at once never mix their images."""
    try:
        return uploads / reserve_folder(uploads, name, take_next=on_taken != "refuse")
    except FileExistsError:
        raise UploadError(f"A dataset named {name} was already uploaded "
                          f"({folder_value(root.name, f'{UPLOADS_FOLDER}/{name}')}); choose another name.") from None


_owner_locks: dict[str, threading.Lock] = {}
_owner_locks_guard = threading.Lock()


def _owner_lock(key: str) -> threading.Lock:
    """One lock per student: two uploads of one student at once cannot both fit in the same space."""
    with _owner_locks_guard:
        return _owner_locks.setdefault(key, threading.Lock())


def _folder_bytes(folder: Path) -> int:
    used = 0
    for dirpath, _dirnames, filenames in os.walk(folder):
        for filename in filenames:
            try:
                used += os.lstat(os.path.join(dirpath, filename)).st_size
            except OSError:
                pass
    return used


def _check_room(uploads: Path, incoming: int, limits: WorkLimits, student: str | None) -> None:
    """Refuse a zip that would take the uploads folder past AE_LAB_MAX_UPLOADS_MB, or the
    student's own uploads past AE_LAB_MAX_STUDENT_UPLOADS_MB (every file on disk counts, images
    that turn out unreadable included: they take the space all the same)."""
    used = mine = 0
    if uploads.is_dir():
        for entry in uploads.iterdir():
            if not entry.is_dir() or entry.is_symlink():
                continue
            size = _folder_bytes(entry)
            used += size
            if student and same_owner(_recorded_uploader(entry), student):
                mine += size
    if used + incoming > limits.max_uploads_mb * _MB:
        raise UploadError(f"The uploaded datasets already take {used / _MB:,.0f} MB of this server's "
                          f"{limits.max_uploads_mb:,} MB for uploads ({ENV_NAMES['max_uploads_mb']}); ask the teacher "
                          "to remove old uploads.")
    quota = limits.max_student_uploads_mb
    if student and mine + incoming > quota * _MB:
        raise UploadError(f"This zip unpacks to {incoming / _MB:,.1f} MB and your uploads already take "
                          f"{mine / _MB:,.1f} MB of the {quota:,} MB each student may upload "
                          f"({ENV_NAMES['max_student_uploads_mb']}); delete one of your uploaded datasets or upload "
                          "fewer images.")
