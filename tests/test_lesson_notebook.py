"""A shipped lesson's notebook executes top to bottom in the project's environment (nbclient and
ipykernel, every run 1 epoch): it trains the runs through core's API and draws the figures."""
from __future__ import annotations

import base64

import nbformat
from nbclient import NotebookClient

from core.lessons import read_lesson
from core.lessons.parse import SHIPPED_DIR
from core.reports.notebook import lesson_notebook

LESSON = "colour-conditional"  # trains, uses an earlier step's runs, draws charts and image grids


def test_the_notebook_of_a_lesson_executes_and_draws_its_figures(tmp_path, monkeypatch):
    lesson = read_lesson(SHIPPED_DIR / f"{LESSON}.md")
    notebook = lesson_notebook(lesson, lesson.path.read_text(encoding="utf-8"), epochs=1)
    nbformat.validate(notebook)
    (tmp_path / "core").symlink_to(SHIPPED_DIR.parent / "core")  # the project as a student's checkout has it
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # see tests/test_lessons_run.py
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.output_type == "error"]
    pictures = [base64.b64decode(out.data["image/png"]) for out in outputs
                if out.output_type == "display_data" and "image/png" in out.get("data", {})]
    assert len(pictures) >= 6 and all(p.startswith(b"\x89PNG") for p in pictures)
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert "python -m core.cli experiment --dataset styles" in text  # each step says how to run it again
    runs = [p for p in (tmp_path / "lesson-runs").iterdir() if (p / "weights.pt").is_file()]
    assert len(runs) == 4  # two steps of two runs each, saved where the notebook said
