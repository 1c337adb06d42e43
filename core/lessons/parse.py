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
from markdown_it import MarkdownIt

from core.config import DATASET_NAMES
from core.data import OFFLINE_DATASETS
from core.lessons.model import BEST, METRICS, QUESTION_KINDS, VIEWS, Expectation, Lesson, LessonProblem, Question, Step

log = logging.getLogger(__name__)

LESSON_DIRS_ENV = "AE_LAB_LESSON_DIRS"
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "lessons"
MAX_FILE_BYTES = 256 * 1024
MAX_STEPS = 30
MAX_QUESTIONS = 20
MAX_CHOICES = 20
STEP_BLOCK = "step"
FRONT_FIELDS = ("title", "goal", "dataset", "folder", "data", "fallback", "fallback_data")
STEP_FIELDS = ("run", "use", "show", "look_for", "questions")
QUESTION_FIELDS = ("ask", "kind", "choices", "expect", "id")
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,60}")
_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")
_LINK_SCHEMES = ("http://", "https://", "mailto:")
MARKDOWN_INSTEAD = "write Markdown instead (**bold**, lists, [a link](https://...))"

# Every link becomes a token (markdown-it would turn a javascript: link into text, hiding it from the check).
_CHECKER = MarkdownIt("commonmark").enable("table")
_CHECKER.validateLink = lambda url: True


