"""Background jobs: the registry (queue, limits, snapshots, saving) and the runners that do the work.

`core.jobs.registry` holds JobRegistry and JobSnapshot; `core.jobs.local` runs jobs in threads of
this process (the default). Import from `core.jobs`."""
from core.jobs.local import LocalRunner
from core.jobs.registry import (MAX_BATCH_LOSSES, MAX_JOBS_ENV, USER_ERRORS, JobPermissionError, JobRegistry,
                                JobSnapshot)

__all__ = ["JobPermissionError", "JobRegistry", "JobSnapshot", "LocalRunner", "MAX_BATCH_LOSSES", "MAX_JOBS_ENV", "USER_ERRORS"]
