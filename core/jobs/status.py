"""A job's status: one enum instead of bare strings spread over the registry, the driver and the pages.

A `str` enum, so a status compares equal to its text ("running"), goes into JSON as that text and
reads back with `JobStatus(text)`."""
from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    QUEUED = "queued"
    LOADING = "loading"
    RUNNING = "running"
    SAVING = "saving"
    FINISHED = "finished"
    STOPPED = "stopped"
    EARLY_STOPPED = "early_stopped"
    DIVERGED = "diverged"
    FAILED = "failed"
    UNSAVED = "unsaved"  # trained, but its save failed: the result is kept in memory for Save again

    def __str__(self) -> str:  # f"{status}" gives "running", not "JobStatus.RUNNING"
        return self.value

    @property
    def active(self) -> bool:
        """Still waiting or working (its run is not saved yet)."""
        return self in ACTIVE

    @property
    def trained(self) -> bool:
        """Ended with a result worth keeping (its run was saved, or is waiting for Save again)."""
        return self in (JobStatus.FINISHED, JobStatus.STOPPED, JobStatus.EARLY_STOPPED, JobStatus.DIVERGED,
                        JobStatus.UNSAVED)


ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.LOADING, JobStatus.RUNNING, JobStatus.SAVING})
ENDED = frozenset(set(JobStatus) - ACTIVE)
