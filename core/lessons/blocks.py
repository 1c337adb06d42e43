"""A step's block (```step, YAML): what it trains (run:) or shows of an earlier step (use:), its
views (show:), what to look for and its questions with their expected answers; and the checks that
need the whole lesson (run: parses with the CLI's parser, use: names a step that trains, expected
factors are factors of the runs, question ids are unique)."""
from __future__ import annotations

import re
from typing import Any

import yaml

from core.lessons.model import BEST, METRICS, QUESTION_KINDS, VIEWS, Expectation, Lesson, Question, Step
from core.lessons.text import LessonFileError, check_markdown, yaml_hint

MAX_QUESTIONS = 20
MAX_CHOICES = 20
STEP_FIELDS = ("run", "use", "show", "look_for", "questions")
QUESTION_FIELDS = ("ask", "kind", "choices", "expect", "id")
_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")


def step_block(step: Step, source: str, line: int) -> None:
    try:
        block = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)  # where it began
        problem = getattr(exc, "problem", None) or "it is not valid YAML"
        raise LessonFileError(line + (mark.line if mark else 0), f"step {step.number}'s block is not valid YAML "
                                                                f"({problem}); {yaml_hint(problem)}") from None
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
        check_markdown(step.look_for, _key_line(source, "look_for", line), f"step {step.number}'s look_for")
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
    check_markdown(ask, line, where)
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
            check_markdown(choice, line, f"{where}'s choices")
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

def check_steps(lesson: Lesson) -> None:
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
