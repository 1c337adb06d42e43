"""Lesson files: Markdown with a front-matter block, read with python-frontmatter and markdown-it-py.

    ---
    title: Latent size on Fashion-MNIST
    goal: How small can the code get before the pictures fall apart?
    dataset: fashion-mnist        # the homework's data
    data: --limit 12000           # its options, in the command line's syntax (optional)
    fallback: digits              # built-in data when the server has no fashion-mnist
    ---
    An introduction (optional).

    ## Three latent sizes
    What the step is about, in Markdown.

    ```step
    run: --grid model.latent=2,4,6 --model conv-small
    show: [runs, answer]
    look_for: The test MSE falls as the code grows.
    questions:
      - ask: Which latent size gives the lowest test MSE?
        kind: choice
        choices: [2, 4, 6]
        expect: {lowest: test_mse, factor: model.latent}
    ```

Every `## ` heading starts a step; its optional ```step block (YAML) says what it trains (run:, in
the CLI's syntax, or use: an earlier step's runs), which views answer it (show:), what to look for
and its questions. A file that breaks a rule is one LessonProblem sentence (file, line, what to write
instead); the other lessons load as usual.

Lesson text reaches a student's browser, so it is held to what Markdown needs: no HTML (it would be
shown as text), no images (they would be fetched from elsewhere), links only to http(s) and mailto.
"""
from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path
from typing import Any

import frontmatter
import yaml

from core.config import DATASET_NAMES
from core.data import OFFLINE_DATASETS
from core.lessons.blocks import check_steps, step_block
from core.lessons.model import Lesson, LessonProblem, Step
from core.lessons.text import CHECKER, LessonFileError, check_markdown, yaml_hint

log = logging.getLogger(__name__)

LESSON_DIRS_ENV = "AE_LAB_LESSON_DIRS"
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "lessons"
MAX_FILE_BYTES = 256 * 1024
MAX_STEPS = 30
STEP_BLOCK = "step"
FRONT_FIELDS = ("title", "goal", "dataset", "folder", "data", "fallback", "fallback_data")
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,60}")

def lesson_dirs(environ=None) -> list[Path]:
    """lessons/ beside the app, then every folder in AE_LAB_LESSON_DIRS (separated by os.pathsep)."""
    env = os.environ if environ is None else environ
    extra = [Path(p).expanduser() for p in env.get(LESSON_DIRS_ENV, "").split(os.pathsep) if p.strip()]
    return [SHIPPED_DIR, *extra]


def shown_path(path: Path) -> str:
    """How a message names a lesson file: its folder's name and its own (never a server path)."""
    return f"{path.parent.name}/{path.name}"


def load_lessons(dirs: list[Path] | None = None) -> tuple[list[Lesson], list[LessonProblem]]:
    """Every lesson in `dirs` (default lesson_dirs()), by name, and a problem for each file that
    cannot be used (a missing folder is a problem too, not an error)."""
    lessons: dict[str, Lesson] = {}
    problems: list[LessonProblem] = []
    for folder in dirs if dirs is not None else lesson_dirs():
        if not folder.is_dir():
            where = "beside the app" if folder == SHIPPED_DIR else f"named in {LESSON_DIRS_ENV}"
            problems.append(LessonProblem(folder, folder.name, f"The lesson folder {folder.name} {where} is not "
                                          "there; create it or fix the variable."))
            continue
        for path in sorted(folder.glob("*.md")):
            if path.name.lower() == "readme.md":
                continue
            result = read_lesson(path)
            if isinstance(result, LessonProblem):
                problems.append(result)
            elif result.name in lessons:
                problems.append(LessonProblem(path, result.name, f"{shown_path(path)}: a lesson named {result.name} "
                                              f"already comes from {shown_path(lessons[result.name].path)}; "
                                              "rename one of the two files."))
            else:
                lessons[result.name] = result
    return sorted(lessons.values(), key=lambda lesson: lesson.name), problems


def read_lesson(path: Path) -> Lesson | LessonProblem:
    """The lesson in one file, or the one sentence saying why it cannot be used."""
    try:
        stat = path.stat()
    except OSError:
        return LessonProblem(path, path.stem, f"{shown_path(path)} cannot be read; check that the file is there.")
    return _read_cached(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=128)
def _read_cached(path: Path, mtime_ns: int, size: int) -> Lesson | LessonProblem:
    if size > MAX_FILE_BYTES:
        return LessonProblem(path, path.stem, f"{shown_path(path)} is {size // 1024} KB, more than a lesson file "
                             f"may be ({MAX_FILE_BYTES // 1024} KB); split it into several lessons.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return LessonProblem(path, path.stem, f"{shown_path(path)} is not a UTF-8 text file; save it as UTF-8 "
                             "Markdown.")
    try:
        return parse_lesson_text(text, path.stem, path)
    except LessonFileError as exc:
        where = f", line {exc.line}" if exc.line else ""
        message = f"{shown_path(path)}{where}: {exc}"
        log.info("lesson file refused: %s", message)
        return LessonProblem(path, path.stem, message.rstrip(".") + ".")


