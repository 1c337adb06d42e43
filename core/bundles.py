"""Runs that travel: several saved runs as one .zip, and that zip checked and imported.

A bundle is a zip holding bundle.json ({"format": "autoencoder-lab-runs", "version": 1, "runs":
[names]}) and, per run, <name>/<file> for the files a run folder holds (config.json, weights.pt,
metrics.json, film.pt, info.json, resume.pt) and nothing else.

Import trusts nothing in it, and bounds the work before doing it:
- the archive (core.serving.zipsafe): size, entries, paths, links, encryption, what it unpacks
  to and its compression ratios, before anything is read;
- the layout: member names exactly <valid run name>/<known file>, each file within what a run's
  file of that kind may take (a 60 MB metrics.json is refused, not re-read on every page view);
- each run's config against the server's work limits (core.serving.limits) before its model
  is built, then the run loaded like any run (size-capped type-checked JSON, weights_only,
  weights that fit the config; resume.pt too).
Runs are unpacked into a hidden staging folder, each renamed onto a name it reserved first (a
taken name gives the next free one, said), and every run or none is imported: a failure
midway takes back the runs already placed.

Owners: a student importing (owner=their id) becomes the owner of the imported copies; the
teacher (teacher=True) or the CLI (owner=None) keeps the owners the bundle's runs recorded.
"""
from __future__ import annotations

import io
import json
import logging
import os
import secrets
import shutil
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from core.atomic import fsync_dir, json_dumps, write_file
from core.checkpoints import (CONFIG_FILE, FILM_FILE, INFO_FILE, METRICS_FILE, RESUME_FILE, RUN_FILES, WEIGHTS_FILE,
                              CheckpointError, check_name, load_resume, load_run, reserve_run_name)
from core.checkpoints.files import JSON_LIMITS, RunFileError, info_problem, read_config, read_metrics, read_run_json
from core.checkpoints.names import IMPORT_PREFIX, release_name
from core.logs import short_owner
from core.safejson import JsonFileError, megabytes, parse_json
from core.serving.access import owner_key
from core.serving.limits import LimitError, WorkLimits, check_batch, check_model, check_run
from core.serving.zipsafe import (NotAZip, ZipBounds, ZipProblem, check_archive, copy_member, open_archive, shown,
                                  source_size)

log = logging.getLogger(__name__)

MANIFEST = "bundle.json"
FORMAT = "autoencoder-lab-runs"
VERSION = 1
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS_FILE, INFO_FILE)
MAX_BUNDLE_BYTES_ENV = "AE_LAB_MAX_BUNDLE_MB"
DEFAULT_MAX_BUNDLE_MB = 512
MAX_RUNS = 200
MAX_MANIFEST_BYTES = 1 << 20
MAX_RATIO = 100  # uncompressed / compressed; tensors and JSON stay far below, zip bombs far above


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
            raise CheckpointError(f"There is no complete run named {name}; pick one of the saved runs.")
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


# ---------------------------------------------------------------- import: the archive

def member_limits(limits: WorkLimits, bundle_limit: int) -> dict[str, int]:
    """The most bytes each kind of run file may hold: JSON files what a real run writes, weights
    what the largest allowed model takes (float32, with its normalisation buffers), resume.pt
    those weights and an optimiser's two moments, the film what the whole bundle may hold."""
    weights = min(8 * limits.max_params + (1 << 20), bundle_limit)
    return {**JSON_LIMITS, WEIGHTS_FILE: weights, RESUME_FILE: min(3 * weights + (1 << 20), bundle_limit),
            FILM_FILE: bundle_limit}


