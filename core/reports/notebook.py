"""A lesson as a Jupyter notebook (nbformat): the lesson's text and questions as Markdown cells, and
code cells that train each step's runs through core's API (the same planning, experiments and
classifiers as the app) and draw the same figures, so a student continues where the app stops.
The lesson file itself is inside the notebook, so it runs wherever the project is, without it."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # nbformat loads when a notebook is made, not with the Lessons page
    import nbformat

from core.lessons.model import Lesson, Step

SETUP = '''from pathlib import Path
import sys

# The project's folder (the one holding core/): this notebook imports Autoencoder Lab's engine.
PROJECT = next((p for p in [Path.cwd(), *Path.cwd().parents] if (p / "core" / "lessons").is_dir()), None)
if PROJECT is None:
    raise SystemExit("Open this notebook inside the Autoencoder Lab folder (the one holding core/).")
sys.path.insert(0, str(PROJECT))

from core.data import load_dataset
from core.experiments import ExperimentManager
from core.jobs import JobRegistry
from core.lessons import lesson_data, parse_lesson_text
from core.lessons.runner import plan_step, run_probes, run_step, saved_variants, step_record, variant_rows
from core.reports.figures import StepRuns, step_figures
from core.reports.render import show'''

PARAMETERS = '''EPOCHS = {epochs}  # None: each step's own epochs; a number trains every run for that many (quicker, rougher)
CHECKPOINTS = Path("{folder}")  # where this notebook's runs are saved (a checkpoints folder the app can open too)'''

LOAD = '''LESSON = parse_lesson_text({text}, {name})
registry = JobRegistry(root=CHECKPOINTS, max_concurrent=1, load_data=load_dataset)
manager = ExperimentManager(registry)
data = lesson_data(LESSON, load_dataset)
print(data.note or f"Data: {{data.config.dataset}}, {{data.train_images}} training images")'''


def lesson_notebook(lesson: Lesson, text: str, epochs: int | None = None, folder: str = "lesson-runs"
                    ) -> nbformat.NotebookNode:
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    """The notebook of `lesson` (whose file's text is `text`)."""
    cells = [new_markdown_cell(f"# {lesson.title}\n\n*{lesson.goal}*\n\n"
                               "Each step below trains its runs with the same settings as the app's Lessons page "
                               "and draws the same figures. Run the cells from the top; change `EPOCHS` for quicker "
                               "(rougher) runs."),
             new_code_cell(SETUP),
             new_code_cell(PARAMETERS.format(epochs=repr(epochs), folder=folder)),
             new_code_cell(LOAD.format(text=repr(text), name=repr(lesson.name)))]
    if lesson.intro:
        cells.append(new_markdown_cell(lesson.intro))
    for step in lesson.steps:
        cells += _step_cells(step)
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def _step_cells(step: Step) -> list:
    from nbformat.v4 import new_code_cell, new_markdown_cell

    text = f"## {step.number}. {step.title}\n\n{step.text}"
    if step.look_for:
        text += f"\n\n**What to look for:** {step.look_for}"
    cells = [new_markdown_cell(text)]
    if step.run:
        cells.append(new_code_cell(
            f"step = LESSON.step({step.number})\n"
            "parsed, experiment = plan_step(LESSON, step, data, EPOCHS)\n"
            "print(experiment.search or experiment.grid or experiment.variants, "
            "f'{experiment.base.train.epochs} epochs')\n"
            "summary = run_step(LESSON, step, data, manager, EPOCHS, print)\n"
            "print(summary['command'])"))
    if step.show:
        code = (f"step = LESSON.step({step.number})\n"
                "record = step_record(CHECKPOINTS, LESSON, step, 'cli', manager.record)\n")
        if "classifier" in step.show:
            code += "run_probes(registry, CHECKPOINTS, [v['run'] for v in saved_variants(record)], print)\n"
        code += ("rows = variant_rows(CHECKPOINTS, record, need_noisy=True, load=load_dataset)\n"
                 f"show(step_figures(StepRuns(CHECKPOINTS, rows, load_dataset, record), {step.show!r}))")
        cells.append(new_code_cell(code))
    for n, question in enumerate(step.questions, start=1):
        choices = f"\n\nChoices: {', '.join(question.choices)}" if question.choices else ""
        cells.append(new_markdown_cell(f"**Question {n}.** {question.ask}{choices}\n\n*Your answer:* "))
    return cells


def notebook_bytes(notebook: nbformat.NotebookNode) -> bytes:
    import nbformat

    return nbformat.writes(notebook).encode("utf-8")
