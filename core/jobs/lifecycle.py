"""A job's life on its own thread: load the data, check it against the limits, train (or train a
probe) through the runner, save through the one save policy (core.jobs.saving), end with a status
and one sentence whatever happened, and log each step for the teacher.

A save that fails (disk full, no permission) keeps the trained result in memory: the job ends as
JobStatus.UNSAVED, says what failed, and `save_again` tries once more when asked.
"""
from __future__ import annotations

import copy
import errno
import logging
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

from core.checkpoints import CheckpointError, recorded_owner
from core.data import DataError, fill_model_shape
from core.jobs import restart
from core.jobs.access import JobPermissionError, short_key
from core.jobs.job import Job
from core.jobs.saving import SavedRun, run_lock, save_result
from core.jobs.status import JobStatus
from core.serving.limits import check_batch, check_model, out_of_memory_message

logger = logging.getLogger(__name__)


class RunnerError(Exception):
    """A runner could not do a job's work (a cluster out of reach, a worker lost); one sentence."""


# Exceptions whose message is already one sentence for the user.
USER_ERRORS = (DataError, ValueError, CheckpointError, JobPermissionError, RunnerError)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def unsaved_message(name: str, exc: CheckpointError) -> str:
    """What the page says when a save failed: why, in words a student can act on (no server path)."""
    code = getattr(exc.__context__, "errno", None)
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        why = "the server's disk is full"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "the server may not write to its checkpoints folder"
    else:
        why = "the server could not write it"
    return (f"Could not save run {name} ({why}), so the trained model is kept in memory: ask the teacher to free "
            "some space, then press Save again.")