class LessonFileError(ValueError):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


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
                                                            f"{_yaml_hint(problem)}") from None
    except ValueError:
        raise LessonFileError(1, "the front-matter block has no closing --- line; end it with a line ---") from None
    body_line = text.lstrip("\ufeff")[: len(text.lstrip("\ufeff")) - len(post.content)].count("\n")
    lesson = _front_matter(post.metadata, name, path)
    lesson.intro, lesson.steps = _body(post.content, body_line)
    if not lesson.steps:
        raise LessonFileError(body_line + 1, "the lesson has no steps; start each step with a heading line "
                                             "## Step title")
    _check_steps(lesson)
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
        _check_markdown(_text_field(meta, key, True), 1, key)
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
    tokens = _CHECKER.parse(content)
    headings = [(i, t.map[0]) for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h2"]
    if len(headings) > MAX_STEPS:
        raise LessonFileError(body_line + tokens[headings[MAX_STEPS][0]].map[0] + 1,
                              f"a lesson has at most {MAX_STEPS} steps; split it into two lessons")
    ends = [start for _, start in headings[1:]] + [len(lines)]
    intro_end = headings[0][1] if headings else len(lines)
    intro = "\n".join(lines[:intro_end]).strip()
    _check_markdown(intro, body_line + 1, "the introduction")
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
        _check_markdown(title, line, "the step's title")
        _check_markdown("\n".join(section), line + 1, f"step {number}'s text")
        step = Step(number=number, title=title, text=text, line=line)
        if block is not None:
            _step_block(step, block.content, body_line + block.map[0] + 2)
        steps.append(step)
    return intro, steps


def _check_markdown(text: str, first_line: int, where: str) -> None:
    """LessonFileError for what must not reach a browser from a lesson file: HTML, images, links
    other than http(s)/mailto."""
    if not text:
        return
    for token in _CHECKER.parse(text):
        line = first_line + (token.map[0] if token.map else 0)
        if token.type == "html_block":
            raise LessonFileError(line, f"{where} holds HTML ({_snippet(token.content)}), which is shown to "
                                        f"students as plain text; {MARKDOWN_INSTEAD}")
        for child in token.children or []:
            if child.type == "html_inline":
                raise LessonFileError(line, f"{where} holds HTML ({_snippet(child.content)}), which is shown "
                                            f"to students as plain text; {MARKDOWN_INSTEAD}")
            if child.type == "image":
                raise LessonFileError(line, f"{where} holds an image, which a student's browser would fetch from "
                                            "elsewhere; describe it in words or link to it: [text](https://...)")
            if child.type == "link_open":
                href = str(child.attrs.get("href", ""))
                if not href.lower().startswith(_LINK_SCHEMES):
                    raise LessonFileError(line, f"{where} links to {_snippet(href)}; link only to http(s) or "
                                                "mailto addresses, e.g. [text](https://...)")


def _snippet(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= 40 else text[:39] + "…"


# ---------------------------------------------------------------- a step's block

def _yaml_hint(problem: str) -> str:
    if "mapping values are not allowed" in problem:
        return 'put text that holds ": " in quotes, e.g. look_for: "Notice: the gap"'
    return "write one key: value per line"


def _step_block(step: Step, source: str, line: int) -> None:
    try:
        block = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)  # where it began
        problem = getattr(exc, "problem", None) or "it is not valid YAML"
        raise LessonFileError(line + (mark.line if mark else 0), f"step {step.number}'s block is not valid YAML "
                                                                f"({problem}); {_yaml_hint(problem)}") from None
    if block is None:
        return
    if not isinstance(block, dict):
        raise LessonFileError(line, f"step {step.number}'s block must be key: value lines ({', '.join(STEP_FIELDS)})")
    unknown = [k for k in block if k not in STEP_FIELDS]
    if unknown:
        raise LessonFileError(_key_line(source, unknown[0], line), f"step {step.number} has an unknown field "
                                                                   f"{unknown[0]}:; use {', '.join(STEP_FIELDS)}")
    if block.get("run") is not None:
        if not isinstance(block["run"], str) or not block["run"].strip():
            raise LessonFileError(_key_line(source, "run", line), f"step {step.number}'s run: must be options on one "
                                                                  "line, e.g. run: --grid model.latent=2,4,6")
        step.run = block["run"].strip()
    if block.get("use") is not None:
        use = block["use"]
        if not isinstance(use, int) or isinstance(use, bool) or not 1 <= use < step.number:
            raise LessonFileError(_key_line(source, "use", line), f"step {step.number}'s use: must be the number of "
                                                                  f"an earlier step (1 to {step.number - 1}) whose runs "
                                                                  "it shows")
        if step.run:
            raise LessonFileError(_key_line(source, "use", line), f"step {step.number} has both run: and use:; a step "
                                                                  "either trains (run:) or shows an earlier step's runs "
                                                                  "(use:)")
        step.use = use
    show = block.get("show") or []
    show = [show] if isinstance(show, str) else show
    if not isinstance(show, list) or not all(isinstance(v, str) for v in show):
        raise LessonFileError(_key_line(source, "show", line), f"step {step.number}'s show: must be a view or a list "
                                                               "of views, e.g. show: [runs, answer]")
    for view in show:
        if view not in VIEWS:
            raise LessonFileError(_key_line(source, "show", line), f"step {step.number} shows '{view}', which is not "
                                                                   f"a view; use {', '.join(VIEWS)}")
    if show and step.source is None:
        raise LessonFileError(_key_line(source, "show", line), f"step {step.number} shows {show[0]} but has no runs; "
                                                               "add run: (what it trains) or use: N (an earlier "
                                                               "step's runs)")
    step.show = list(dict.fromkeys(show))
    if block.get("look_for") is not None:
        if not isinstance(block["look_for"], str):
            raise LessonFileError(_key_line(source, "look_for", line), f"step {step.number}'s look_for: must be text")
        step.look_for = block["look_for"].strip()
        _check_markdown(step.look_for, _key_line(source, "look_for", line), f"step {step.number}'s look_for")
    questions = block.get("questions") or []
    if not isinstance(questions, list):
        raise LessonFileError(_key_line(source, "questions", line), f"step {step.number}'s questions: must be a list, "
                                                                    "each starting with - ask: ...")
    if len(questions) > MAX_QUESTIONS:
        raise LessonFileError(_key_line(source, "questions", line), f"a step has at most {MAX_QUESTIONS} questions; "
                                                                    "split the step")
    q_lines = _item_lines(source, _key_line(source, "questions", line) - line, line)
    step.questions = [_question(step, n, q, q_lines[n - 1] if n <= len(q_lines) else line)
                      for n, q in enumerate(questions, start=1)]


def _key_line(source: str, key: str, first_line: int) -> int:
    """The file line of `key:` in a step block (its first line where it is not found)."""
    for offset, text in enumerate(source.split("\n")):
        if re.match(rf"\s*-?\s*{re.escape(key)}\s*:", text):
            return first_line + offset
    return first_line


def _item_lines(source: str, after: int, first_line: int) -> list[int]:
    """The file lines where the list items (`- key: ...`) after line `after` of a block start."""
    return [first_line + offset for offset, text in enumerate(source.split("\n"))
            if offset > after and re.match(r"\s*-\s+\w+\s*:", text)]


def _question(step: Step, n: int, spec: Any, line: int) -> Question:
    where = f"step {step.number}, question {n}"
    if not isinstance(spec, dict):
        raise LessonFileError(line, f"{where} must be key: value lines starting with - ask: ...")
    unknown = [k for k in spec if k not in QUESTION_FIELDS]
    if unknown:
        raise LessonFileError(line, f"{where} has an unknown field {unknown[0]}:; use {', '.join(QUESTION_FIELDS)}")
    ask = spec.get("ask")
    if not isinstance(ask, str) or not ask.strip():
        raise LessonFileError(line, f"{where} has no ask:; write the question as ask: ...")
    _check_markdown(ask, line, where)
    kind = spec.get("kind", "text")
    if kind not in QUESTION_KINDS:
        raise LessonFileError(line, f"{where}'s kind: {kind} is not a kind of question; use {', '.join(QUESTION_KINDS)}")
    key = spec.get("id", f"s{step.number}q{n}")
    if not isinstance(key, str) or not _ID_RE.fullmatch(key):
        raise LessonFileError(line, f"{where}'s id: must be letters, digits, '-' or '_' (up to 40)")
    question = Question(key=key, ask=ask.strip(), kind=kind, line=line)
    choices = spec.get("choices")
    if kind == "choice":
        if not isinstance(choices, list) or not 2 <= len(choices) <= MAX_CHOICES \
                or not all(isinstance(c, (str, int, float)) for c in choices):
            raise LessonFileError(line, f"{where} is a choice with no list of 2 to {MAX_CHOICES} choices; add e.g. "
                                        "choices: [2, 4, 6]")
        from core.experiments import format_value

        question.choices = [format_value(c) for c in choices]
        for choice in question.choices:
            _check_markdown(choice, line, f"{where}'s choices")
        if len(set(question.choices)) != len(question.choices):
            raise LessonFileError(line, f"{where} lists one choice twice; give each choice once")
    elif choices is not None:
        raise LessonFileError(line, f"{where} has choices: but is not kind: choice; add kind: choice or remove them")
    if spec.get("expect") is not None:
        question.expect = _expectation(step, where, spec["expect"], kind, line)
    return question


def _expectation(step: Step, where: str, spec: Any, kind: str, line: int) -> Expectation:
    example = "expect: {lowest: test_mse, factor: model.latent}"
    if step.source is None:
        raise LessonFileError(line, f"{where} expects an answer from runs, but the step has none; add run: or use:")
    if kind == "text":
        raise LessonFileError(line, f"{where} is free text, which cannot be compared with the runs; make it kind: "
                                    "choice or number, or remove expect:")
    if not isinstance(spec, dict) or len([k for k in spec if k in BEST]) != 1 \
            or any(k not in (*BEST, "factor") for k in spec):
        raise LessonFileError(line, f"{where}'s expect: must name lowest: or highest: a metric and optionally a "
                                    f"factor, e.g. {example}")
    best = next(k for k in spec if k in BEST)
    metric = spec[best]
    if metric not in METRICS:
        raise LessonFileError(line, f"{where} expects the {best} {metric}, which is not measured; use one of "
                                    f"{', '.join(METRICS)}")
    factor = spec.get("factor") or ""
    if factor:
        from core.experiments.config import check_path

        try:
            check_path(str(factor))
        except ValueError as exc:
            raise LessonFileError(line, f"{where}'s factor: {exc}".rstrip(".")) from None
    return Expectation(metric=metric, best=best, factor=str(factor))


# ---------------------------------------------------------------- whole-lesson checks

def _check_steps(lesson: Lesson) -> None:
    """What needs more than one step to judge: run: parses, use: points at a step that trains,
    expected factors are factors of the runs, ids are unique."""
    from core.lessons.runspec import RunSyntaxError, parse_run
    from core.lessons.data import named_data

    data = named_data(lesson)
    grids = {}
    seen: dict[str, int] = {}
    for step in lesson.steps:
        if step.run:
            try:
                parsed = parse_run(step.run, data, lesson.data, name=f"check-s{step.number}")
            except (RunSyntaxError, ValueError) as exc:
                raise LessonFileError(step.line, f"step {step.number}'s run: {' '.join(str(exc).split())}".rstrip(".")
                                      + "") from None
            exp = parsed.experiment
            grids[step.number] = (set(exp.grid) | {k for v in exp.variants for k in v}
                                  | (set(exp.search.space) if exp.search else set()), exp)
        if step.use is not None and not lesson.step(step.use).run:
            raise LessonFileError(step.line, f"step {step.number} uses step {step.use}, which trains nothing; use a "
                                             "step with run:")
        for question in step.questions:
            if question.key in seen:
                raise LessonFileError(question.line, f"the question id {question.key} is used twice (also in step "
                                                     f"{seen[question.key]}); give each question its own id")
            seen[question.key] = step.number
            _check_expected_factor(step, question, grids)
            if question.expect and question.expect.metric == "probe_accuracy" and "classifier" not in step.show:
                raise LessonFileError(question.line, f"step {step.number} expects a classifier accuracy but does not "
                                                     "show classifier; add classifier to its show:")


def _check_expected_factor(step: Step, question: Question, grids: dict) -> None:
    expect = question.expect
    if expect is None or not expect.factor:
        return
    factors, exp = grids[step.source]
    if expect.factor not in factors:
        raise LessonFileError(question.line, f"question {question.key} expects a value of {expect.factor}, which "
                                             f"step {step.source}'s runs do not vary; use one of "
                                             f"{', '.join(sorted(factors)) or 'the factors of a grid'}")
    if question.kind == "choice" and exp.search is None:
        from core.experiments import format_value

        values = [format_value(v) for v in exp.grid.get(expect.factor, [])] + \
                 [format_value(v[expect.factor]) for v in exp.variants if expect.factor in v]
        missing = [v for v in dict.fromkeys(values) if v not in question.choices]
        if missing:
            raise LessonFileError(question.line, f"question {question.key}'s choices miss {missing[0]}, a value of "
                                                 f"{expect.factor} in step {step.source}'s runs; add it to choices:")
