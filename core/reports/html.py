"""A report as ONE self-contained HTML file: every figure a PNG inside it (data: URLs), the styles
inline, nothing fetched. Lesson text is Markdown rendered by markdown-it-py with raw HTML escaped,
images dropped and links only to http(s)/mailto; a student's answers and names are escaped text.
A Content-Security-Policy forbids scripts and any request, as a second guard."""
from __future__ import annotations

import base64
import html

from markdown_it import MarkdownIt

from core.reports.report import QuestionReport, Report, StepReport

_SAFE_SCHEMES = ("http://", "https://", "mailto:")
_MD = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]).disable("image")
_MD.validateLink = lambda url: url.strip().lower().startswith(_SAFE_SCHEMES)

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1000px; margin: 2rem auto;
       padding: 0 1rem; color: #1a1a1a; line-height: 1.5; }
h1 { margin-bottom: 0.2rem; } .goal { font-size: 1.15rem; color: #333; } .meta { color: #555; font-size: 0.9rem; }
.note { background: #fff4d6; border-left: 4px solid #e69f00; padding: 0.5rem 0.8rem; }
section.step { border-top: 2px solid #ddd; margin-top: 2rem; padding-top: 0.5rem; }
.look { background: #e8f1f8; border-left: 4px solid #0072b2; padding: 0.5rem 0.8rem; }
.question { background: #f7f7f7; border-radius: 6px; padding: 0.6rem 1rem; margin: 1rem 0; }
.answer { white-space: pre-wrap; background: white; border: 1px solid #ccc; border-radius: 4px; padding: 0.4rem 0.6rem; }
.unanswered { color: #888; font-style: italic; }
.match { color: #00754a; font-weight: 600; } .nomatch { color: #b34700; font-weight: 600; }
figure { margin: 1.6rem 0; } figure h4 { margin: 0 0 0.4rem; } figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.92rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; } th { background: #f0f0f0; }
pre, code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.85rem; }
pre { background: #f6f6f6; padding: 0.6rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
"""


def markdown_html(text: str) -> str:
    return _MD.render(text or "")


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def report_html(report: Report, pngs: dict[str, bytes]) -> str:
    """The whole report; `pngs`: each figure's PNG by its key (core.reports.render_pngs)."""
    parts = [f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
             f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
             f'<meta name="viewport" content="width=device-width, initial-scale=1">'
             f"<title>{esc(report.title)}</title><style>{STYLE}</style></head><body>",
             f"<header><h1>{esc(report.title)}</h1>"]
    if report.goal:
        parts.append(f'<p class="goal">{esc(report.goal)}</p>')
    who = f"Handed in by {esc(report.student)} · " if report.student else ""
    parts.append(f'<p class="meta">{who}report made {esc(report.made[:16].replace("T", " "))} by Autoencoder Lab</p>')
    if report.data_note:
        parts.append(f'<p class="note">{esc(report.data_note)}</p>')
    parts.append("</header>")
    if report.intro:
        parts.append(f'<section class="intro">{markdown_html(report.intro)}</section>')
    parts += [_step(step, pngs) for step in report.steps]
    parts.append(_appendix(report))
    parts.append("</body></html>")
    return "\n".join(parts)


def _step(step: StepReport, pngs: dict[str, bytes]) -> str:
    parts = [f'<section class="step" id="step-{step.number}"><h2>{step.number}. {esc(step.title)}</h2>',
             markdown_html(step.text)]
    if step.look_for:
        parts.append(f'<div class="look"><strong>What to look for:</strong> {markdown_html(step.look_for)}</div>')
    if step.note:
        parts.append(f'<p class="note">{esc(step.note)}</p>')
    for n, question in enumerate(step.questions, start=1):
        parts.append(_question(n, question))
    for figure in step.figures:
        png = pngs.get(figure.key)
        parts.append(f'<figure id="{esc(figure.key)}"><h4>{esc(figure.title)}</h4>')
        if png:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<img alt="{esc(figure.title)}" src="data:image/png;base64,{data}">')
        if figure.caption:
            parts.append(f"<figcaption>{esc(figure.caption)}</figcaption>")
        parts.append("</figure>")
    if step.table:
        parts.append(_table(step.table))
    if step.command:
        parts.append(f"<p>The command line that runs this step's experiment again:</p><pre>{esc(step.command)}</pre>")
    parts.append("</section>")
    return "\n".join(parts)


def _question(n: int, q: QuestionReport) -> str:
    answer = (f'<div class="answer">{esc(q.answer)}</div>' if q.answer not in (None, "")
              else '<div class="answer unanswered">not answered</div>')
    choices = f'<p class="meta">Choices: {esc(", ".join(q.choices))}</p>' if q.choices else ""
    verdict = ""
    if q.expected is not None:
        mark = ("" if q.matches is None else ' <span class="match">✓ matches your runs</span>' if q.matches
                else ' <span class="nomatch">✗ does not match your runs</span>')
        verdict = f'<p>Your runs say <strong>{esc(q.expected)}</strong>: {esc(q.why)}.{mark}</p>'
    return (f'<div class="question"><h3>Question {n}</h3>{markdown_html(q.ask)}{choices}'
            f"<p><strong>Answer:</strong></p>{answer}{verdict}</div>")


def _table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(c for row in rows for c in row))
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(row.get(c, ''))}</td>" for c in columns) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _appendix(report: Report) -> str:
    parts = ['<section class="step" id="appendix"><h2>Appendix: every run</h2>',
             "<p>Each run's full settings (config.json), seeds, the device it trained on, and the command line that "
             "trains it again.</p>"]
    for run in report.runs:
        seconds = "-" if run.seconds is None else f"{run.seconds:.1f} s"
        parts.append(f"<details><summary><code>{esc(run.name)}</code> · seed {run.seed} (data split seed "
                     f"{run.data_seed}) · {esc(run.device)} · {seconds} · {esc(run.created)}</summary>"
                     f"<pre>{esc(run.command)}</pre><pre>{esc(run.config)}</pre></details>")
    parts.append("<h3>Library versions</h3>")
    parts.append(_table([{"library": k, "version": v} for k, v in report.versions.items()]))
    parts.append("</section>")
    return "\n".join(parts)