def _layout(members, caps: dict[str, int]) -> tuple[zipfile.ZipInfo, dict[str, dict[str, zipfile.ZipInfo]]]:
    """(the manifest, run name -> file -> member): exactly <valid run name>/<known file>."""
    runs: dict[str, dict[str, zipfile.ZipInfo]] = {}
    manifest = None
    for info, parts in members:
        if parts == (MANIFEST,):
            manifest = info
            continue
        if len(parts) != 2 or parts[1] not in RUN_FILES:
            raise BundleError(f"The bundle holds {shown(info.filename)}, which is not part of a saved run (code and "
                              "pickles are never imported); nothing was imported.")
        try:
            check_name(parts[0])
        except CheckpointError:
            raise BundleError(f"The bundle holds a run named '{shown(parts[0])[:40]}', which is not a valid run "
                              "name; nothing was imported.") from None
        if info.file_size > caps[parts[1]]:
            raise BundleError(f"The bundle's {shown(info.filename)} unpacks to {megabytes(info.file_size)}, more than "
                              f"a run's {parts[1]} may ({megabytes(caps[parts[1]])}); nothing was imported.")
        if parts[1] in runs.setdefault(parts[0], {}):
            raise BundleError(f"The bundle holds {shown(info.filename)} twice; nothing was imported.")
        runs[parts[0]][parts[1]] = info
    if manifest is None:
        raise BundleError("This zip is not a run bundle (it has no bundle.json); import a .zip exported from "
                          "this app.")
    return manifest, runs


