"""Running an experiment: a driver thread per experiment that queues its variants through the job
registry's public API (start, snapshot, stop, start_probe) and keeps experiment.json up to date.

A grid queues every variant at once (the registry runs `max_concurrent` of them, the rest wait).
A search keeps up to `max_concurrent` Optuna trials in flight: study.ask() -> a run, each finished
epoch's validation loss -> trial.report(), trial.should_prune() -> registry.stop(), and the run's
end -> study.tell(). Only the registry's public API is used, so experiments run wherever the
registry's runner puts the work.

After a server restart (core.jobs.restart) the registry queues the experiment's waiting jobs again
under their old ids, and the runs that were training were saved as stopped runs. The manager's
resume_interrupted() then gives each experiment that was still running a new driver that follows
the same jobs to the end: a variant whose run was saved by the shutdown ends as "stopped" with that
run (Resume on the Runs page continues it), a search asks for the trials it still lacks (trials in
flight at the restart are told by number, without pruning: their Trial objects died with the server).
"""
from __future__ import annotations

import copy
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from core.checkpoints import CheckpointError, run_summary
from core.config import finite_or_none as _finite
from core.experiments.config import ExperimentConfig, describe_factors, variant_config
from core.experiments.store import (ExperimentError, save_record)
from core.serving.limits import LimitError
from core.jobs.status import ACTIVE as JOB_ACTIVE  # statuses that still change (queued ... saving)

if TYPE_CHECKING:
    from core.experiments.manager import ExperimentManager

# A variant whose run is saved and whose probe classifier trains.
VARIANT_ACTIVE = JOB_ACTIVE | {"probing"}
POLL_SECONDS = 0.25


class _ServerStopping(Exception):
    """The registry is shutting down: the driver leaves its record as it is (still running), so
    the next server's resume_interrupted() continues the experiment."""


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def new_variant(index: int, factors: dict) -> dict:
    return {"index": index, "factors": dict(factors), "label": describe_factors(factors), "job": None,
            "probe_job": None, "run": None, "status": "queued", "message": "", "epoch": 0, "total_epochs": 0,
            "train_loss": None, "val_loss": None, "test_mse": None, "test_mae": None, "probe_accuracy": None,
            "epochs_run": 0, "seconds": None, "trial": None, "trial_state": None, "value": None}


def objective_value(variant: dict, objective: str) -> float | None:
    return _finite(variant.get(objective))


def best_variant(record: dict) -> dict | None:
    """The variant with the best objective value (the search's direction, else lowest loss /
    highest accuracy); None while no variant has one."""
    exp = ExperimentConfig.from_dict(record["config"])
    objective = exp.search.objective if exp.search else exp.objective
    maximize = (exp.search.resolved_direction() == "maximize") if exp.search else objective == "probe_accuracy"
    scored = [v for v in record["variants"] if v.get("run") and objective_value(v, objective) is not None
              and v.get("trial_state") in (None, "complete")]
    if not scored:
        return None
    pick = max if maximize else min
    return pick(scored, key=lambda v: objective_value(v, objective))


