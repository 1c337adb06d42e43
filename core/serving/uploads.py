"""A student's own images: a .zip of class folders, checked and unpacked under the app's data
folder (<data>/uploads/<name>), where the Data page then lists it like any other dataset.

Refused with one sentence: a zip over the upload size, not a zip or encrypted, more files than
the image limit, entries that escape the folder (absolute paths, '..', links: "zip slip"), a
declared or actual unpacked size over the limit or a member that inflates suspiciously (a zip
bomb), an image over the pixel limit, and fewer than two class folders with images. Files that
are not images are left out (and counted). Unpacking goes into a hidden temporary folder that is
renamed into place at the end, so a refused or failed upload leaves nothing behind.

An upload remembers who sent it (a hash of the browser's owner id, in a hidden file the folder
walk skips), so that the student who uploaded it, or the teacher, can delete it from the app:
delete_upload. Nobody else can: a class shares one list of datasets.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import os
import re
import secrets
import shutil
import stat
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image

from core.serving.limits import ENV_NAMES, WorkLimits
from core.serving.roots import IMAGE_SUFFIXES, UPLOADS_FOLDER, DataRoot, app_data_root, folder_value

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,59}")
UPLOADER_FILE = ".uploaded-by"  # hidden: the folder walk and the class listing skip it
_CHUNK = 1 << 16
_MB = 1 << 20


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

    def summary(self) -> str:
        images = sum(self.classes.values())
        text = (f"Unpacked {images:,} image{'s' if images != 1 else ''} in {len(self.classes)} classes "
                f"into {self.value}")
        if self.left_out == 1:
            text += "; 1 file that is not an image was left out"
        elif self.left_out:
            text += f"; {self.left_out:,} files that are not images were left out"
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


def _member_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    """The member's path parts; UploadError for anything that could land outside the folder."""
    raw = info.filename
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or "\x00" in name:
        raise UploadError(f"The zip holds an entry with an absolute path ({raw[:80]}); zip the class folders "
                          "themselves and upload again.")
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if ".." in parts:
        raise UploadError(f"The zip holds an entry that points outside its folder ({raw[:80]}); zip the class "
                          "folders themselves and upload again.")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise UploadError(f"The zip holds a link ({raw[:80]}); links are not allowed, zip the image files "
                          "themselves.")
    return parts


def _class_layout(files: list[tuple[zipfile.ZipInfo, tuple[str, ...]]]) -> int:
    """How many leading folders to drop: 1 when everything sits in one top folder (a zipped
    folder of classes), else 0 (the classes are at the top)."""
    tops = {parts[0] for _, parts in files if len(parts) > 1}
    loose = any(len(parts) == 1 for _, parts in files)
    if len(tops) == 1 and not loose and len({parts[1] for _, parts in files if len(parts) > 2}) >= 2:
        return 1
    return 0


def _check_pixels(path: Path, shown: str, limits: WorkLimits) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:  # reads the header only
                width, height = im.size
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        width = height = None
    except Exception:
        return  # not readable as an image: the Data page lists it as skipped, with the reason
    if width is None or width * height > limits.max_image_pixels:
        size = "too large to open safely" if width is None else f"{width:,}×{height:,} pixels"
        raise UploadError(f"{shown} in the zip is {size}, above this server's limit of "
                          f"{limits.max_image_pixels / 1e6:g} megapixels ({ENV_NAMES['max_image_pixels']}); "
                          "shrink it and upload again.")


