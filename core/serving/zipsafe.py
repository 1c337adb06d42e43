"""Zip archives from untrusted hands: a student's images (core.serving.uploads) and run bundles
(core.bundles) are opened, checked and unpacked here, and nowhere else.

Before a byte is unpacked: every member's path stays inside the folder (no absolute paths, drive
letters, '..', NUL bytes, links), nothing is encrypted, the members are few enough, and what they
declare they unpack to is bounded three ways: the total (per archive), each member's compression
ratio (members above a few KB: nothing that small can hurt) and the whole archive's ratio (480
one-megabyte members of zeros pass any per-member check a real image would, and their sum is what
fills a disk). While unpacking, the real bytes are counted: a member whose header lies about its
size is stopped at what it declared. Problems are ZipProblem, a clause that follows "The zip" or
"The bundle" in the caller's sentence.
"""
from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.safejson import megabytes

_CHUNK = 1 << 16
_EOCD_SIZE = 22  # the end-of-central-directory record, before its comment (at most 64 KB)
MEMBER_RATIO_SLACK = 64 << 10  # a member this small may compress any amount (a flat icon, a text file)
ARCHIVE_RATIO_SLACK = 1 << 20  # ... and so may an archive that unpacks to this little


class ZipProblem(ValueError):
    """What is wrong with an archive: a clause such as "holds a link (cats/x.png)"; `member` names
    the member it is about ("" for the whole archive)."""

    def __init__(self, clause: str, member: str = ""):
        super().__init__(clause)
        self.clause = clause
        self.member = member


class NotAZip(ZipProblem):
    """The file is not a zip archive at all (or it is damaged beyond reading)."""


@dataclass(frozen=True)
class ZipBounds:
    max_members: int  # entries, folders included
    max_total: int  # bytes every member together may unpack to
    max_ratio: float  # unpacked / packed bytes, per member and for the whole archive


def source_size(source) -> int | None:
    """Bytes in a path or a seekable binary file (its position kept); None when unknown."""
    if isinstance(source, (str, os.PathLike)):
        return os.path.getsize(source)
    try:
        here = source.tell()
        end = source.seek(0, io.SEEK_END)
        source.seek(here)
        return end
    except (AttributeError, OSError, ValueError):
        return None


def declared_entries(source) -> int | None:
    """How many entries the archive's end record declares, read from its last 64 KB before
    zipfile parses (and holds in memory) the whole central directory: 600,000 empty entries in
    52 MB cost 15 s and 336 MB just to open. None when there is no readable end record (zipfile
    then says what is wrong)."""
    try:
        size = source.seek(0, io.SEEK_END)
        tail_start = max(size - (_EOCD_SIZE + 0xFFFF), 0)
        source.seek(tail_start)
        tail = source.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < _EOCD_SIZE:
            return None
        entries = struct.unpack_from("<H", tail, at + 10)[0]
        if entries == 0xFFFF and at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07":  # ZIP64
            source.seek(struct.unpack_from("<Q", tail, at - 12)[0])
            record = source.read(56)
            if record[:4] == b"PK\x06\x06" and len(record) == 56:
                entries = struct.unpack_from("<Q", record, 32)[0]
        return entries
    except (OSError, ValueError, struct.error):
        return None
    finally:
        source.seek(0)


def open_archive(source, max_members: int | None = None) -> zipfile.ZipFile:
    """The zip at `source` (bytes, a path or a binary file); NotAZip when it is not one, ZipProblem
    when it declares more than `max_members` entries (checked before zipfile reads them all)."""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    if max_members is not None:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                entries = declared_entries(f)
        else:
            entries = declared_entries(source)
        if entries is not None and entries > max_members:
            raise ZipProblem(f"holds {entries:,} entries, more than the {max_members:,} allowed")
    try:
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise NotAZip("is not a zip archive (or it is damaged)") from None


def shown(name: str) -> str:
    """A member's name as a message may show it: printable and short."""
    text = "".join(c if c.isprintable() else "?" for c in name)
    return text if len(text) <= 80 else text[:77] + "..."


def member_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    """The member's path parts ('\\' read as '/', as Windows zip tools write it); ZipProblem for
    anything that could land outside the folder it is unpacked into."""
    raw = info.filename
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or "\x00" in name:
        raise ZipProblem(f"holds an entry with an absolute path ({shown(raw)})", raw)
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if ".." in parts:
        raise ZipProblem(f"holds an entry that points outside its folder ({shown(raw)})", raw)
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ZipProblem(f"holds a link ({shown(raw)}); links are not allowed", raw)
    return parts


def _inflates(unpacked: int, packed: int, ratio: float, slack: int) -> bool:
    return unpacked > slack and unpacked > ratio * max(packed, 1)


def check_archive(archive: zipfile.ZipFile, bounds: ZipBounds, packed_size: int | None = None) -> list:
    """[(info, parts)] of every file member (folder entries left out), after the checks in the
    module notes; ZipProblem for the first one that fails. packed_size: the archive's bytes (for
    the whole-archive ratio; the members' compressed sizes when unknown)."""
    infos = archive.infolist()
    if len(infos) > bounds.max_members:
        raise ZipProblem(f"holds {len(infos):,} entries, more than the {bounds.max_members:,} allowed")
    members, declared = [], 0
    for info in infos:
        parts = member_parts(info)
        if info.flag_bits & 0x1:
            raise ZipProblem("is encrypted; use a zip without a password", info.filename)
        if _inflates(info.file_size, info.compress_size, bounds.max_ratio, MEMBER_RATIO_SLACK):
            raise ZipProblem(f"holds {shown(info.filename)}, which inflates "
                             f"{info.file_size // max(info.compress_size, 1):,} times: that looks like a zip bomb",
                             info.filename)
        declared += info.file_size
        if declared > bounds.max_total:
            raise ZipProblem(f"would unpack to more than {megabytes(bounds.max_total)}")
        if not info.is_dir() and parts:
            members.append((info, parts))
    packed = packed_size if packed_size is not None else sum(i.compress_size for i in infos)
    if _inflates(declared, packed, bounds.max_ratio, ARCHIVE_RATIO_SLACK):
        raise ZipProblem(f"unpacks to {declared // max(packed, 1):,} times its own size "
                         f"({megabytes(declared)} from {megabytes(packed)}): that looks like a zip bomb")
    return members


def copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: int) -> int:
    """Unpack one member into the new file `dest`, never more bytes than its header declared nor
    than `budget`; returns the bytes written. ZipProblem when the data lies or is damaged (the
    caller removes what was written); FileExistsError when `dest` exists (a member given twice)."""
    written = 0
    try:
        with archive.open(info) as src, open(dest, "xb") as out:
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                if written > info.file_size:
                    raise ZipProblem(f"holds {shown(info.filename)}, which holds more data than its header says: "
                                     "that looks like a zip bomb", info.filename)
                if written > budget:
                    raise ZipProblem(f"would unpack to more than allowed (stopped at {shown(info.filename)})",
                                     info.filename)
                out.write(chunk)
    except (zipfile.BadZipFile, EOFError, RuntimeError, NotImplementedError, ValueError) as exc:
        if isinstance(exc, ZipProblem):
            raise
        raise ZipProblem(f"holds {shown(info.filename)}, which cannot be unpacked (it is damaged or uses an "
                         "unknown compression)", info.filename) from None
    return written
