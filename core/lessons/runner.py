"""Running a lesson's steps: each step's run: becomes an experiment started as the student's own
(through the one ExperimentManager and JobRegistry, so owners, limits and the queue hold as on every
page), its name kept in the student's lesson state; a step that shows `classifier` also trains a
probe classifier on each of its runs, whose result is kept on disk for the page and the report.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core.atomic import write_json
from core.experiments import ExperimentConfig, ExperimentError, load_record, variant_config, expand_grid
from core.lessons.data import LessonData
from core.lessons.model import METRICS, Expectation, Lesson, Question, Step
from core.lessons.runspec import ParsedRun, parse_run, reproducing_command, step_experiment
from core.lessons.store import CLI_KEY, LESSONS_DIR, read_state, record_step, step_experiment_name, student_key

log = logging.getLogger(__name__)

PROBES_DIR = "probes"
ACTIVE = ("queued", "loading", "running", "stopping", "probing")
NOISY_LEVEL = 0.5  # the noise factor of the noisy_mse metric
NOISY_IMAGES = 500


# ---------------------------------------------------------------- planning and starting

def experiment_name(lesson: Lesson, step: Step) -> str:
    return f"{lesson.name[:44]}-s{step.number}"


def plan_step(lesson: Lesson, step: Step, data: LessonData, epochs: int | None = None
              ) -> tuple[ParsedRun, ExperimentConfig]:
    """The parsed run: and the experiment it becomes on this data (data-fitted epochs and batch
    size where the run: gives none; `epochs` overrides every run's)."""
    parsed = parse_run(step.run, data.config, data.options, name=experiment_name(lesson, step))
    return parsed, step_experiment(parsed, data.train_images, epochs)


def check_limits(exp: ExperimentConfig, limits) -> None:
    """Every variant against the server's limits before anything is queued (LimitError, one sentence)."""
    from core.serving.limits import check_run

    if limits is None:
        return
    configs = [exp.base] if exp.search else [variant_config(exp, f, i) for i, f in enumerate(expand_grid(exp))]
    for cfg in configs:
        check_run(cfg, limits)


def start_step(manager, lesson: Lesson, step: Step, data: LessonData, owner: str | None,
               limits=None, epochs: int | None = None) -> str:
    """Start the step's experiment as `owner`'s (None: the command line); returns its name."""
    _, exp = plan_step(lesson, step, data, epochs)
    check_limits(exp, limits)
    name = manager.start(exp, owner=owner)
    record_step(manager.root, lesson.name, student_key(owner), step.number, name)
    log.info("lesson %s step %d: experiment %s started", lesson.name, step.number, name)
    return name


def step_record(root, lesson: Lesson, step: Step, key: str, read: Callable[[str], dict] | None = None
                ) -> dict | None:
    """The experiment record whose runs the step shows (its own, or the step it uses), for the
    student `key`: theirs, else the one `lesson run` trained before class (its "owner" is None);
    None when neither ran (or the experiment is gone). `read`: how a record is read (the app: its
    ExperimentManager's live record; default: from disk)."""
    source = step.source
    if source is None:
        return None
    name = step_experiment_name(read_state(root, lesson.name, key), source)
    if not name and key != CLI_KEY:  # the runs `lesson run` trained before class (the record's owner is None)
        name = step_experiment_name(read_state(root, lesson.name, CLI_KEY), source)
    if not name:
        return None
    try:
        return (read or (lambda n: load_record(root, n)))(name)
    except ExperimentError:
        return None


def saved_variants(record: dict | None) -> list[dict]:
    return [v for v in (record or {}).get("variants", []) if v.get("run")]


def is_active(record: dict | None) -> bool:
    return bool(record) and record.get("status") in ("queued", "running", "stopping")


# ---------------------------------------------------------------- probes (the classifier view)

def _probe_path(root, run_name: str) -> Path:
    return Path(root) / LESSONS_DIR / PROBES_DIR / f"{run_name}.json"


def _run_stamp(root, run_name: str) -> float:
    info = Path(root) / run_name / "info.json"
    return info.stat().st_mtime if info.exists() else 0.0


def save_probe(root, run_name: str, result) -> dict:
    """Keep a probe's result (core.analysis.ProbeResult) for the run as it is now."""
    data = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(result).items()}
    data["run_stamp"] = _run_stamp(root, run_name)
    path = _probe_path(root, run_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, data)
    return data


