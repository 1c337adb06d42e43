"""What a report says, before it is written as HTML, Markdown or a notebook: per step its text, its
questions with the student's answers and what the runs say, its figures and a table of its runs;
then an appendix with every run's full config, seed, device, the command that trains it again, and
the library versions. A report of a lesson, of one experiment, or of one run."""
from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from typing import TYPE_CHECKING, Any, Callable

from core.lessons.model import Lesson, Question, Step
# core.reports.figures (pandas, Altair, PyTorch) is imported where figures are drawn: the Lessons page
# imports this module for its hand-in and must not wait seconds before it shows the lesson.
if TYPE_CHECKING:
    from core.reports.figures import Figure

LIBRARIES = ("torch", "torchvision", "numpy", "scikit-learn", "pandas", "altair", "vl-convert-python", "optuna",
             "openTSNE")
# The views a report of one experiment shows, beyond runs and answer, per preset.
PRESET_VIEWS = {"denoising": ["noise-sweep"], "ae-vs-vae": ["generate"], "conditional": ["wrong-label"],
                "anomaly": ["anomaly"], "latent-sizes": ["latent-pca"], "size-dropout": [], "optimisers": []}


@dataclass
class QuestionReport:
    ask: str
    kind: str
    choices: list[str]
    answer: Any  # None: not answered
    expected: str | None = None  # what the runs say (None: the question expects nothing, or no run yet)
    why: str = ""
    matches: bool | None = None


@dataclass
class StepReport:
    number: int
    title: str
    text: str = ""
    look_for: str = ""
    questions: list[QuestionReport] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)  # one row per run: the settings that differ, metrics
    note: str = ""  # e.g. "not run yet"
    command: str = ""  # the command line that runs the step's experiment again


@dataclass
class RunAppendix:
    name: str
    config: str  # config.json as saved
    seed: int
    data_seed: int
    device: str
    created: str
    seconds: float | None
    command: str


