"""Runs that travel: several saved runs as one .zip, and that zip checked and imported.

A bundle is a zip holding bundle.json ({"format": "autoencoder-lab-runs", "version": 1, "runs":
[names]}) and, per run, <name>/<file> for the files a run folder holds (config.json, weights.pt,
metrics.json, film.pt, info.json, resume.pt) and nothing else. Import trusts nothing in it: the
zip's size, member count and per-member size and compression ratio are bounded before anything is
read; member names must be exactly <valid run name>/<known file> (no folders, links, absolute
paths, '..' or backslashes); a member that is anything else (code, a pickle, a stray file) refuses
the whole bundle. Each run is unpacked into a temporary folder inside the checkpoints folder and
loaded like any run (weights_only, weights that fit the config; resume.pt too) before it is renamed
into place; a name already taken is given the next free name and the result says so.
"""
from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.checkpoints import (CONFIG_FILE, FILM_FILE, INFO_FILE, METRICS_FILE, RESUME_FILE, WEIGHTS_FILE,
                              CheckpointError, check_name, load_resume, load_run, unique_run_name)

MANIFEST = "bundle.json"
FORMAT = "autoencoder-lab-runs"
VERSION = 1
RUN_FILES = (CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE, FILM_FILE, INFO_FILE, RESUME_FILE)
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS_FILE, INFO_FILE)
MAX_BUNDLE_BYTES_ENV = "AE_LAB_MAX_BUNDLE_MB"
DEFAULT_MAX_BUNDLE_MB = 512
MAX_RUNS = 200
MAX_JSON_BYTES = 64 << 20  # a metrics.json of 20,000 batch losses is well under 1 MB
MAX_RATIO = 100  # uncompressed / compressed; tensors and JSON stay far below, zip bombs far above
_TMP_PREFIX = ".tmp-import-"


class BundleError(Exception):
    """One plain sentence: why the bundle was refused (nothing of it was imported)."""


@dataclass
class ImportedRun:
    name_in_bundle: str
    name: str  # the name it was saved under (another when the bundle's name was taken)

    @property
    def renamed(self) -> bool:
        return self.name != self.name_in_bundle

    def sentence(self) -> str:
        if self.renamed:
            return (f"Imported {self.name_in_bundle} as {self.name}, because a run named "
                    f"{self.name_in_bundle} already exists.")
        return f"Imported {self.name}."


def max_bundle_bytes() -> int:
    text = os.environ.get(MAX_BUNDLE_BYTES_ENV, str(DEFAULT_MAX_BUNDLE_MB))
    try:
        return int(float(text) * (1 << 20))
    except ValueError:
        raise ValueError(f"{MAX_BUNDLE_BYTES_ENV}={text!r} is not a number of megabytes; set it to e.g. 512.") from None


# ---------------------------------------------------------------- export

def export_runs(root, names: list[str], dest) -> None:
    """Write the runs `names` of `root` as one bundle into `dest` (a path or a binary file)."""
    if not names:
        raise BundleError("Choose at least one run to export.")
    root = Path(root)
    names = list(dict.fromkeys(names))
    folders = []
    for name in names:
        path = root / check_name(name)
        if not (path / INFO_FILE).is_file():
            raise CheckpointError(f"There is no complete run named {name} in {root}; pick one of the saved runs.")
        folders.append(path)
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as bundle:
        bundle.writestr(MANIFEST, json.dumps({"format": FORMAT, "version": VERSION, "runs": names}, indent=2))
        for name, path in zip(names, folders):
            for file in RUN_FILES:
                if (path / file).is_file():
                    bundle.write(path / file, f"{name}/{file}")


def export_bytes(root, names: list[str]) -> bytes:
    buffer = io.BytesIO()
    export_runs(root, names, buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------- import

def _size_of(source) -> int | None:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).stat().st_size
    try:
        here = source.tell()
        end = source.seek(0, io.SEEK_END)
        source.seek(here)
        return end
    except (AttributeError, OSError):
        return None