def load_probe(root, run_name: str) -> dict | None:
    """The kept probe result of the run (None when there is none, or the run was saved again since)."""
    import json

    try:
        data = json.loads(_probe_path(root, run_name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("run_stamp") != _run_stamp(root, run_name):
        return None
    data["confusion"] = np.asarray(data.get("confusion", []))
    return data


def start_probes(registry, root, run_names: list[str], owner: str | None) -> dict[str, str]:
    """A probe job for each run that has no kept result yet: run name -> job id."""
    from core.analysis import ProbeConfig

    return {name: registry.start_probe(name, ProbeConfig(), owner=owner)
            for name in run_names if load_probe(root, name) is None}


def collect_probes(registry, root, jobs: dict[str, str]) -> bool:
    """Keep the results of the finished probe jobs; True once none is still running."""
    done = True
    for run_name, job_id in jobs.items():
        try:
            snap = registry.snapshot(job_id)
        except KeyError:
            continue
        if snap.status in ACTIVE:
            done = False
        elif snap.status == "finished" and snap.result is not None and load_probe(root, run_name) is None:
            save_probe(root, run_name, snap.result)
    return done


# ---------------------------------------------------------------- metrics and expected answers

def variant_rows(root, record: dict | None, need_noisy: bool = False, load=None) -> list[dict]:
    """One row per saved run of the record: label, run, factors and every metric (probe accuracy
    where a result is kept; noisy_mse computed when asked, which loads the model and its data)."""
    rows = []
    for v in saved_variants(record):
        train, val = v.get("train_loss"), v.get("val_loss")
        probe = load_probe(root, v["run"])
        row = {"label": v["label"], "run": v["run"], "factors": v.get("factors", {}), "status": v.get("status"),
               "test_mse": v.get("test_mse"), "test_mae": v.get("test_mae"), "val_loss": val, "train_loss": train,
               "gap": (val - train) if val is not None and train is not None else None,
               "seconds": v.get("seconds"), "epochs": v.get("epochs_run"),
               "probe_accuracy": probe["accuracy"] if probe else None, "noisy_mse": None}
        if need_noisy and load is not None:
            row["noisy_mse"] = noisy_mse(root, v["run"], load)
        rows.append(row)
    return rows


def noisy_mse(root, run_name: str, load) -> float | None:
    from core.analysis import noise_sweep
    from core.checkpoints import CheckpointError, load_run
    from core.data import DataError

    try:
        run = load_run(root, run_name)
        images, labels = load(run.config.data).split("test")
    except (CheckpointError, DataError):
        return None
    sweep = noise_sweep(run.model, images[:NOISY_IMAGES], labels[:NOISY_IMAGES], levels=[NOISY_LEVEL], seed=0)
    return float(sweep[0]["mse"])


def expected_answer(expect: Expectation, rows: list[dict]) -> tuple[str, str] | None:
    """(the answer the runs give, as text; the sentence saying why), or None while no run has the metric."""
    from core.experiments import format_value

    scored = [r for r in rows if r.get(expect.metric) is not None and math.isfinite(r[expect.metric])]
    if not scored:
        return None
    pick = min if expect.best == "lowest" else max
    best = pick(scored, key=lambda r: r[expect.metric])
    value = format_value(best["factors"].get(expect.factor)) if expect.factor else best["label"]
    return value, f"{best['label']} has the {expect.best} {METRICS[expect.metric]} ({best[expect.metric]:.4g})"


def matches(question: Question, answer: Any, expected: str) -> bool:
    if answer is None:
        return False
    if question.kind == "number":
        try:
            return math.isclose(float(answer), float(expected), rel_tol=1e-6, abs_tol=1e-9)
        except (TypeError, ValueError):
            return False
    return str(answer).strip().lower() == expected.strip().lower()


# ---------------------------------------------------------------- headless: the command line and notebooks

def run_lesson(lesson: Lesson, data: LessonData, manager, epochs: int | None = None,
               on_line: Callable[[str], None] = lambda line: None) -> list[dict]:
    """Every step's runs one step after the other (owner: the command line), waiting for each, and
    the classifiers of the steps that show them; returns one summary per step that trains."""
    summaries = []
    for step in lesson.steps:
        if step.run:
            summaries.append(run_step(lesson, step, data, manager, epochs, on_line))
        if "classifier" in step.show:
            record = step_record(manager.root, lesson, step, student_key(None), manager.record)
            run_probes(manager.registry, manager.root, [v["run"] for v in saved_variants(record)], on_line)
    return summaries


def run_step(lesson: Lesson, step: Step, data: LessonData, manager, epochs: int | None = None,
             on_line: Callable[[str], None] = lambda line: None) -> dict:
    parsed, exp = plan_step(lesson, step, data, epochs)
    started = time.perf_counter()
    on_line(f"step {step.number}: {step.title} ({len(expand_grid(exp)) if not exp.search else exp.search.trials} "
            f"runs, {exp.base.train.epochs} epochs each)")
    name = start_step(manager, lesson, step, data, None, epochs=epochs)
    record = manager.wait(name)
    for v in record["variants"]:
        on_line(f"  {v['label']}: {v['status']}" + (f", test MSE {v['test_mse']:.4f}" if v.get("test_mse") else ""))
    return {"step": step.number, "title": step.title, "experiment": name, "status": record["status"],
            "runs": [v["run"] for v in saved_variants(record)], "seconds": round(time.perf_counter() - started, 2),
            "command": reproducing_command(parsed, ExperimentConfig.from_dict(record["config"]))}


def run_probes(registry, root, run_names: list[str], on_line: Callable[[str], None] = lambda line: None) -> None:
    jobs = start_probes(registry, root, run_names, owner=None)
    for run_name, job_id in jobs.items():
        registry.wait(job_id)
        collect_probes(registry, root, {run_name: job_id})
        probe = load_probe(root, run_name)
        on_line(f"  classifier on {run_name}: " + (f"{probe['accuracy']:.1%}" if probe else "no result"))