def parse_lesson_text(text: str, name: str, path: Path | None = None) -> Lesson:
    """The lesson a file's text describes; LessonFileError (line, what to write instead) if it breaks a rule."""
    if not _NAME_RE.fullmatch(name):
        raise LessonFileError(0, "the file name must be letters, digits, '-' or '_' (it names the lesson in "
                                 "links and on the command line); rename the file, e.g. latent-sizes.md")
    if not text.lstrip("\ufeff").startswith("---"):
        raise LessonFileError(1, "the file must start with a front-matter block: a line ---, the lesson's "
                                 "title:, goal: and dataset:, and another line ---")
    try:
        post = frontmatter.loads(text.lstrip("\ufeff"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)  # where it began
        problem = getattr(exc, "problem", None) or "it is not valid YAML"
        raise LessonFileError(mark.line + 1 if mark else 1, f"the front matter is not valid YAML ({problem}); "
                                                            f"{yaml_hint(problem)}") from None
    except ValueError:
        raise LessonFileError(1, "the front-matter block has no closing --- line; end it with a line ---") from None
    body_line = text.lstrip("\ufeff")[: len(text.lstrip("\ufeff")) - len(post.content)].count("\n")
    lesson = _front_matter(post.metadata, name, path)
    lesson.intro, lesson.steps = _body(post.content, body_line)
    if not lesson.steps:
        raise LessonFileError(body_line + 1, "the lesson has no steps; start each step with a heading line "
                                             "## Step title")
    check_steps(lesson)
    return lesson


# ---------------------------------------------------------------- front matter

def _text_field(meta: dict, key: str, required: bool, line: int = 0) -> str:
    value = meta.get(key)
    if value is None or value == "":
        if required:
            raise LessonFileError(line, f"the front matter has no {key}:; add a line {key}: ...")
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise LessonFileError(line, f"the front matter's {key}: must be text, not a list or a mapping; write "
                                    f"{key}: followed by the text on the same line")
    return str(value).strip()


def _front_matter(meta: Any, name: str, path: Path | None) -> Lesson:
    if not isinstance(meta, dict) or not meta:
        raise LessonFileError(1, "the front matter is empty; give at least title:, goal: and dataset:")
    unknown = [k for k in meta if k not in FRONT_FIELDS]
    if unknown:
        raise LessonFileError(1, f"the front matter has an unknown field {unknown[0]}:; use {', '.join(FRONT_FIELDS)}")
    title, goal = _text_field(meta, "title", True, 1), _text_field(meta, "goal", True, 1)
    dataset = _text_field(meta, "dataset", True, 1)
    if dataset not in DATASET_NAMES:
        raise LessonFileError(1, f"dataset: {dataset} is not a dataset; use one of {', '.join(DATASET_NAMES)}")
    folder = _text_field(meta, "folder", dataset == "folder", 1)
    if folder and dataset != "folder":
        raise LessonFileError(1, "folder: is only for dataset: folder; remove it or set dataset: folder")
    if folder and ("/" not in folder.strip("/") or ".." in folder.split("/") or folder.startswith("/")):
        raise LessonFileError(1, f"folder: {folder} must name a folder inside a data folder, as the Data page "
                                 "shows it, e.g. data/styles")
    fallback = _text_field(meta, "fallback", False, 1) or "digits"
    if fallback not in OFFLINE_DATASETS:
        raise LessonFileError(1, f"fallback: {fallback} is not a built-in dataset; use {' or '.join(OFFLINE_DATASETS)}")
    for key in ("title", "goal"):
        check_markdown(_text_field(meta, key, True), 1, key)
    lesson = Lesson(name=name, path=path or Path(f"{name}.md"), title=title, goal=goal, dataset=dataset,
                    folder=folder, data=_text_field(meta, "data", False, 1), fallback=fallback,
                    fallback_data=_text_field(meta, "fallback_data", False, 1))
    from core.lessons.runspec import RunSyntaxError, check_data_options

    for key in ("data", "fallback_data"):
        try:
            check_data_options(getattr(lesson, key))
        except RunSyntaxError as exc:
            raise LessonFileError(1, f"{key}: {exc}") from None
    return lesson


# ---------------------------------------------------------------- body

def _body(content: str, body_line: int) -> tuple[str, list[Step]]:
    """The introduction and the steps: each `## ` heading starts one; its ```step block holds its settings."""
    lines = content.split("\n")
    tokens = CHECKER.parse(content)
    headings = [(i, t.map[0]) for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h2"]
    if len(headings) > MAX_STEPS:
        raise LessonFileError(body_line + tokens[headings[MAX_STEPS][0]].map[0] + 1,
                              f"a lesson has at most {MAX_STEPS} steps; split it into two lessons")
    ends = [start for _, start in headings[1:]] + [len(lines)]
    intro_end = headings[0][1] if headings else len(lines)
    intro = "\n".join(lines[:intro_end]).strip()
    check_markdown(intro, body_line + 1, "the introduction")
    steps = []
    for number, ((index, start), end) in enumerate(zip(headings, ends), start=1):
        title = tokens[index + 1].content.strip()
        block = None
        skip: set[int] = set()
        for token in tokens:
            if token.type == "fence" and token.info.strip() == STEP_BLOCK and start < token.map[0] < end:
                if block is not None:
                    raise LessonFileError(body_line + token.map[0] + 1, "a step has one ```step block; merge "
                                                                       "the two into one")
                block = token
                skip.update(range(token.map[0], token.map[1]))
        section = [("" if i in skip else lines[i]) for i in range(start + 1, end)]  # the block blanked, lines kept
        text = "\n".join(lines[i] for i in range(start + 1, end) if i not in skip).strip()
        line = body_line + start + 1
        check_markdown(title, line, "the step's title")
        check_markdown("\n".join(section), line + 1, f"step {number}'s text")
        step = Step(number=number, title=title, text=text, line=line)
        if block is not None:
            step_block(step, block.content, body_line + block.map[0] + 2)
        steps.append(step)
    return intro, steps