class ExperimentDriver:
    """Runs one experiment on its own daemon thread; its record changes only under `lock`."""

    def __init__(self, manager: "ExperimentManager", exp: ExperimentConfig, record: dict, attach: bool = False):
        self.manager = manager
        self.attach = attach  # continuing a record written by a server that stopped (resume_interrupted)
        self.registry = manager.registry
        self.root = manager.root
        self.exp = exp
        self.record = record
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"ae-lab-experiment-{exp.name}", daemon=True)

    def _owner(self) -> dict:
        """Whose the variants' jobs are: the id the experiment was started with, or, continued after
        a restart, the owner key its record kept (hashed again, it would be nobody's)."""
        owner = self.record.get("owner")
        return {"owner": None, "owner_key": owner} if self.attach else {"owner": owner}

    # -------------------------------------------------- record

    def snapshot(self) -> dict:
        with self.lock:
            return copy.deepcopy(self.record)

    def _save(self) -> None:
        # During a shutdown the registry marks its jobs stopped; written down, that would read as
        # the experiment's end. The next server continues from the last record saved before it.
        if getattr(self.registry, "shutting_down", False):
            raise _ServerStopping
        save_record(self.root, self.snapshot())

    def _set(self, **fields) -> None:
        with self.lock:
            self.record.update(fields)

    # -------------------------------------------------- thread

    def _run(self) -> None:
        started = time.time()
        if self.attach:
            started = self.record.get("started_at") or started
            if self.record.get("status") == "stopping":  # it was being stopped when the server went
                self.stop_event.set()
            else:
                self._set(status="running", message="")
        else:
            self._set(status="running", started_at=started)
        try:
            self._save()
            if self.exp.search is not None:
                self._run_search()
            else:
                self._run_grid()
            self._finish(started)
        except _ServerStopping:
            pass
        except Exception as exc:  # the record must end with a status the page can show, whatever happened
            self._stop_jobs()
            self._set(status="failed", message=f"The experiment failed: {_one_line(exc)}",
                      finished_at=time.time(), seconds=round(time.time() - started, 3))
            try:
                self._save()
            except ExperimentError:
                pass
        finally:
            self.done.set()

    def _finish(self, started: float) -> None:
        record = self.snapshot()
        variants = record["variants"]
        saved = sum(1 for v in variants if v.get("run"))
        failed = sum(1 for v in variants if v["status"] in ("failed", "diverged"))
        if self.stop_event.is_set():
            status, message = "stopped", f"Stopped; {saved} of {len(variants)} runs were saved."
        elif variants and saved == 0:
            status, message = "failed", "No run of this experiment finished; read the runs' messages below."
        else:
            status = "finished"
            message = f"{saved} run{'s' if saved != 1 else ''} saved"
            message += f", {failed} failed or diverged." if failed else "."
        best = best_variant(record)
        self._set(status=status, message=message, finished_at=time.time(), seconds=round(time.time() - started, 3),
                  best={"run": best["run"], "value": objective_value(best, self._objective()),
                        "label": best["label"]} if best else None)
        self._save()

    def _objective(self) -> str:
        return self.exp.search.objective if self.exp.search else self.exp.objective

    def _stop_jobs(self) -> None:
        for variant in self.snapshot()["variants"]:
            for key in ("job", "probe_job"):
                if variant.get(key) and variant["status"] in VARIANT_ACTIVE:
                    try:
                        self.registry.stop(variant[key])
                    except KeyError:
                        pass

    # -------------------------------------------------- one variant

    def _start_variant(self, variant: dict, extra_info: dict | None = None) -> None:
        cfg = variant_config(self.exp, variant["factors"], variant["index"])
        info = {"experiment": self.exp.name, "factors": variant["factors"], **(extra_info or {})}
        job_id = self.registry.start(cfg, info=info, **self._owner())
        with self.lock:
            variant.update(job=job_id, status="queued", total_epochs=cfg.train.epochs)

    def _poll_variant(self, variant: dict) -> bool:
        """Bring one variant up to date from its job(s); True once it has ended for good."""
        if variant["status"] == "probing":
            return self._poll_probe(variant)
        try:
            snap = self.registry.snapshot(variant["job"])
            if snap.status not in JOB_ACTIVE and getattr(self.registry, "shutting_down", False):
                raise _ServerStopping  # stopped by the shutdown: not an end to record (or tell Optuna)
        except KeyError:
            saved = self.registry.saved_at_restart(variant["job"])
            if saved is None:
                with self.lock:
                    variant.update(status="failed", message="Its job is gone (the server may have restarted).")
                return True
            self._read_run(variant, saved["run"])
            with self.lock:
                variant.update(status="stopped", message=f"The server restarted during this run; it was saved "
                               f"after epoch {saved['epoch']}; resume it to train on.")
            return True
        last = snap.history[-1] if snap.history else None
        with self.lock:
            variant.update(status=snap.status, epoch=snap.epoch, total_epochs=snap.total_epochs,
                           epochs_run=len(snap.history))
            if variant.get("trial_state") != "pruned":  # keep the sentence saying why it stopped
                variant["message"] = snap.message
            if last is not None:
                variant.update(train_loss=_finite(last.train_loss), val_loss=_finite(last.val_loss))
        if snap.status in JOB_ACTIVE:
            return False
        self._read_run(variant, snap.run_name)
        if snap.run_name and self._objective() == "probe_accuracy" and not self.stop_event.is_set():
            from core.analysis import ProbeConfig

            probe_id = self.registry.start_probe(snap.run_name, ProbeConfig())
            with self.lock:
                variant.update(probe_job=probe_id, status="probing", final_status=snap.status)
            return False
        return True

    def _poll_probe(self, variant: dict) -> bool:
        try:
            snap = self.registry.snapshot(variant["probe_job"])
        except KeyError:
            snap = None
            if self.attach and variant.get("run") and not variant.get("probe_restarted") \
                    and not self.stop_event.is_set():
                # The probe ran on the server that stopped (probes are not queued again): start it anew.
                from core.analysis import ProbeConfig

                probe_id = self.registry.start_probe(variant["run"], ProbeConfig())
                with self.lock:
                    variant.update(probe_job=probe_id, probe_restarted=True)
                return False
        if snap is not None and snap.status in JOB_ACTIVE:
            return False
        accuracy = getattr(snap.result, "accuracy", None) if snap is not None else None
        with self.lock:
            variant.update(status=variant.pop("final_status", "finished"), probe_accuracy=_finite(accuracy))
        return True

    def _read_run(self, variant: dict, run_name: str | None) -> None:
        """The saved run's best-epoch losses and test metrics (the snapshot has no test metrics)."""
        if not run_name:
            return
        try:
            row = run_summary(self.root, run_name)
        except CheckpointError:
            return
        with self.lock:
            variant.update(run=run_name, train_loss=_finite(row.get("train_loss")),
                           val_loss=_finite(row.get("val_loss")), test_mse=_finite(row.get("test_mse")),
                           test_mae=_finite(row.get("test_mae")), epochs_run=row.get("epochs_run") or 0,
                           seconds=_finite(row.get("seconds")))

    # -------------------------------------------------- grid

    def _run_grid(self) -> None:
        variants = self.record["variants"]
        # Queued as the student's share allows (core.jobs.access), the rest as earlier ones end.
        waiting = [v for v in variants if v["job"] is None and v["status"] == "queued"]
        pending = [v for v in variants if v["job"] and v["status"] in VARIANT_ACTIVE]
        stopped = False
        while pending or waiting:
            if self.stop_event.is_set():
                if not stopped:
                    self._stop_jobs()
                    stopped = True
                with self.lock:
                    for variant in waiting:
                        variant.update(status="stopped", message="Stopped before it was queued.")
                waiting = []
            started = self._queue_waiting(waiting)
            pending, waiting = pending + started, waiting[len(started):]
            pending = [v for v in pending if not self._poll_variant(v)]
            self._save()
            if pending or waiting:
                time.sleep(self.manager.poll_seconds)

    def _queue_waiting(self, waiting: list[dict]) -> list[dict]:
        """Start as many waiting variants as the owner may queue now; returns those started."""
        room = self.registry.room_for(**self._owner())
        started = []
        for variant in waiting if room is None else waiting[:room]:
            try:
                self._start_variant(variant)
            except LimitError:  # the student started another job meanwhile: the next poll tries again
                break
            started.append(variant)
        return started

    # -------------------------------------------------- search

    def _run_search(self) -> None:
        from core.experiments.search import open_study, suggest

        import optuna

        study = open_study(self.exp, self.root)
        search = self.exp.search
        in_flight: dict[int, tuple[Any, dict, bool]] = {}  # variant index -> (trial, variant, pruned)
        # After a restart: the trials still in flight are followed by number (an int for tell()).
        for variant in self.record["variants"]:
            if variant.get("trial_state") == "running" and variant.get("job"):
                in_flight[variant["index"]] = (variant["trial"], variant, False)
        asked = len(self.record["variants"])
        stopped = False
        while True:
            room = max(int(getattr(self.registry, "max_concurrent", 1)), 1)
            share = self.registry.room_for(**self._owner())  # the student's share of the queue
            if share is not None:
                room = min(room, len(in_flight) + share)
            while not self.stop_event.is_set() and asked < search.trials and len(in_flight) < room:
                trial = study.ask()
                params = suggest(trial, self.exp)
                variant = new_variant(asked, params)
                variant.update(trial=trial.number, trial_state="running")
                with self.lock:
                    self.record["variants"].append(variant)
                self._start_variant(variant, {"trial": trial.number})
                in_flight[variant["index"]] = (trial, variant, False)
                asked += 1
            if self.stop_event.is_set() and not stopped:
                self._stop_jobs()
                stopped = True
            for index, (trial, variant, pruned) in list(in_flight.items()):
                pruned = self._report_epochs(trial, variant, pruned, search.prune)
                in_flight[index] = (trial, variant, pruned)
                if not self._poll_variant(variant):
                    continue
                del in_flight[index]
                self._tell(study, trial, variant, pruned, optuna)
            self._update_search_summary(study)
            self._save()
            if not in_flight and (asked >= search.trials or self.stop_event.is_set()):
                break
            time.sleep(self.manager.poll_seconds)

    def _report_epochs(self, trial, variant: dict, pruned: bool, prune: bool) -> bool:
        """trial.report() each newly finished epoch's validation loss; stop the run once the pruner
        says so. Returns whether the trial is pruned."""
        if variant["status"] == "probing" or pruned or isinstance(trial, int):  # int: followed after a restart
            return pruned
        try:
            snap = self.registry.snapshot(variant["job"])
        except KeyError:
            return pruned
        for record in snap.history[variant.get("reported_epochs", 0):]:
            value = _finite(record.val_loss)
            with self.lock:
                variant["reported_epochs"] = record.epoch
            if value is None:
                continue
            trial.report(value, step=int(record.epoch))
            if prune and trial.should_prune():
                if snap.status in JOB_ACTIVE:
                    self.registry.stop(variant["job"])
                with self.lock:
                    variant.update(trial_state="pruned", message=f"Pruned after epoch {record.epoch}: its "
                                   "validation loss trailed the median of earlier trials.")
                return True
        return pruned

    def _tell(self, study, trial, variant: dict, pruned: bool, optuna) -> None:
        if variant.get("run") and not isinstance(trial, int):  # (a trial followed after a restart keeps
            trial.set_user_attr("run", variant["run"])          # its run in the experiment's record only)
        value = objective_value(variant, self._objective())
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            state = "pruned"
        elif variant["status"] in ("finished", "early_stopped") and value is not None:
            study.tell(trial, value)
            state = "complete"
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            state = "failed"
        with self.lock:
            variant.update(trial_state=state, value=value)

    def _update_search_summary(self, study) -> None:
        from core.experiments.search import best_trial

        best = best_trial(study)
        states = [v.get("trial_state") for v in self.record["variants"]]
        with self.lock:
            self.record["search"] = {
                "trials": len(states), "complete": states.count("complete"), "pruned": states.count("pruned"),
                "failed": states.count("failed"),
                "best_params": dict(best.params) if best else None, "best_value": best.value if best else None,
                "best_trial": best.number if best else None,
            }
