"""The registry's restart side (core.jobs.restart has the files): once restore() ran, every change
of the queue is written to the restart file and each running job keeps a checkpoint every few
minutes; shutdown() saves the running jobs and says which runs it saved; restore() brings back
what the last server left, whether it stopped or was killed.

A mixin of JobRegistry: it uses the registry's lock, jobs, queue and running set.
"""
from __future__ import annotations

import logging
import threading
import time

from core.checkpoints import default_run_name, valid_run_name
from core.config import RunConfig
from core.jobs import restart
from core.jobs.access import short_key
from core.jobs.job import Job
from core.jobs.status import JobStatus
from core.serving.access import is_owner_key, owner_key

logger = logging.getLogger(__name__)


class RestartPersistence:
    def _init_restart(self) -> None:
        self._persisting = False  # set by restore(): the app's registry, not a script's or the CLI's
        self._persist_lock = threading.Lock()  # taken before the registry's lock
        self.checkpoint_every = restart.checkpoint_seconds()
        self._saved_at_shutdown: list[dict] = []
        # Set by restore(): what the last server saved, queued and ran, for the page.
        self.restart_note: dict | None = None

    # -------------------------------------------------- writing

    def _keep_checkpoint(self, job: Job, resume) -> None:
        """A running job's checkpoint (called on its thread between epochs)."""
        try:
            restart.write_checkpoint(self.root, job.id, resume)
        except (OSError, RuntimeError) as exc:  # training goes on; the last good checkpoint stays
            logger.warning("job %s: could not write its checkpoint: %s", job.id, exc)
        else:
            logger.debug("job %s: checkpoint at epoch %d", job.id, len(resume.history))

    def _continues_after_restart(self, job: Job) -> bool:
        """A train job the next server continues: running now, stopped by the shutdown before
        anything was saved, or trained but not saved (its save failed)."""
        if job.kind != "train" or job.id in self._queue:
            return False
        return (job.id in self._running or job.status == JobStatus.UNSAVED
                or (job.stopped_by_shutdown and job.run_name is None))

    def _restart_state(self) -> dict:
        """What the restart file says now; the caller holds the registry's lock."""
        queued = [self._jobs[job_id] for job_id in self._queue.order()]
        entries = [{**job.restart_entry(), "running": False} for job in queued if job.kind == "train"]
        entries += [{**job.restart_entry(), "running": True} for job in self._jobs.values()
                    if self._continues_after_restart(job)]
        return {"written": time.time(), "jobs": entries, "saved": list(self._saved_at_shutdown)}

    def _persist(self, force: bool = False) -> dict | None:
        """Write the restart file (atomically) when this registry persists; returns what was written."""
        if not (self._persisting or force):
            return None
        with self._persist_lock:
            with self._lock:
                state = self._restart_state()
            try:
                restart.write_state(self.root, state)
            except OSError as exc:  # the queue is still in memory; the next change tries again
                logger.warning("could not write the restart file: %s", exc)
        return state

    # -------------------------------------------------- shutdown

    @property
    def shutting_down(self) -> bool:
        """True once shutdown() has begun: the server is stopping (experiment drivers then stop
        writing, so the next server finds their experiments still running and continues them)."""
        return self._shutting_down

    def shutdown(self, timeout: float = 30.0) -> dict | None:
        """The server is stopping: write the queue to disk, stop the running jobs at the end of their
        current batch and wait until they have saved (a job gets `timeout` s to stop; a save in
        progress is always waited for), then write the file once more, naming the runs saved.
        Returns the state written (None when nothing ran, waited or was left unsaved)."""
        with self._lock:
            if self._shutting_down:
                return None
            self._shutting_down = True
            queued = [self._jobs[job_id] for job_id in self._queue.order() if self._jobs[job_id].kind == "train"]
            running = [self._jobs[job_id] for job_id in self._running if self._jobs[job_id].kind == "train"]
            unsaved = [job for job in self._jobs.values() if job.status == JobStatus.UNSAVED]
        if not queued and not running and not unsaved:
            self._persist()
            return None
        logger.info("shutting down: stopping %d running jobs, keeping %d queued", len(running), len(queued))
        self._persist(force=True)  # first: a second signal or a kill cannot lose the queue
        for job in queued:
            job.finish(JobStatus.STOPPED, "The server stopped; this job is queued again when it restarts.")
            job.done.set()
        for job in running:
            job.stopped_by_shutdown = True
            job.stop_event.set()
        deadline = time.monotonic() + timeout
        for job in running:
            while not job.done.wait(0.05):
                if time.monotonic() >= deadline and job.status != JobStatus.SAVING:
                    logger.warning("job %s did not stop within %g s; the next server continues it", job.id, timeout)
                    break
        for job in unsaved + [job for job in running if job.status == JobStatus.UNSAVED]:
            self.save_again(job.id)  # once more: the next server continues it from its checkpoint otherwise
        saved = [{"run": job.run_name, "epoch": len(job.history), "owner": job.owner_key, "id": job.id}
                 for job in running if job.done.is_set() and job.run_name and job.status != JobStatus.UNSAVED]
        with self._lock:
            self._saved_at_shutdown = saved
        state = self._persist(force=True)
        logger.info("shut down: %d runs saved, %d jobs for the next server", len(saved), len(state["jobs"]))
        return {**state, "complete": True}

    # -------------------------------------------------- restore

    def restore(self) -> dict | None:
        """Once, when the app starts: from now on this registry writes its queue whenever it
        changes and keeps checkpoints of its running jobs. Queues again what the last server left
        (same ids, owners and info, e.g. the experiment a job belongs to; a job that was running
        when the server was killed continues from its checkpoint) and removes leftover temporary
        folders. Sets and returns restart_note ({"saved": [{"run", "epoch", "owner", "id"}], "lost",
        "restored", "continued": [{"id", "name", "epoch"}], "restarted", "at"}: "id" is the job that
        was running when its run was saved) or None when the last server left nothing."""
        restart.clean_leftovers(self.root, restart.LEFTOVER_AGE_S)
        # A save killed just before this start left a folder too young to tell from a save in
        # progress in another process; look again once it is old enough.
        later = threading.Timer(restart.LEFTOVER_AGE_S + 5, restart.clean_leftovers,
                                args=(self.root, restart.LEFTOVER_AGE_S))
        later.daemon = True
        later.start()
        state = restart.read_state(self.root) or {}
        self._persisting = True
        entries = state.get("jobs") if "jobs" in state else state.get("queued")
        jobs = [job for job in (self._job_from_entry(e, state.get("version")) for e in entries or []) if job]
        saved = [s for s in state.get("saved") or [] if isinstance(s, dict) and isinstance(s.get("run"), str)
                 and isinstance(s.get("epoch"), int)]
        # A job killed just before its save's last rename is saved all the same: the clean-up puts
        # the run in place (once the staging folder is old enough to be no one else's).
        for job in [job for job in jobs if job.from_checkpoint]:
            epochs = restart.finished_save(self.root, job.new_run_name or job.resume_from)
            if epochs is not None:
                jobs.remove(job)
                saved.append({"run": job.new_run_name or job.resume_from, "epoch": epochs, "owner": job.owner_key,
                              "id": job.id})
        continued, restarted = [], 0
        was_running = [job for job in jobs if job.from_checkpoint]
        for job in was_running:  # its checkpoint says how far it got
            epochs = restart.checkpoint_epochs(self.root, job.id)
            job.from_checkpoint = epochs > 0
            if epochs:
                continued.append({"id": job.id, "name": job.name, "epoch": epochs})
            else:
                restarted += 1
        restart.remove_other_checkpoints(self.root, {job.id for job in jobs if job.from_checkpoint})
        # A save the kill cut short left its name reserved (an empty folder) and a half-written
        # restart file: give the name back to the job that continues, and remove the rest.
        restart.remove_killed_writes(self.root, [job.new_run_name for job in was_running if job.new_run_name])
        for job in sorted(jobs, key=lambda job: not job.from_checkpoint):  # continued ones first
            self._add(job, job_id=job.id)
        lost = state.get("lost") if isinstance(state.get("lost"), int) else 0
        self._persist()
        if not jobs and not saved and not lost:
            return None
        self.restart_note = {"saved": saved, "lost": lost, "restored": len(jobs) - len(continued) - restarted,
                             "continued": continued, "restarted": restarted, "at": time.time()}
        logger.info("restart: %s", restart.restart_message(self.restart_note))
        return self.restart_note

    def _job_from_entry(self, entry, version) -> Job | None:
        """A job from one restart-file entry; None (logged) for a damaged one: the others are still
        worth restoring. Version 1 files (before owners were hashed) kept raw owner ids."""
        try:
            cfg = RunConfig.from_dict(entry["config"])
            owner, resume_from, copy_to, job_id = (entry.get(k) for k in ("owner", "resume_from", "copy_to", "id"))
            if not all(v is None or isinstance(v, str) for v in (owner, resume_from, copy_to, job_id)):
                raise TypeError("owner, resume_from, copy_to and id are strings")
            if owner is not None and version == 1:
                owner = owner_key(owner)
            if owner is not None and not is_owner_key(owner):
                raise ValueError("owner is a key")
            info, base_epochs = entry.get("info") or {}, entry.get("base_epochs", 0)
            if not isinstance(info, dict) or not isinstance(base_epochs, int) or base_epochs < 0:
                raise TypeError("info is a dict, base_epochs a count")
            name = valid_run_name(str(entry.get("name") or cfg.name or default_run_name(cfg)))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            logger.warning("skipped a damaged job in the restart file: %s", exc)
            return None
        job = Job(name=name, kind="train", config=cfg, total_epochs=cfg.train.epochs, owner_key=owner,
                  resume_from=resume_from, copy_to=copy_to, base_epochs=base_epochs, info=info)
        job.id = job_id or ""
        job.from_checkpoint = bool(entry.get("running"))
        logger.debug("restoring job %s (%s of %s)", job.id, name, short_key(owner))
        return job

    # -------------------------------------------------- what the last server left

    def saved_at_restart(self, job_id: str) -> dict | None:
        """For a job that was running when the last server stopped: what its run was saved as
        ({"run", "epoch", "owner", "id"}, from restart_note); None for any other job."""
        for entry in (self.restart_note or {}).get("saved", []):
            if entry.get("id") == job_id:
                return entry
        return None

    def known_from_restart(self, job_id: str) -> bool:
        """Whether a job id came back with the last server's restart: queued again here, or saved
        while it ran. An experiment's driver continues only jobs this server knows."""
        if self.saved_at_restart(job_id) is not None:
            return True
        with self._lock:
            return job_id in self._jobs