class JobLife:
    """Runs jobs to their end (one call of run() per job, on the job's thread)."""

    def __init__(self, root, runner, load_data, limits):
        self.root = root
        self.runner = runner
        self.load_data = load_data
        self.limits = limits

    def run(self, job: Job, on_done: Callable[[Job], None]) -> None:
        logger.info("job %s (%s %s of %s) started", job.id, job.kind, job.name, short_key(job.owner_key))
        what = "Training" if job.kind == "train" else "Training the classifier"
        try:
            self.train(job) if job.kind == "train" else self.probe(job)
        except USER_ERRORS as exc:
            logger.warning("job %s failed: %s", job.id, one_line(exc))
            job.finish(JobStatus.FAILED, one_line(exc))
        except (MemoryError, RuntimeError) as exc:  # torch.OutOfMemoryError is a RuntimeError
            oom = out_of_memory_message(exc, job.config.train.device)
            if oom is None:
                logger.exception("job %s failed unexpectedly", job.id)
            else:
                logger.warning("job %s ran out of memory: %s", job.id, one_line(exc))
            job.finish(JobStatus.FAILED, oom or f"{what} failed: {one_line(exc)}")
        except Exception as exc:  # the thread must end with a status the page can show, whatever happened
            logger.exception("job %s failed unexpectedly", job.id)
            job.finish(JobStatus.FAILED, f"{what} failed: {one_line(exc)}")
        finally:
            on_done(job)

    # -------------------------------------------------- training

    def _start_point(self, job: Job):
        """Where training starts: the job's crash checkpoint, else the run it resumes, else nothing."""
        resume = restart.read_checkpoint(self.root, job.id) if job.from_checkpoint else None
        if resume is not None:
            logger.info("job %s continues from its checkpoint at epoch %d", job.id, len(resume.history))
        elif job.resume_from is not None:
            if not self._run_unchanged(job):
                raise CheckpointError(f"Run {job.resume_from} was deleted or replaced since this job was queued, so "
                                      "it was not trained further; resume it again if it is still the run you meant.")
            from core.checkpoints import load_resume  # PyTorch: imported by the first job, not on import

            resume = load_resume(self.root, job.resume_from)
        if resume is not None:
            with job.lock:  # the live curves continue from the saved ones
                job.history = list(resume.history)
                job.batch_losses = list(resume.batch_losses)
                job.epoch = len(resume.history)
        return resume

    def train(self, job: Job) -> None:
        # Resuming into a run holds it from loading to saving: another process resuming it at the
        # same time would lose this job's epochs or its own.
        with run_lock(self.root, job.resume_from) if job.saves_into_run else nullcontext():
            cfg = copy.deepcopy(job.config)  # the trainer fills the model's shape into its own copy
            resume = self._start_point(job)
            dataset = self.load_data(cfg.data)
            fill_model_shape(cfg.model, dataset)
            if self.limits is not None:  # the exact data shape is known now
                check_model(cfg.model, self.limits)
                check_batch(cfg.model, cfg.train.batch_size, self.limits)
            job.set_config(copy.deepcopy(cfg))
            job.set_status(JobStatus.RUNNING)
            started = time.perf_counter()
            if resume is None:
                result = self.runner.train(cfg, dataset, job, job.stop_event)
            else:  # only runners that can resume are asked to
                result = self.runner.train(cfg, dataset, job, job.stop_event, resume=resume)
            info = {**job.info, "seconds": round(time.perf_counter() - started, 3)}
            if job.stopped_by_shutdown:
                info["stopped_by"] = "server shutdown"
            with job.lock:
                job.unsaved = (cfg, result, info)
            self.save(job)

    def save(self, job: Job) -> None:
        """Save the job's trained result (job.unsaved) and end the job; on a failed save it stays
        in memory and the job ends as UNSAVED with one sentence (save_again tries once more)."""
        cfg, result, info = job.unsaved
        job.set_status(JobStatus.SAVING)
        try:
            saved = self._save(job, cfg, result, info)
        except CheckpointError as exc:
            logger.warning("job %s could not be saved (kept in memory for Save again): %s", job.id, exc)
            job.finish(JobStatus.UNSAVED, unsaved_message(job.copy_to or job.resume_from or job.name, exc))
            return
        with job.lock:
            job.unsaved = None
        if saved.name is not None:
            logger.info("job %s ended %s after %d epochs; saved as run %s", job.id, result.status,
                        len(result.history), saved.name)
        else:
            logger.info("job %s ended %s after %d epochs; nothing to save", job.id, result.status,
                        len(result.history))
        job.finish(result.status, saved.message, run_name=saved.name)

    def _run_unchanged(self, job: Job) -> bool:
        """Whether the run a resume saves into still has the owner it had when the job was queued."""
        if not job.saves_into_run or job.run_owner is False:
            return True
        return recorded_owner(Path(self.root) / job.resume_from) == job.run_owner

    def _save(self, job: Job, cfg, result, info: dict) -> SavedRun:
        if job.saves_into_run and not self._run_unchanged(job):  # kept as a new run of the job's owner
            logger.warning("job %s: run %s was replaced while it trained; saved as a new run", job.id, job.resume_from)
            return save_result(self.root, cfg, result, name=job.resume_from, info=info, owner=job.owner,
                               owner_key=job.owner_key)
        if job.saves_into_run:
            return save_result(self.root, cfg, result, name=job.resume_from, overwrite=True,
                               base_epochs=job.base_epochs, info=info)
        if job.copy_to is not None:
            return save_result(self.root, cfg, result, name=job.copy_to, base_epochs=job.base_epochs, info=info,
                               owner=job.owner, owner_key=job.owner_key)
        # The name as typed (cfg.name): the message says when it was rewritten or taken.
        return save_result(self.root, cfg, result, name=job.config.name or job.name, named=bool(job.config.name),
                           info=info, owner=job.owner, owner_key=job.owner_key)

    def save_again(self, job: Job) -> None:
        """Try the failed save of an UNSAVED job once more (its run's lock held, for a resume)."""
        with run_lock(self.root, job.resume_from) if job.saves_into_run else nullcontext():
            self.save(job)

    # -------------------------------------------------- probes

    def probe(self, job: Job) -> None:
        from core.checkpoints import load_run

        run = load_run(self.root, job.run_name)
        job.set_config(run.config)
        dataset = self.load_data(run.config.data)
        job.set_status(JobStatus.RUNNING)
        result = self.runner.train_probe(run.model, dataset, job.probe_cfg, job.on_probe_epoch, job.stop_event)
        epochs = len(result.history)
        accuracy = f"the classifier labels {result.accuracy:.1%} of the test images correctly"
        if job.stop_event.is_set() and epochs < job.total_epochs:
            job.finish(JobStatus.STOPPED, f"Stopped after {epochs} of {job.total_epochs} epochs; {accuracy}.",
                       result=result)
        else:
            job.finish(JobStatus.FINISHED, f"Trained for {epochs} epoch{'s' if epochs != 1 else ''}; {accuracy}.",
                       result=result)
        logger.info("job %s (probe on %s) ended %s: %.3f", job.id, job.run_name, job.status, result.accuracy)