@dataclass
class Report:
    kind: str  # lesson | experiment | run
    name: str
    title: str
    goal: str = ""
    intro: str = ""
    data_note: str = ""
    student: str = ""
    made: str = field(default_factory=lambda: datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"))
    steps: list[StepReport] = field(default_factory=list)
    runs: list[RunAppendix] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def runs_table(rows: list[dict]) -> list[dict]:
    """The runs of a step as table rows: its settings that differ, then test MSE/MAE, the
    classifier's accuracy where there is one, epochs and time."""
    from core.experiments import factor_label, format_value

    has_accuracy = any(r.get("probe_accuracy") is not None for r in rows)
    factors = list(dict.fromkeys(p for r in rows for p in r.get("factors", {})))
    table = []
    for r in rows:
        row = {"run": r["label"]}
        row.update({factor_label(p): format_value(r["factors"][p]) if p in r.get("factors", {}) else "-"
                    for p in factors})
        row.update({"test MSE": _fmt(r.get("test_mse")), "test MAE": _fmt(r.get("test_mae"))})
        if has_accuracy:
            acc = r.get("probe_accuracy")
            row["accuracy"] = "-" if acc is None else f"{acc:.1%}"
        row.update({"epochs": r.get("epochs") or "-",
                    "time (s)": "-" if r.get("seconds") is None else f"{r['seconds']:.1f}"})
        table.append(row)
    return table


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _appendix(root, names: list[str]) -> list[RunAppendix]:
    from core.checkpoints import CONFIG_FILE, CheckpointError, run_summary
    from core.config import RunConfig
    from core.reports.commands import train_command

    found = []
    for name in dict.fromkeys(names):
        try:
            text = (root / name / CONFIG_FILE).read_text(encoding="utf-8")
            cfg = RunConfig.from_json(text)
            row = run_summary(root, name)
        except (OSError, ValueError, CheckpointError):
            continue
        found.append(RunAppendix(name=name, config=text, seed=cfg.train.seed, data_seed=cfg.data.seed,
                                 device=str(row.get("device") or "-"), created=str(row.get("created") or ""),
                                 seconds=row.get("seconds"), command=train_command(cfg, name)))
    return found


# ---------------------------------------------------------------- a lesson

def lesson_report(root, lesson: Lesson, key: str, load: Callable, read: Callable[[str], dict] | None = None,
                  data_note: str = "") -> Report:
    """The report of `key`'s work on the lesson (key: an owner key, or "cli" for `lesson run`)."""
    from pathlib import Path

    from core.lessons.store import read_state

    root = Path(root)
    state = read_state(root, lesson.name, key)
    report = Report(kind="lesson", name=lesson.name, title=lesson.title, goal=lesson.goal, intro=lesson.intro,
                    data_note=data_note, student=state.get("student", ""), versions=versions())
    run_names: list[str] = []
    for step in lesson.steps:
        step_report, names = _lesson_step(root, lesson, step, key, state, load, read)
        report.steps.append(step_report)
        run_names += names
    report.runs = _appendix(root, run_names)
    return report


def _lesson_step(root, lesson: Lesson, step: Step, key: str, state: dict, load, read) -> tuple[StepReport, list]:
    from core.checkpoints import CheckpointError
    from core.data import DataError
    from core.lessons.runner import is_active, step_record, variant_rows
    from core.lessons.store import answer_value

    out = StepReport(number=step.number, title=step.title, text=step.text, look_for=step.look_for)
    record = step_record(root, lesson, step, key, read)
    noisy = any(q.expect and q.expect.metric == "noisy_mse" for q in step.questions)
    rows = variant_rows(root, record, need_noisy=noisy, load=load)
    if step.source is not None and record is None:
        out.note = (f"Step {step.source} was not run, so there are no runs to show." if step.source != step.number
                    else "This step was not run, so there are no runs to show.")
    elif record is not None and record.get("owner") is None and key != "cli":
        out.note = "These runs were trained by the teacher before class (lesson run), not by the student."
    elif is_active(record):
        out.note = "This step's runs were still training when the report was made; it shows those saved so far."
    if rows:
        out.table = runs_table(rows)
        out.command = _step_command(lesson, step, record)
        try:
            from core.reports.figures import StepRuns, step_figures

            out.figures = step_figures(StepRuns(root, rows, load, record), step.show, prefix=f"s{step.number}-")
        except (CheckpointError, DataError, ValueError) as exc:  # e.g. a run deleted since: the rest still reports
            out.note = f"The figures of this step could not be drawn: {' '.join(str(exc).split())}"
    for question in step.questions:
        out.questions.append(_question(question, answer_value(state, question), rows))
    return out, [r["run"] for r in rows]


def _question(question: Question, answer: Any, rows: list[dict]) -> QuestionReport:
    from core.lessons.runner import expected_answer, matches

    out = QuestionReport(ask=question.ask, kind=question.kind, choices=question.choices, answer=answer)
    if question.expect is not None:
        found = expected_answer(question.expect, rows)
        if found is not None:
            out.expected, out.why = found
            out.matches = matches(question, answer, out.expected) if answer is not None else None
    return out


def _step_command(lesson: Lesson, step: Step, record: dict | None) -> str:
    from core.experiments import ExperimentConfig
    from core.lessons.runspec import RunSyntaxError, parse_run, reproducing_command

    source = lesson.step(step.source) if step.source else None
    if record is None or source is None or not source.run:
        return ""
    exp = ExperimentConfig.from_dict(record["config"])
    data = exp.base.data
    options = lesson.fallback_data if data.dataset == lesson.fallback and lesson.dataset != lesson.fallback \
        else lesson.data
    try:
        return reproducing_command(parse_run(source.run, data, options, name=exp.name), exp)
    except (RunSyntaxError, ValueError):  # the lesson file changed since the run
        return ""


# ---------------------------------------------------------------- one experiment, one run

def experiment_report(root, record: dict, load: Callable) -> Report:
    """The report of one experiment: its runs compared, its answer view and its preset's views."""
    from pathlib import Path

    from core.experiments import ExperimentConfig
    from core.lessons.runner import variant_rows
    from core.reports.figures import StepRuns, step_figures

    root = Path(root)
    exp = ExperimentConfig.from_dict(record["config"])
    rows = variant_rows(root, record)
    views = ["runs", "answer", "reconstructions", *PRESET_VIEWS.get(exp.preset, [])]
    step = StepReport(number=1, title=exp.question or f"Experiment {record['name']}", table=runs_table(rows),
                      figures=step_figures(StepRuns(root, rows, load, record), views, prefix="s1-"))
    return Report(kind="experiment", name=record["name"], title=f"Experiment {record['name']}",
                  goal=exp.question, steps=[step], runs=_appendix(root, [r["run"] for r in rows]), versions=versions())


def run_report(root, name: str, load: Callable) -> Report:
    """The report of one saved run: its curves, reconstructions, codes and samples."""
    from pathlib import Path

    from core.checkpoints import run_summary
    from core.reports.figures import StepRuns, step_figures

    root = Path(root)
    summary = run_summary(root, name)
    row = {"label": name, "run": name, "factors": {}, **{k: summary.get(k) for k in
                                                          ("test_mse", "test_mae", "val_loss", "train_loss", "seconds")},
           "epochs": summary.get("epochs_run"), "probe_accuracy": None}
    views = ["runs", "reconstructions", "latent-pca", "generate"]
    step = StepReport(number=1, title=f"Run {name}", table=runs_table([row]),
                      figures=step_figures(StepRuns(root, [row], load), views, prefix="s1-"))
    return Report(kind="run", name=name, title=f"Run {name}", steps=[step], runs=_appendix(root, [name]),
                  versions=versions())