def unpack_zip(source, name: str, limits: WorkLimits | None = None, root: DataRoot | None = None,
               on_taken: str = "refuse", uploader: str | None = None) -> UploadResult:
    """Check and unpack a zip of class folders (bytes, a path or a binary file) as
    <data root>/uploads/<name>; UploadError with one sentence when it is refused. When the name
    is taken: on_taken="refuse" refuses, "next" uses name-2, name-3, ... (reserved atomically).
    uploader: who may delete it besides the teacher (the browser's owner id; None: only the teacher)."""
    limits = limits or WorkLimits.from_env()
    root = root or app_data_root()
    check_dataset_name(name)
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    size = _size_of(source)
    if size > limits.max_upload_mb * _MB:
        raise UploadError(f"The zip is {size / _MB:.1f} MB, above this server's upload limit of "
                          f"{limits.max_upload_mb} MB ({ENV_NAMES['max_upload_mb']}); upload fewer or smaller images.")
    uploads = root.path / UPLOADS_FOLDER
    if on_taken == "refuse" and (uploads / name).exists():
        raise UploadError(f"A dataset named {name} was already uploaded "
                          f"({folder_value(root.name, f'{UPLOADS_FOLDER}/{name}')}); choose another name.")
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise UploadError("The file is not a zip archive (or it is damaged); zip the class folders and upload "
                          "again.") from None
    with archive:
        files, left_out = _checked_members(archive, limits)
        _check_room(uploads, sum(info.file_size for info, _ in files), limits)
        drop = _class_layout(files)
        kept = [(info, parts[drop:]) for info, parts in files]
        images = [(info, parts) for info, parts in kept
                  if len(parts) >= 2 and Path(parts[-1]).suffix.lower() in IMAGE_SUFFIXES]
        left_out += len(kept) - len(images)
        classes: dict[str, int] = {}
        for _, parts in images:
            classes[parts[0]] = classes.get(parts[0], 0) + 1
        if len(classes) < 2:
            raise UploadError(f"The zip has {len(classes)} class folder{'s' if len(classes) != 1 else ''} with "
                              "images; it needs at least two (one folder of images per class).")
        tmp = uploads / f".tmp-{name}-{secrets.token_hex(4)}"
        target = None
        try:
            uploads.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            _extract(archive, images, tmp, limits)
            if uploader:
                (tmp / UPLOADER_FILE).write_text(_uploader_hash(uploader))
            target = _reserve(uploads, name, on_taken, root)
            os.rename(tmp, target)  # onto our own empty reservation
        except OSError as exc:
            if target is not None:
                shutil.rmtree(target, ignore_errors=True)
            raise UploadError(f"The zip could not be unpacked ({exc.strerror or 'disk error'}); ask the teacher "
                              "to check the server's disk.") from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    value = folder_value(root.name, f"{UPLOADS_FOLDER}/{target.name}")
    return UploadResult(value, target, dict(sorted(classes.items())), left_out)


def _uploader_hash(owner: str) -> str:
    """What the disk keeps of an owner id: a hash, so reading the data folder does not reveal ids."""
    return hashlib.sha256(f"ae-lab-upload:{owner}".encode()).hexdigest()


def upload_name(value: str, root: DataRoot | None = None) -> str | None:
    """The upload's name when a folder value ("data/uploads/cats") is an uploaded dataset, else None."""
    root = root or app_data_root()
    head, _, relative = value.strip().strip("/").partition("/")
    folder, _, name = relative.partition("/")
    if head != root.name or folder != UPLOADS_FOLDER or not _NAME_RE.fullmatch(name):
        return None
    return name


def uploaded_by(name: str, owner: str | None, root: DataRoot | None = None) -> bool:
    """Whether `owner` (a browser's owner id) uploaded the dataset `name`."""
    root = root or app_data_root()
    if not owner or not _NAME_RE.fullmatch(name or ""):
        return False
    try:
        kept = (root.path / UPLOADS_FOLDER / name / UPLOADER_FILE).read_text().strip()
    except OSError:
        return False
    return hmac.compare_digest(kept.encode(), _uploader_hash(owner).encode())


def delete_upload(name: str, by: str | None, root: DataRoot | None = None) -> None:
    """Delete the uploaded dataset `name` for everyone. by: the owner id asking (it must be the
    uploader's), or None for the teacher. The folder is first renamed out of sight (atomic), so
    no student ever lists or loads a half-deleted dataset. UploadError: one sentence."""
    root = root or app_data_root()
    check_dataset_name(name)
    uploads = root.path / UPLOADS_FOLDER
    folder = uploads / name
    shown = folder_value(root.name, f"{UPLOADS_FOLDER}/{name}")
    if not folder.is_dir() or folder.is_symlink():
        raise UploadError(f"There is no uploaded dataset {shown} any more; choose another dataset.")
    if by is not None and not uploaded_by(name, by, root):
        raise UploadPermissionError(f"Only the student who uploaded {shown} (or the teacher) can delete it.")
    doomed = uploads / f".deleting-{name}-{secrets.token_hex(4)}"
    try:
        os.rename(folder, doomed)
    except FileNotFoundError:
        raise UploadError(f"There is no uploaded dataset {shown} any more; choose another dataset.") from None
    except OSError as exc:
        raise UploadError(f"{shown} could not be deleted ({exc.strerror or 'disk error'}); ask the teacher to "
                          "check the server's disk.") from None
    shutil.rmtree(doomed, ignore_errors=True)