def _check_members(bundle: zipfile.ZipFile, limit: int) -> tuple[list[str], dict[str, dict[str, zipfile.ZipInfo]]]:
    infos = bundle.infolist()
    if len(infos) > 1 + MAX_RUNS * len(RUN_FILES):
        raise BundleError(f"The bundle holds {len(infos)} files, more than a bundle of {MAX_RUNS} runs can; "
                          "nothing was imported.")
    runs: dict[str, dict[str, zipfile.ZipInfo]] = {}
    manifest = None
    total = 0
    for info in infos:
        name = info.filename
        if info.is_dir() and name.count("/") == 1 and name.endswith("/"):
            continue  # a folder entry some zip tools add; it creates nothing
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise BundleError(f"The bundle holds a link ({name}); nothing was imported.")
        parts = PurePosixPath(name).parts
        if "\\" in name or name.startswith("/") or ".." in parts or ":" in name:
            raise BundleError("The bundle holds a file whose path points outside its run folder; nothing was imported.")
        if info.file_size > limit or (info.compress_size and info.file_size / info.compress_size > MAX_RATIO
                                      and info.file_size > 1 << 20):
            raise BundleError(f"The bundle's {name} unpacks to more than it should (a zip bomb?); "
                              "nothing was imported.")
        total += info.file_size
        if total > limit:
            raise BundleError(f"The bundle unpacks to more than {limit >> 20} MB; export fewer runs, or ask the "
                              f"teacher to raise {MAX_BUNDLE_BYTES_ENV}.")
        if name == MANIFEST:
            manifest = info
            continue
        if len(parts) != 2 or parts[1] not in RUN_FILES:
            raise BundleError(f"The bundle holds {name}, which is not part of a saved run (code and pickles are "
                              "never imported); nothing was imported.")
        try:
            check_name(parts[0])
        except CheckpointError:
            raise BundleError(f"The bundle holds a run named '{parts[0][:40]}', which is not a valid run name; "
                              "nothing was imported.") from None
        if parts[1] in runs.setdefault(parts[0], {}):
            raise BundleError(f"The bundle holds {name} twice; nothing was imported.")
        runs[parts[0]][parts[1]] = info
    if manifest is None:
        raise BundleError("This zip is not a run bundle (it has no bundle.json); export the runs from the app "
                          "or with `python -m core.cli export`.")
    if manifest.file_size > MAX_JSON_BYTES:
        raise BundleError("The bundle's bundle.json is far too large; nothing was imported.")
    try:
        meta = json.loads(bundle.read(manifest).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, zipfile.BadZipFile):
        raise BundleError("The bundle's bundle.json is damaged; nothing was imported.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("runs"), list):
        raise BundleError("This zip is not a run bundle of this app; nothing was imported.")
    if meta.get("version") != VERSION:
        raise BundleError(f"The bundle is of version {meta.get('version')!r}, which this app cannot read; "
                          "nothing was imported.")
    names = meta["runs"]
    if not names or len(names) > MAX_RUNS or not all(isinstance(n, str) for n in names) \
            or sorted(set(names)) != sorted(runs):
        raise BundleError("The bundle's list of runs does not match the runs it holds; nothing was imported.")
    for name in names:
        missing = [f for f in REQUIRED_FILES if f not in runs[name]]
        if missing:
            raise BundleError(f"Run {name} in the bundle has no {missing[0]}; nothing was imported.")
    return names, runs


def _unpack(bundle: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path) -> None:
    """Copy one member, never more bytes than its header promised."""
    with bundle.open(info) as src, open(dest, "wb") as out:
        left = info.file_size
        while True:
            chunk = src.read(min(1 << 20, left + 1))
            if not chunk:
                break
            left -= len(chunk)
            if left < 0:
                raise BundleError(f"The bundle's {info.filename} holds more than it says; nothing was imported.")
            out.write(chunk)


def import_runs(root, source) -> list[ImportedRun]:
    """Check the bundle `source` (a path or a binary file) and add its runs to `root`. Either every
    run is imported or none is (BundleError / CheckpointError, one sentence)."""
    limit = max_bundle_bytes()
    size = _size_of(source)
    if size is not None and size > limit:
        raise BundleError(f"The bundle is larger than {limit >> 20} MB; export fewer runs, or ask the teacher "
                          f"to raise {MAX_BUNDLE_BYTES_ENV}.")
    root = Path(root)
    try:
        bundle = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise BundleError("This file is not a zip (or it is damaged); export runs again and import that file.") from None
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f"{_TMP_PREFIX}{secrets.token_hex(4)}"
    imported: list[ImportedRun] = []
    try:
        with bundle:
            names, runs = _check_members(bundle, limit)
            staging.mkdir()
            for name in names:
                (staging / name).mkdir()
                for file, info in runs[name].items():
                    try:
                        _unpack(bundle, info, staging / name / file)
                    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as exc:
                        if isinstance(exc, OSError) and exc.errno is not None:
                            raise CheckpointError(f"Could not unpack the bundle: {exc.strerror}.") from None
                        raise BundleError(f"The bundle's {info.filename} is damaged; nothing was imported.") from None
        for name in names:  # loaded like any run: weights_only, fitting the config, no code
            run = load_run(staging, name)
            if run.info.get("load_warnings"):
                raise BundleError(f"Run {name} in the bundle is damaged ({run.info['load_warnings'][0]}); "
                                  "nothing was imported.")
            if (staging / name / RESUME_FILE).is_file():
                load_resume(staging, name)
        for name in names:
            target = name
            while True:
                target = unique_run_name(root, target)
                try:
                    os.rename(staging / name, root / target)  # fails if a folder of that name appeared
                    break
                except OSError:
                    if not (root / target).exists():
                        raise
            imported.append(ImportedRun(name, target))
    except OSError as exc:
        raise CheckpointError(f"Could not import the bundle: {exc.strerror or exc}; check the checkpoints folder.") \
            from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return imported
