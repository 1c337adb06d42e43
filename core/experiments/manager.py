"""ExperimentManager: starts, stops, deletes and reports experiments, one driver thread
(core.experiments.driver) per running experiment; experiment_summary, what the CLI prints."""
from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from core.experiments.config import ExperimentConfig, expand_grid
from core.experiments.driver import POLL_SECONDS, ExperimentDriver, now_iso, new_variant
from core.experiments.store import (ACTIVE_STATUSES, ExperimentError, delete_experiment, list_records, load_record,
                                    reserve_experiment_name, save_record)
from core.jobs import JobPermissionError
from core.jobs.access import check_experiment_share
from core.jobs.status import ACTIVE as JOB_ACTIVE
from core.serving.access import same_owner


class ExperimentManager:
    """Starts, stops and reports experiments; one per registry (the app keeps it beside the
    registry in st.cache_resource). Every public method is safe from any thread."""

    def __init__(self, registry, root=None, poll_seconds: float = POLL_SECONDS):
        self.registry = registry
        self.root = registry.root if root is None else root
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._drivers: dict[str, ExperimentDriver] = {}

    def start(self, exp: ExperimentConfig, owner: str | None = None, teacher: bool = False) -> str:
        """Save and start `exp` (its name made unique among the saved experiments); returns the name.
        `owner` (a browser's id) owns its jobs too: only that owner, or the server, stops them.
        A student's experiment (not the teacher's) must fit the share of work one student may start
        at once (LimitError, one sentence)."""
        exp.check()
        if owner is not None and not teacher:
            check_experiment_share(exp, owner, self.registry.load_data)
        with self._lock:
            name = reserve_experiment_name(self.root, exp.name)
            exp = replace(exp, name=name)
            variants = [] if exp.search else [new_variant(i, f) for i, f in enumerate(expand_grid(exp))]
            record = {"name": name, "config": exp.to_dict(), "owner": owner, "status": "queued", "message": "",
                      "created": now_iso(), "started_at": None, "finished_at": None, "seconds": None,
                      "variants": variants, "best": None, "search": None}
            save_record(self.root, record)
            driver = ExperimentDriver(self, exp, record)
            self._drivers[name] = driver
        driver.thread.start()
        return name

    def stop(self, name: str, by: str | None = None) -> None:
        """Stop the whole experiment: queued variants are dropped, running ones stop after their
        current batch (and are saved with their best weights), finished ones are kept. `by`: who
        asks (an owner id; None is the server itself, which always may)."""
        with self._lock:
            driver = self._drivers.get(name)
        if driver is None or driver.done.is_set():
            return
        owner = driver.record.get("owner")  # the id it was started with, or its key once read back from disk
        if by is not None and owner is not None and by != owner and not same_owner(owner, by):
            raise JobPermissionError(f"Experiment {name} was started in another browser; only that browser "
                                  "or the teacher can stop it.")
        with driver.lock:
            driver.record["status"] = "stopping"
        driver.stop_event.set()

    def stop_owner(self, key: str | None) -> int:
        """Stop every running experiment of one student (by the owner key job summaries show), so
        none queues its next runs once the teacher has stopped that student's jobs; the teacher's
        action, with JobRegistry.stop_owner. Returns how many experiments were running."""
        return self._stop_where(lambda owner: owner is not None and key is not None
                                and (owner == key or same_owner(key, owner)))

    def stop_all(self) -> int:
        """Stop every running experiment (the teacher's action, with JobRegistry.stop_all)."""
        return self._stop_where(lambda owner: True)

    def _stop_where(self, chosen) -> int:
        with self._lock:
            # The record's owner is the id it was started with, or its key once read back from disk.
            names = [name for name, driver in self._drivers.items()
                     if not driver.done.is_set() and chosen(driver.record.get("owner"))]
        for name in names:
            self.stop(name)
        return len(names)

    def delete(self, name: str, by: str | None = None, teacher: bool = False) -> None:
        """Delete a finished experiment's record and study (its runs stay, like any run): only its
        owner or the teacher (OwnerError); a running one is stopped first (ExperimentError)."""
        with self._lock:
            driver = self._drivers.get(name)
            if driver is not None and not driver.done.is_set():
                raise ExperimentError(f"Experiment {name} is still running; stop it first, then delete it.")
            delete_experiment(self.root, name, by=by, teacher=teacher)
            self._drivers.pop(name, None)

    def resume_interrupted(self) -> list[str]:
        """After a server restart (the registry's restore() has run): continue every experiment
        whose record says it was still running and whose jobs came back with the restart (queued
        again, or saved while they trained); returns their names. An experiment whose jobs this
        registry does not know (e.g. run by a CLI on the same folder) is left alone."""
        resumed = []
        for record in list_records(self.root):
            if record.get("status") not in ACTIVE_STATUSES:
                continue
            active = [v["job"] for v in record.get("variants", []) if v.get("job") and v.get("status") in JOB_ACTIVE]
            if not active or not all(self.registry.known_from_restart(job) for job in active):
                continue
            with self._lock:
                if record["name"] in self._drivers:
                    continue
                try:
                    exp = ExperimentConfig.from_dict(record["config"])
                except (KeyError, TypeError, ValueError):
                    continue
                driver = ExperimentDriver(self, exp, record, attach=True)
                self._drivers[record["name"]] = driver
            driver.thread.start()
            resumed.append(record["name"])
        return resumed

    def is_running(self, name: str) -> bool:
        with self._lock:
            driver = self._drivers.get(name)
        return driver is not None and not driver.done.is_set()

    def record(self, name: str) -> dict:
        """The experiment's record: live from its driver, else from experiment.json (one that says
        it is running but has no driver in this process was cut off by a restart: "interrupted")."""
        with self._lock:
            driver = self._drivers.get(name)
        if driver is not None:
            return driver.snapshot()
        return _interrupted_if_orphaned(load_record(self.root, name))

    def records(self) -> list[dict]:
        """Every saved experiment, newest first (live records for those running here)."""
        out = []
        for record in list_records(self.root):
            with self._lock:
                driver = self._drivers.get(record["name"])
            out.append(driver.snapshot() if driver is not None else _interrupted_if_orphaned(record))
        return out

    def wait(self, name: str, timeout: float | None = None) -> dict:
        with self._lock:
            driver = self._drivers.get(name)
        if driver is not None:
            driver.done.wait(timeout)
        return self.record(name)