def _reserve(uploads: Path, name: str, on_taken: str, root: DataRoot) -> Path:
    """Create uploads/<name> (or the next free name) as an empty folder: os.mkdir is atomic, so
    two students uploading under one name at once never mix their images."""
    candidate, n = name, 2
    while True:
        try:
            os.mkdir(uploads / candidate)
            return uploads / candidate
        except FileExistsError:
            if on_taken == "refuse":
                raise UploadError(f"A dataset named {name} was already uploaded "
                                  f"({folder_value(root.name, f'{UPLOADS_FOLDER}/{name}')}); choose another name.") from None
        candidate, n = f"{name}-{n}", n + 1


def _check_room(uploads: Path, incoming: int, limits: WorkLimits) -> None:
    """Refuse a zip that would take the uploads folder past AE_LAB_MAX_UPLOADS_MB."""
    used = 0
    for dirpath, _dirnames, filenames in os.walk(uploads):
        for filename in filenames:
            try:
                used += os.lstat(os.path.join(dirpath, filename)).st_size
            except OSError:
                pass
    if used + incoming > limits.max_uploads_mb * _MB:
        raise UploadError(f"The uploaded datasets already take {used / _MB:,.0f} MB of this server's "
                          f"{limits.max_uploads_mb:,} MB for uploads ({ENV_NAMES['max_uploads_mb']}); ask the teacher "
                          "to remove old uploads.")


def _size_of(source) -> int:
    if isinstance(source, (str, os.PathLike)):
        return os.path.getsize(source)
    position = source.tell()
    source.seek(0, os.SEEK_END)
    size = source.tell()
    source.seek(position)
    return size


def _checked_members(archive: zipfile.ZipFile, limits: WorkLimits):
    """(info, parts) of the files worth unpacking, and how many members were left out; refuses
    escapes, links, encryption, too many files and declared sizes or ratios over the limits."""
    files, left_out, declared = [], 0, 0
    max_bytes = limits.max_unzipped_mb * _MB
    for info in archive.infolist():
        parts = _member_parts(info)
        if info.is_dir() or not parts:
            continue
        if any(_hidden(p) for p in parts):
            left_out += 1
            continue
        if info.flag_bits & 0x1:
            raise UploadError("The zip is encrypted; upload a zip without a password.")
        files.append((info, parts))
        if len(files) > limits.max_images:
            raise UploadError(f"The zip holds more than {limits.max_images:,} files, this server's limit "
                              f"({ENV_NAMES['max_images']}); upload fewer images.")
        declared += info.file_size
        if declared > max_bytes:
            raise UploadError(f"The zip would unpack to more than {limits.max_unzipped_mb} MB, this server's limit "
                              f"({ENV_NAMES['max_unzipped_mb']}); upload fewer or smaller images.")
        if info.file_size > _MB and info.file_size > limits.max_zip_ratio * max(info.compress_size, 1):
            raise UploadError(f"{'/'.join(parts)[:80]} in the zip inflates {info.file_size // max(info.compress_size, 1):,} "
                              "times, which looks like a zip bomb; upload ordinary image files.")
    return files, left_out


def _extract(archive: zipfile.ZipFile, images, into: Path, limits: WorkLimits) -> None:
    """Stream each member out, counting the real bytes: a member whose header lies about its
    size is stopped at the declared size, and the whole stops at the unpacked-size limit."""
    max_bytes = limits.max_unzipped_mb * _MB
    written = 0
    for info, parts in images:
        dest = into.joinpath(*parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shown = "/".join(parts)[:80]
        member_bytes = 0
        try:
            with archive.open(info) as src, open(dest, "xb") as out:
                while chunk := src.read(_CHUNK):
                    member_bytes += len(chunk)
                    written += len(chunk)
                    if member_bytes > info.file_size:
                        raise UploadError(f"{shown} in the zip holds more data than its header says, which "
                                          "looks like a zip bomb; upload ordinary image files.")
                    if written > max_bytes:
                        raise UploadError(f"The zip would unpack to more than {limits.max_unzipped_mb} MB, this "
                                          f"server's limit ({ENV_NAMES['max_unzipped_mb']}); upload fewer or smaller "
                                          "images.")
                    out.write(chunk)
        except (zipfile.BadZipFile, EOFError, RuntimeError, NotImplementedError) as exc:
            raise UploadError(f"{shown} in the zip cannot be unpacked ({str(exc).splitlines()[0][:80] if str(exc) else 'damaged'}); "
                              "zip the images again and upload.") from None
        except FileExistsError:
            raise UploadError(f"The zip holds {shown} twice; zip the images again and upload.") from None
        _check_pixels(dest, shown, limits)
