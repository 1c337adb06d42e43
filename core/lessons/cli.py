"""The lesson commands of `python -m core.cli` (core.cli calls register() once):

    python -m core.cli lesson list
    python -m core.cli lesson run fashion-latent --epochs 2          # pre-train before class, or check a file
    python -m core.cli report --lesson fashion-latent --to report.html   # .html, .zip (Markdown + PNG), .ipynb
    python -m core.cli report --lesson fashion-latent --owner 3f2a9c1d --to anna.html   # a student's work
    python -m core.cli report --experiment latent-sizes --to latent.html
    python -m core.cli report --run digits-conv-small-z16 --to run.zip

Like the other commands: progress on stderr, one JSON object as the last line on stdout, a user's
mistake one line "error: <sentence>" (exit code 2).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TextIO


class LessonCliError(ValueError):
    """A mistake on the command line: one sentence (core.cli prints it as error: ...)."""


def register(commands) -> None:
    """Add `lesson` (list, run) and `report` to core.cli's sub-commands; each sets `handler`."""
    from core.checkpoints import DEFAULT_ROOT

    lesson = commands.add_parser("lesson", help="list the lessons or run one's steps",
                                 description="Lessons are Markdown files in lessons/ (and AE_LAB_LESSON_DIRS).")
    actions = lesson.add_subparsers(dest="lesson_command", metavar="{list,run}", required=True)
    listing = actions.add_parser("list", help="the lessons and the files that cannot be used")
    listing.set_defaults(handler=cmd_lesson_list)
    run = actions.add_parser("run", help="train every step's runs (to pre-train before class or check a lesson)",
                             description="Train every step's runs, one step after the other, as the Lessons page "
                                         "would; the runs and experiments appear in the app.")
    run.add_argument("name", help="the lesson's name (its file name without .md)")
    run.add_argument("--epochs", type=int, help="train every run for this many epochs instead of the lesson's")
    run.add_argument("--out", default=DEFAULT_ROOT, help=f"checkpoints folder (default {DEFAULT_ROOT})")
    run.set_defaults(handler=cmd_lesson_run)

    report = commands.add_parser("report", help="write the report of a lesson, an experiment or a run",
                                 description="The report as one self-contained .html, as Markdown + PNG in a .zip, "
                                             "or (a lesson) as a Jupyter notebook .ipynb that trains the runs again.")
    what = report.add_mutually_exclusive_group(required=True)
    what.add_argument("--lesson", metavar="NAME")
    what.add_argument("--experiment", metavar="NAME")
    what.add_argument("--run", metavar="NAME")
    report.add_argument("--owner", metavar="KEY", help="a lesson's student: their key (or its first 8+ characters) "
                                                       "from the hand-ins list; default: the runs of `lesson run`")
    report.add_argument("--out", default=DEFAULT_ROOT, help=f"checkpoints folder (default {DEFAULT_ROOT})")
    report.add_argument("--to", required=True, metavar="FILE", help="the file to write: .html, .zip or .ipynb")
    report.add_argument("--epochs", type=int, help=".ipynb: the notebook's EPOCHS (default: each step's own)")
    report.set_defaults(handler=cmd_report)


def _print_json(obj: dict, out: TextIO) -> None:
    print(json.dumps(obj), file=out, flush=True)


def find_lesson(name: str):
    from core.lessons import load_lessons

    lessons, problems = load_lessons()
    for lesson in lessons:
        if lesson.name == name:
            return lesson
    for problem in problems:
        if problem.name == name:
            raise LessonCliError(problem.message)
    raise LessonCliError(f"There is no lesson named {name}; `python -m core.cli lesson list` lists them.")


def cmd_lesson_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.lessons import load_lessons

    lessons, problems = load_lessons()
    width = max((len(lesson.name) for lesson in lessons), default=4)
    for lesson in lessons:
        print(f"{lesson.name.ljust(width)}  {len(lesson.steps):2d} steps  {lesson.title}", file=out)
    for problem in problems:
        print(problem.message, file=err)
    _print_json({"lessons": [{"name": lesson.name, "title": lesson.title, "steps": len(lesson.steps)}
                             for lesson in lessons],
                 "problems": [{"name": p.name, "message": p.message} for p in problems]}, out)
    return 0