def _interrupted_if_orphaned(record: dict) -> dict:
    if record.get("status") in ACTIVE_STATUSES:
        record = dict(record, status="interrupted",
                      message="The server stopped while this experiment ran; its finished runs are kept.")
    return record


def experiment_summary(record: dict, root, load_data=None) -> dict:
    """What the CLI prints last: experiment, runs (run, factors, status, val_loss, test_mse, ...),
    best (run and value), seconds; a search adds trials, pruned, best_params and importances; an
    anomaly experiment adds each run's AUC (load_data(DataConfig) -> Dataset reads its test images)."""
    exp = ExperimentConfig.from_dict(record["config"])
    runs = [{"run": v.get("run"), "factors": v["factors"], "status": v["status"], "message": v.get("message", ""),
             "val_loss": v.get("val_loss"), "test_mse": v.get("test_mse"), "epochs": v.get("epochs_run", 0)}
            for v in record["variants"]]
    best = record.get("best") or None
    summary: dict[str, Any] = {"experiment": record["name"], "preset": exp.preset or None,
                               "status": record["status"], "message": record.get("message", ""), "runs": runs,
                               "best": {"run": best["run"], "value": best["value"]} if best else None,
                               "objective": exp.search.objective if exp.search else exp.objective,
                               "seconds": record.get("seconds")}
    if exp.search is not None:
        from core.experiments.search import importances, load_study

        for row, variant in zip(runs, record["variants"]):
            row.update(trial=variant.get("trial"), state=variant.get("trial_state"), value=variant.get("value"))
        search = record.get("search") or {}
        study = load_study(root, record["name"])
        found, why = importances(study) if study is not None else ({}, "The search has no study yet.")
        summary.update(trials=len(runs), pruned=search.get("pruned", 0), best_params=search.get("best_params"),
                       importances=found or None, importances_note=why or None)
    if exp.preset == "anomaly" and load_data is not None:
        from core.checkpoints import load_run
        from core.experiments.anomaly import anomaly_report

        for row in runs:
            if not row["run"]:
                continue
            run = load_run(root, row["run"])
            report = anomaly_report(run.model, load_data(run.config.data), run.config.data.exclude_classes)
            row["held_out"], row["auc"] = report.held_out, report.auc
    return summary
