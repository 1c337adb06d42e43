"""Which saved runs are this browser's own: the runs of the jobs it started (the registry knows each
job's owner key) and the runs whose info.json records its owner key (core.serving.access.owner_key).
A student's current run defaults to their own newest one, never to the teacher's; the Runs page
filters by it."""
from __future__ import annotations

from core.serving.access import same_owner
from ui.owners import owner_id
from ui.state import get_registry


def my_run_names(runs: list[dict]) -> set[str]:
    """The names among `runs` (list_runs rows) that this browser made."""
    me = owner_id()
    names = {job.run_name for job in get_registry().summaries()
             if job.kind == "train" and job.run_name and same_owner(job.owner_key, me)}
    names |= {r["name"] for r in runs if same_owner(r.get("owner"), me)}
    return names & {r["name"] for r in runs}