def cmd_lesson_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.cli.experiments import _shared_loader  # every dataset read once, with the CLI's progress lines
    from core.experiments import ExperimentManager
    from core.jobs import JobRegistry, LocalRunner
    from core.lessons import lesson_data
    from core.lessons.runner import run_lesson

    if args.epochs is not None and args.epochs < 1:
        raise LessonCliError(f"Train for at least 1 epoch, not {args.epochs}.")
    lesson = find_lesson(args.name)
    load = _shared_loader(err)
    data = lesson_data(lesson, load)
    if data.note:
        print(data.note, file=err)
    registry = JobRegistry(root=args.out, max_concurrent=1, load_data=load, runner=LocalRunner())
    manager = ExperimentManager(registry, poll_seconds=0.2)
    started = time.perf_counter()
    try:
        steps = run_lesson(lesson, data, manager, args.epochs, on_line=lambda line: print(line, file=err, flush=True))
    finally:
        registry.runner.shutdown()
    _print_json({"lesson": lesson.name, "dataset": data.config.dataset, "fallback": data.fallback, "note": data.note,
                 "steps": steps, "seconds": round(time.perf_counter() - started, 2)}, out)
    return 0 if all(s["runs"] for s in steps) else 1


def _owner_key(root, lesson_name: str, owner: str | None) -> str:
    from core.lessons.store import CLI_KEY, lesson_folder

    if not owner:
        return CLI_KEY
    keys = [p.stem for p in lesson_folder(root, lesson_name).glob("*.json")] \
        if lesson_folder(root, lesson_name).is_dir() else []
    if len(owner) < 8:
        raise LessonCliError("Give at least the first 8 characters of the student's key (the hand-ins list shows it).")
    found = [k for k in keys if k.startswith(owner.lower())]
    if len(found) != 1:
        raise LessonCliError(f"No student of lesson {lesson_name} has the key {owner}; copy it from the hand-ins list."
                             if not found else f"Several students' keys start with {owner}; give more characters.")
    return found[0]


def cmd_report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.atomic import write_bytes
    from core.cli.experiments import _shared_loader  # every dataset read once, with the CLI's progress lines
    from core.reports import report_bytes, suffix_of

    target = Path(args.to)
    suffix = suffix_of(target)
    if target.exists():
        raise LessonCliError(f"{target} already exists; choose another --to or delete it first.")
    if suffix == ".ipynb" and not args.lesson:
        raise LessonCliError("A notebook is made of a lesson; give --lesson NAME, or write the report to .html or .zip.")
    if args.owner and not args.lesson:
        raise LessonCliError("--owner chooses a student's work on a lesson; give --lesson NAME too.")
    started = time.perf_counter()
    if suffix == ".ipynb":
        from core.reports.notebook import lesson_notebook, notebook_bytes

        lesson = find_lesson(args.lesson)
        data = notebook_bytes(lesson_notebook(lesson, lesson.path.read_text(encoding="utf-8"), args.epochs))
        summary = {"lesson": lesson.name}
    else:
        report = _build(args, _shared_loader(err))
        data = report_bytes(report, suffix)
        summary = {report.kind: report.name, "steps": len(report.steps), "runs": len(report.runs),
                   "figures": sum(len(s.figures) for s in report.steps)}
    try:
        write_bytes(target, data)
    except OSError as exc:
        raise LessonCliError(f"Could not write {target}: {exc.strerror or exc}.") from None
    _print_json({**summary, "report": str(target), "format": suffix[1:], "bytes": len(data),
                 "seconds": round(time.perf_counter() - started, 2)}, out)
    return 0


def _build(args: argparse.Namespace, load):
    from core.experiments import load_record
    from core.lessons import lesson_data
    from core.reports.report import experiment_report, lesson_report, run_report

    if args.experiment:
        return experiment_report(args.out, load_record(args.out, args.experiment), load)
    if args.run:
        return run_report(args.out, args.run, load)
    lesson = find_lesson(args.lesson)
    key = _owner_key(args.out, lesson.name, args.owner)
    return lesson_report(args.out, lesson, key, load, data_note=lesson_data(lesson, load).note)
