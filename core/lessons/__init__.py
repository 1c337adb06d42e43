"""Lessons: the homework as the unit. A teacher writes a lesson as a Markdown file; a student
follows its steps (each trains an experiment or shows an earlier step's runs), answers its
questions and hands in a report. Free of Streamlit: the Lessons page, `python -m core.cli lesson`
and a lesson's notebook use the same functions.

model.py    Lesson, Step, Question, Expectation, LessonProblem; the views and metrics a file may name
parse.py    reading lesson files (python-frontmatter, markdown-it-py): load_lessons
blocks.py   a step's block and its questions; the checks across steps
text.py     what lesson text may hold (no HTML, images or odd links)
runspec.py  a step's run: in the CLI's syntax, parsed by the CLI's own parser
data.py     the data a lesson runs on here (the named dataset, else the built-in fallback)
runner.py   starting steps as a student's experiments, probes, metrics, expected answers, run_lesson
store.py    a student's lesson state on the server: steps started, answers, hand-ins
cli.py      `lesson list`, `lesson run`, `report` (registered by core.cli)
"""
from core.lessons.data import LessonData, lesson_data
from core.lessons.model import METRICS, VIEWS, Expectation, Lesson, LessonProblem, Question, Step
from core.lessons.parse import lesson_dirs, load_lessons, parse_lesson_text, read_lesson

__all__ = ["METRICS", "VIEWS", "Expectation", "Lesson", "LessonData", "LessonProblem", "Question", "Step",
           "lesson_data", "lesson_dirs", "load_lessons", "parse_lesson_text", "read_lesson"]
