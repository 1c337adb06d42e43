"""How long a class waits for each shipped lesson on this machine, and how long its report takes.

For each lesson: every step's runs with the lesson's own settings (no epochs override), one run at
a time as a CPU server queues them (AE_LAB_MAX_JOBS=1), on the data the lesson finds here (the
built-in fallback unless the named dataset is in data/ or --data-root's folder); the classifiers of
the steps that show them; then the report (figures computed, charts rendered by vl-convert, the
HTML written), timed on its own. Goals (issue 19): every lesson's runs within 10 minutes here, a
five-step lesson's report under 10 s. CPU seconds are printed beside wall seconds: on a machine
others share, wall time says as much about them as about this code.

    .venv/bin/python -m bench.lessons [NAME ...] [--threads 1] [--out bench/results-lessons.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from core.data import load_dataset
from core.experiments import ExperimentManager
from core.jobs import JobRegistry
from core.lessons import lesson_data, load_lessons
from core.lessons.parse import SHIPPED_DIR
from core.lessons.runner import run_lesson
from core.reports import render_pngs
from core.reports.html import report_html
from core.reports.report import lesson_report

GOAL_LESSON_S = 600.0
GOAL_REPORT_S = 10.0


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def bench_lesson(lesson, root: Path, load) -> dict:
    data = lesson_data(lesson, load)
    registry = JobRegistry(root=root, max_concurrent=1, load_data=load)
    manager = ExperimentManager(registry, poll_seconds=0.1)
    wall, cpu = _clock()
    steps = run_lesson(lesson, data, manager, on_line=lambda line: print(line, file=sys.stderr, flush=True))
    runs_wall, runs_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = _clock()
    report = lesson_report(root, lesson, "cli", load, data_note=data.note)
    figures_s = time.perf_counter() - wall
    pngs = render_pngs(report)
    html = report_html(report, pngs)
    report_wall, report_cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"lesson": lesson.name, "steps": len(lesson.steps), "dataset": data.config.dataset,
            "fallback": data.fallback, "runs": sum(len(s["runs"]) for s in steps),
            "runs_wall_s": round(runs_wall, 1), "runs_cpu_s": round(runs_cpu, 1),
            "per_step_s": {s["step"]: s["seconds"] for s in steps},
            "report_wall_s": round(report_wall, 2), "report_cpu_s": round(report_cpu, 2),
            "report_figures_s": round(figures_s, 2), "figures": len(pngs), "report_mb": round(len(html) / 2**20, 2),
            "runs_within_goal": runs_wall <= GOAL_LESSON_S,
            "report_within_goal": report_wall <= GOAL_REPORT_S}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="lessons to time (default: every shipped lesson)")
    parser.add_argument("--threads", type=int, help="PyTorch threads (default: PyTorch's own choice)")
    parser.add_argument("--out", default="bench/results-lessons.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    lessons, problems = load_lessons([SHIPPED_DIR])
    for problem in problems:
        print(problem.message, file=sys.stderr)
    chosen = [lesson for lesson in lessons if not args.names or lesson.name in args.names]
    cache: dict[str, object] = {}

    def load(cfg):
        key = json.dumps(cfg.__dict__, sort_keys=True, default=str)
        if key not in cache:
            cache[key] = load_dataset(cfg)
        return cache[key]

    results = []
    for lesson in chosen:
        with tempfile.TemporaryDirectory(prefix=f"bench-lesson-{lesson.name}-") as folder:
            result = bench_lesson(lesson, Path(folder), load)
        result["torch_threads"] = torch.get_num_threads()
        results.append(result)
        print(json.dumps(result), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    return 0 if all(r["runs_within_goal"] and r["report_within_goal"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
