"""Who may change a job or continue a run, and how much one student may ask of a shared server.

Ownership follows core.serving.access: a job records its owner's key (never the raw id); only that
owner, the teacher, or this process itself (`by` None: the CLI, a shutdown, an experiment's driver)
stops it or saves it again. A saved run records its owner's key in info.json ("owner"); only its
owner or the teacher resumes *into* it, anyone may resume a copy under a name of their own.

Shares (teacher-set, the teacher and the CLI exempt): at most AE_LAB_MAX_JOBS_PER_STUDENT jobs
queued or running per student, and at most AE_LAB_MAX_EXPERIMENT_IMAGES images trained per
experiment (every run's epochs × its training images, summed).
"""
from __future__ import annotations

import logging
import os

from core.logs import short_owner
from core.serving.access import OwnerError, may_change, owner_key
from core.serving.limits import LimitError

logger = logging.getLogger(__name__)

MAX_JOBS_PER_STUDENT_ENV = "AE_LAB_MAX_JOBS_PER_STUDENT"
DEFAULT_MAX_JOBS_PER_STUDENT = 4
MAX_EXPERIMENT_IMAGES_ENV = "AE_LAB_MAX_EXPERIMENT_IMAGES"
# 10 million images: a 9-run grid of 20 epochs on MNIST's 54,000 training images fits, a
# 144 × 500-epoch grid on the 8×8 digits (83 million) does not.
DEFAULT_MAX_EXPERIMENT_IMAGES = 10_000_000


class JobPermissionError(OwnerError):
    """Someone other than a job's owner (or the teacher) asked to stop it; one sentence."""


def key_of(owner: str | None) -> str | None:
    return owner_key(owner) if owner else None


def _whole_number_from_env(name: str, default: int) -> int | None:
    """The variable's whole number; 0 turns the limit off (None)."""
    text = os.environ.get(name, "").strip().replace("_", "")
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a whole number; set it to 1 or more (0: no limit).") from None
    return value if value > 0 else None


def max_jobs_per_student() -> int | None:
    """AE_LAB_MAX_JOBS_PER_STUDENT (default 4; 0: no limit)."""
    return _whole_number_from_env(MAX_JOBS_PER_STUDENT_ENV, DEFAULT_MAX_JOBS_PER_STUDENT)


def max_experiment_images() -> int | None:
    """AE_LAB_MAX_EXPERIMENT_IMAGES (default 10,000,000; 0: no limit)."""
    return _whole_number_from_env(MAX_EXPERIMENT_IMAGES_ENV, DEFAULT_MAX_EXPERIMENT_IMAGES)


def check_job_room(active: int, limit: int | None, key: str | None) -> None:
    """LimitError (one sentence) when a student who has `active` jobs queued or running may not add one."""
    if limit is not None and active >= limit:
        logger.info("refused a job of %s: %d jobs queued or running, the limit is %d", short_key(key), active, limit)
        raise LimitError(f"You already have {active} job{'s' if active != 1 else ''} queued or running, the most "
                         "one student may have at once on this server; wait for one to finish or stop one.")


def check_may_stop(name: str, recorded_key: str | None, by: str | None, teacher: bool = False,
                   action: str = "stop") -> None:
    """JobPermissionError unless `by` may stop (or save) the job `name` (its owner or the teacher)."""
    if not may_change(recorded_key, by, teacher):
        logger.info("refused to %s job %s for %s", action, name, short_owner(by))
        raise JobPermissionError(f"Only the person who started {name} (or the teacher) can {action} it.")


def check_may_resume_into(run_name: str, info: dict, by: str | None, teacher: bool = False) -> None:
    """OwnerError unless `by` may train more epochs into the saved run (its owner, or the teacher)."""
    recorded = info.get("owner") if isinstance(info.get("owner"), str) else None
    if not may_change(recorded, by, teacher):
        logger.info("refused to resume run %s into itself for %s", run_name, short_owner(by))
        raise OwnerError(f"Only the student who made run {run_name} (or the teacher) can train it further; "
                         "resume a copy under a new name of your own instead.")


def check_experiment_images(name: str, runs: int, images: int, limit: int | None, key: str | None) -> None:
    """LimitError when an experiment of `runs` runs would train `images` images in all (epochs × images)."""
    if limit is not None and images > limit:
        logger.info("refused experiment %s of %s: %d images in %d runs, the limit is %d",
                    name, short_key(key), images, runs, limit)
        raise LimitError(f"This experiment would train {images:,} images in all ({runs} run{'s' if runs != 1 else ''}"
                         f" × epochs × training images), above the {limit:,} one student may start at once on this "
                         "server; use fewer runs, fewer epochs or fewer images.")


def check_experiment_share(exp, owner: str | None, load_data) -> None:
    """LimitError when a student's experiment (a core.experiments.ExperimentConfig) would train more
    images than AE_LAB_MAX_EXPERIMENT_IMAGES: every run's epochs × its training images (a search:
    every trial at the base settings); load_data(DataConfig) gives the datasets (already loaded by
    the page that asks)."""
    from core.config import RunConfig
    from core.experiments.estimate import variant_configs

    limit = max_experiment_images()
    if limit is None:
        return
    configs = variant_configs(exp)
    train_images: dict[str, int] = {}
    total = 0
    for cfg in configs:
        key = RunConfig(data=cfg.data).to_json()
        if key not in train_images:
            train_images[key] = len(load_data(cfg.data).splits["train"])
        total += cfg.train.epochs * train_images[key]
    check_experiment_images(exp.name, len(configs), total, limit, key_of(owner))


def short_key(key: str | None) -> str:
    """How a log names an owner known only by its key (as core.logs.short_owner names an id)."""
    return key[:8] if key else "teacher/cli"