def _run_names(bundle: zipfile.ZipFile, manifest: zipfile.ZipInfo, runs: dict) -> list[str]:
    try:
        meta = parse_json(bundle.read(manifest), MAX_MANIFEST_BYTES)
    except JsonFileError as exc:
        raise BundleError(f"The bundle's bundle.json {exc.reason}; nothing was imported.") from None
    except (zipfile.BadZipFile, EOFError, RuntimeError, NotImplementedError):
        raise BundleError("The bundle's bundle.json is damaged; nothing was imported.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("runs"), list):
        raise BundleError("This zip is not a run bundle of this app; nothing was imported.")
    if meta.get("version") != VERSION:
        version = meta.get("version")
        shown_version = repr(version)[:20] if isinstance(version, (int, float, str)) else "unknown"
        raise BundleError(f"The bundle is of version {shown_version}, which this app cannot read; "
                          "nothing was imported.")
    names = meta["runs"]
    if not names or len(names) > MAX_RUNS or not all(isinstance(n, str) for n in names) \
            or sorted(set(names)) != sorted(runs):
        raise BundleError("The bundle's list of runs does not match the runs it holds; nothing was imported.")
    for name in names:
        missing = [f for f in REQUIRED_FILES if f not in runs[name]]
        if missing:
            raise BundleError(f"Run {name} in the bundle has no {missing[0]}; nothing was imported.")
    return list(dict.fromkeys(names))


def _unpack(bundle: zipfile.ZipFile, names: list[str], runs: dict, staging: Path, limit: int) -> None:
    left = limit
    staging.mkdir()
    for name in names:
        (staging / name).mkdir()
        for file, info in runs[name].items():
            left -= copy_member(bundle, info, staging / name / file, left)  # ZipProblem: said by import_runs


# ---------------------------------------------------------------- import: each run

def _check_run(staging: Path, name: str, limits: WorkLimits) -> None:
    """The run's files within their kinds, its config within the work limits (before any model
    is built), then the run loaded like any run."""
    try:
        info = read_run_json(staging / name, INFO_FILE)
        problem = info_problem(info)
        if problem is not None:
            raise RunFileError(problem)
        config = read_config(staging / name)
        if (staging / name / METRICS_FILE).is_file():
            read_metrics(staging / name)
    except RunFileError as exc:
        raise BundleError(f"Run {name} in the bundle is damaged ({exc.reason}); nothing was imported.") from None
    try:
        # Its epochs were trained elsewhere (resuming checks the epochs it adds): the rest must fit here.
        check_run(replace(config, train=replace(config.train, epochs=1)), limits)
        if config.model.in_channels and config.model.image_size:  # the shape its weights were made for
            check_model(config.model, limits)
            check_batch(config.model, config.train.batch_size, limits)
    except LimitError as exc:
        reason = str(exc).split(";")[0].rstrip(".")
        raise BundleError(f"Run {name} in the bundle is over this server's limits ({reason[:1].lower()}{reason[1:]}); "
                          "nothing was imported.") from None
    run = load_run(staging, name)  # weights_only, fitting the config, no code
    if run.info.get("load_warnings"):
        raise BundleError(f"Run {name} in the bundle is damaged ({run.info['load_warnings'][0]}); "
                          "nothing was imported.")
    if (staging / name / RESUME_FILE).is_file():
        load_resume(staging, name)


def _set_owner(folder: Path, owner: str) -> None:
    """A student's import: the copy is theirs (info.json was checked to be an object)."""
    info = read_run_json(folder, INFO_FILE)
    info["owner"] = owner_key(owner)
    write_file(folder / INFO_FILE, json_dumps(info).encode("utf-8"))


def _place(root: Path, staging: Path, names: list[str]) -> list[ImportedRun]:
    """Rename every staged run onto a name it reserved (never onto another save's reservation);
    on any failure the runs already placed go back to staging: every run or none."""
    placed: list[ImportedRun] = []
    try:
        for name in names:
            target = reserve_run_name(root, name, "next")
            try:
                os.rename(staging / name, root / target)
            except BaseException:
                release_name(root, target)
                raise
            placed.append(ImportedRun(name, target))
    except BaseException:
        for run in reversed(placed):
            try:
                os.rename(root / run.name, staging / run.name_in_bundle)
            except OSError as exc:
                log.error("import: could not take back run %s: %s", run.name, exc)
        raise
    fsync_dir(root)
    return placed


def import_runs(root, source, owner: str | None = None, teacher: bool = False,
                limits: WorkLimits | None = None) -> list[ImportedRun]:
    """Check the bundle `source` (a path or a binary file) and add its runs to `root`. Either every
    run is imported or none is (BundleError / CheckpointError, one sentence). owner: the student
    importing (their copies are theirs); teacher=True or owner=None keeps the bundle's owners.
    limits: the work limits its runs must fit (default: this server's, from the environment)."""
    limits = limits or WorkLimits.from_env()
    limit = max_bundle_bytes()
    size = source_size(source)
    who = "teacher" if teacher else short_owner(owner)
    if size is not None and size > limit:
        raise BundleError(f"The bundle is larger than {limit >> 20} MB; export fewer runs, or ask the teacher "
                          f"to raise {MAX_BUNDLE_BYTES_ENV}.")
    root = Path(root)
    staging = root / f"{IMPORT_PREFIX}{secrets.token_hex(4)}"
    bounds = ZipBounds(max_members=1 + MAX_RUNS * (len(RUN_FILES) + 1), max_total=limit, max_ratio=MAX_RATIO)
    try:
        bundle = open_archive(source, bounds.max_members)
        with bundle:
            members = check_archive(bundle, bounds, size)
            manifest, runs = _layout(members, member_limits(limits, limit))
            names = _run_names(bundle, manifest, runs)
            root.mkdir(parents=True, exist_ok=True)
            _unpack(bundle, names, runs, staging, limit)
        for name in names:
            _check_run(staging, name, limits)
            if owner is not None and not teacher:
                _set_owner(staging / name, owner)
        imported = _place(root, staging, names)
    except NotAZip:
        log.warning("import refused for %s: not a zip", who)
        raise BundleError("This file is not a zip (or it is damaged); export runs again and import that file.") \
            from None
    except ZipProblem as exc:
        log.warning("import refused for %s: %s", who, exc)
        raise BundleError(f"The bundle {exc.clause}; nothing was imported.") from None
    except (BundleError, CheckpointError) as exc:
        log.warning("import refused for %s: %s", who, exc)
        raise
    except OSError as exc:
        log.error("import failed for %s: %s", who, exc)
        raise CheckpointError(f"Could not import the bundle: {exc.strerror or 'disk error'}; ask the teacher to "
                              "check the checkpoints folder.") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("imported %s for %s", ", ".join(r.name for r in imported), who)
    return imported
