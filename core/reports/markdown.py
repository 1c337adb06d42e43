"""A report as Markdown with its figures as PNG files, in one zip:

    <name>/report.md
    <name>/figures/s1-runs-1.png ...

Lesson text goes in as the teacher wrote it (it was checked when the lesson was read); a student's
answers go in fenced blocks, so whatever they typed is shown as text by any Markdown viewer."""
from __future__ import annotations

import io
import re
import zipfile

from core.reports.report import QuestionReport, Report, StepReport


def _fence(text) -> str:
    text = "" if text is None else str(text)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _inline(text) -> str:
    """Text from settings or names inside a Markdown line: Markdown's special characters escaped."""
    return re.sub(r"([\\`*_{}\[\]()<>#+!|])", r"\\\1", " ".join(str(text or "").split()))


def report_markdown(report: Report) -> str:
    lines = [f"# {report.title}", ""]
    if report.goal:
        lines += [f"*{report.goal}*", ""]
    if report.student:
        lines += [f"Handed in by {_inline(report.student)}.", ""]
    lines += [f"Report made {report.made[:16].replace('T', ' ')} by Autoencoder Lab.", ""]
    if report.data_note:
        lines += [f"> {report.data_note}", ""]
    if report.intro:
        lines += [report.intro, ""]
    for step in report.steps:
        lines += _step(step)
    lines += ["## Appendix: every run", ""]
    for run in report.runs:
        seconds = "-" if run.seconds is None else f"{run.seconds:.1f} s"
        lines += [f"### {_inline(run.name)}", "",
                  f"Seed {run.seed} (data split seed {run.data_seed}) · {_inline(run.device)} · {seconds} · "
                  f"{run.created}", "", "```sh", run.command, "```", "", "```json", run.config.strip(), "```", ""]
    lines += ["### Library versions", "", "| library | version |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in report.versions.items()]
    return "\n".join(lines) + "\n"


def _step(step: StepReport) -> list[str]:
    lines = [f"## {step.number}. {step.title}", ""]
    if step.text:
        lines += [step.text, ""]
    if step.look_for:
        lines += [f"**What to look for:** {step.look_for}", ""]
    if step.note:
        lines += [f"> {step.note}", ""]
    for n, question in enumerate(step.questions, start=1):
        lines += _question(n, question)
    for figure in step.figures:
        if figure.kind != "note":
            lines += [f"![{_inline(figure.title)}](figures/{figure.key}.png)", ""]
        lines += [f"*{_inline(figure.title)}.* {_inline(figure.caption)}".rstrip(), ""]
    if step.table:
        columns = list(dict.fromkeys(c for row in step.table for c in row))
        lines += ["| " + " | ".join(_inline(c) for c in columns) + " |", "|" + " --- |" * len(columns)]
        lines += ["| " + " | ".join(_inline(row.get(c, "")) for c in columns) + " |" for row in step.table]
        lines.append("")
    if step.command:
        lines += ["The command line that runs this step's experiment again:", "", "```sh", step.command, "```", ""]
    return lines


def _question(n: int, q: QuestionReport) -> list[str]:
    lines = [f"### Question {n}", "", q.ask, ""]
    if q.choices:
        lines += ["Choices: " + ", ".join(_inline(c) for c in q.choices), ""]
    lines += ["**Answer:**", "", _fence(q.answer if q.answer not in (None, "") else "(not answered)"), ""]
    if q.expected is not None:
        verdict = "" if q.matches is None else " ✓ matches your runs." if q.matches else " ✗ does not match your runs."
        lines += [f"Your runs say **{_inline(q.expected)}**: {_inline(q.why)}.{verdict}", ""]
    return lines


def report_zip(report: Report, pngs: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{report.name}/report.md", report_markdown(report))
        for key, png in pngs.items():
            archive.writestr(f"{report.name}/figures/{key}.png", png)
    return buffer.getvalue()
