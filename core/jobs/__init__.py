"""Background jobs: the registry (queue, limits, snapshots, saving) and the runners that do the work.

`core.jobs.registry` holds JobRegistry; its parts each do one thing: `scheduler` (the fair queue),
`job` (one job's live state, JobSnapshot and JobSummary), `lifecycle` (a job's life on its thread),
`saving` (the save policy the CLI shares), `restart` and `persistence` (surviving a restart or a
kill), `access` (owners and each student's share), `status` (JobStatus). `core.jobs.local` runs jobs
in threads of this process (the default); `core.jobs.ray_runner` sends them to a Ray cluster
(imported only when asked for: `runner_from_address`). Import from `core.jobs`."""
from core.jobs.access import JobPermissionError
from core.jobs.job import MAX_BATCH_LOSSES, JobSnapshot, JobSummary
from core.jobs.lifecycle import USER_ERRORS, RunnerError
from core.jobs.local import LocalRunner
from core.jobs.registry import MAX_JOBS_ENV, JobRegistry
from core.jobs.status import JobStatus

__all__ = ["JobPermissionError", "JobRegistry", "JobSnapshot", "JobStatus", "JobSummary", "LocalRunner",
           "MAX_BATCH_LOSSES", "MAX_JOBS_ENV", "USER_ERRORS", "RunnerError", "runner_from_address"]


def runner_from_address(address: str | None):
    """(runner, fallback sentence or None) for an AE_LAB_RAY_ADDRESS / --ray value; Ray is imported
    only for a non-empty address (see core.jobs.ray_runner.runner_from_address)."""
    if not (address or "").strip():
        return LocalRunner(), None
    from core.jobs.ray_runner import runner_from_address as ray_runner_from_address

    return ray_runner_from_address(address)
