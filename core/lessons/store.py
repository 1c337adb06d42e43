"""A student's work on a lesson, kept on the server: which experiment each step started, the
answers, and the hand-ins (with the report as it was handed in).

    <checkpoints>/.lessons/<lesson>/<owner key>.json     the state (written atomically)
    <checkpoints>/.lessons/<lesson>/handins/<owner key>.html   the last report handed in
    <checkpoints>/.lessons/probes/<run>.json               a run's classifier result (see probes)

The folder is hidden (a run can never be named like it). A student is known by the salted key of
their owner id (core.serving.access.owner_key), never the id itself; the command line's own work
(`lesson run`) is kept under the key "cli". A damaged file reads as an empty state (and is kept
aside as *.damaged), so one bad file never locks a student out.
"""
from __future__ import annotations

import io
import json
import logging
import threading
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.atomic import write_bytes, write_json
from core.lessons.model import MAX_ANSWER_CHARS, MAX_NAME_CHARS, Lesson, Question
from core.serving.access import is_owner_key, owner_key

log = logging.getLogger(__name__)

LESSONS_DIR = ".lessons"
HANDINS_DIR = "handins"
CLI_KEY = "cli"
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def student_key(owner: str | None) -> str:
    """The key a student's files are kept under: owner_key(owner), or "cli" for the command line."""
    return owner_key(owner) if owner else CLI_KEY


def lesson_folder(root, lesson_name: str) -> Path:
    return Path(root) / LESSONS_DIR / lesson_name


def _state_path(root, lesson_name: str, key: str) -> Path:
    if key != CLI_KEY and not is_owner_key(key):
        raise ValueError("That is not a student's key; copy it from the hand-ins list.")
    return lesson_folder(root, lesson_name) / f"{key}.json"


def _lock(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(str(path), threading.Lock())


def empty_state(lesson_name: str, key: str) -> dict:
    return {"lesson": lesson_name, "student": "", "key": key, "steps": {}, "answers": {}, "handed_in": []}


def read_state(root, lesson_name: str, key: str) -> dict:
    """The state kept under `key` (an owner key or "cli"); empty when there is none yet."""
    path = _state_path(root, lesson_name, key)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict) or not isinstance(state.get("answers"), dict) \
                or not isinstance(state.get("steps"), dict):
            raise ValueError("not a lesson state")
    except FileNotFoundError:
        return empty_state(lesson_name, key)
    except (OSError, ValueError):
        log.warning("lesson state %s is damaged; kept aside, starting empty", path.name)
        try:
            path.replace(path.with_name(path.name + ".damaged"))
        except OSError:
            pass
        return empty_state(lesson_name, key)
    return {**empty_state(lesson_name, key), **state}


def _update(root, lesson_name: str, key: str, change) -> dict:
    path = _state_path(root, lesson_name, key)
    with _lock(path):
        state = read_state(root, lesson_name, key)
        change(state)
        state["updated"] = now_iso()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, state)
    return state


def record_step(root, lesson_name: str, key: str, step: int, experiment: str) -> dict:
    """Step `step` started `experiment` (a later Run of the same step replaces it)."""
    return _update(root, lesson_name, key,
                   lambda s: s["steps"].__setitem__(str(step), {"experiment": experiment, "started": now_iso()}))


def step_experiment_name(state: dict, step: int) -> str | None:
    entry = state["steps"].get(str(step))
    return entry.get("experiment") if isinstance(entry, dict) else None


def clean_answer(question: Question, value: Any) -> Any:
    """The answer as kept: text (bounded), one of the choices, or a finite number; ValueError
    (one sentence) for anything else."""
    if value is None or value == "":
        return None
    if question.kind == "number":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"'{str(value)[:40]}' is not a number; write digits, e.g. 4 or 0.25.") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("Write a finite number, e.g. 4 or 0.25.")
        return int(number) if number.is_integer() else number
    text = str(value)
    if question.kind == "choice":
        if text not in question.choices:
            raise ValueError(f"'{text[:40]}' is not one of the choices; pick one of {', '.join(question.choices)}.")
        return text
    if len(text) > MAX_ANSWER_CHARS:
        raise ValueError(f"An answer may be {MAX_ANSWER_CHARS:,} characters long; shorten it.")
    return text


def save_answer(root, lesson: Lesson, key: str, question: Question, value: Any) -> dict:
    """Keep one answer (checked by clean_answer first, so a bad value changes nothing)."""
    answer = clean_answer(question, value)
    return _update(root, lesson.name, key,
                   lambda s: s["answers"].__setitem__(question.key, {"value": answer, "saved": now_iso()}))


def answer_value(state: dict, question: Question) -> Any:
    entry = state["answers"].get(question.key)
    return entry.get("value") if isinstance(entry, dict) else None


def step_done(lesson, number: int, state: dict) -> bool:
    """Whether a student has done step `number`: every question answered and, when the step shows
    runs, the step that trains them started (a step that only looks at step 1's runs is not done
    while step 1 was never run, whatever was typed)."""
    step = lesson.step(number)
    answered = all(answer_value(state, q) not in (None, "") for q in step.questions)
    return answered and (step.source is None or str(step.source) in state["steps"])


def clean_name(name: str) -> str:
    name = " ".join(str(name or "").split())
    if not name:
        raise ValueError("Write your name before handing in, so your teacher knows whose work it is.")
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f"A name may be {MAX_NAME_CHARS} characters long; shorten it.")
    return name


def hand_in(root, lesson: Lesson, key: str, student: str, report_html: bytes) -> dict:
    """Hand in: the report (HTML) is kept as it is now, the answers frozen beside it."""
    student = clean_name(student)
    folder = lesson_folder(root, lesson.name) / HANDINS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes(folder / f"{key}.html", report_html)

    def change(state: dict) -> None:
        state["student"] = student
        answers = {k: v.get("value") for k, v in state["answers"].items() if isinstance(v, dict)}
        state["handed_in"] = [*state["handed_in"][-9:], {"at": now_iso(), "student": student, "answers": answers}]
    state = _update(root, lesson.name, key, change)
    log.info("lesson %s: hand-in by %s", lesson.name, key[:8])
    return state


def hand_ins(root, lesson_name: str) -> list[dict]:
    """Every student's last hand-in of the lesson, newest first: {key, student, at, answers, count}."""
    folder = lesson_folder(root, lesson_name)
    rows = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        key = path.stem
        if key == CLI_KEY or not is_owner_key(key):
            continue
        state = read_state(root, lesson_name, key)
        if state["handed_in"]:
            last = state["handed_in"][-1]
            rows.append({"key": key, "student": last.get("student", ""), "at": last.get("at", ""),
                         "answers": last.get("answers", {}), "count": len(state["handed_in"])})
    return sorted(rows, key=lambda r: r["at"], reverse=True)


def hand_ins_zip(root, lesson: Lesson) -> bytes:
    """Every last hand-in as one zip: each student's report (HTML) and answers.json with them all."""
    rows = hand_ins(root, lesson.name)
    folder = lesson_folder(root, lesson.name) / HANDINS_DIR
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        used: set[str] = set()
        for row in rows:
            stem = _file_stem(row["student"], row["key"], used)
            report = folder / f"{row['key']}.html"
            if report.is_file():
                archive.write(report, f"{lesson.name}/{stem}.html")
            row["report"] = f"{stem}.html"
        index = [{"student": r["student"], "key": r["key"], "handed_in": r["at"], "report": r.get("report"),
                  "answers": r["answers"]} for r in rows]
        archive.writestr(f"{lesson.name}/answers.json", json.dumps(index, indent=2, ensure_ascii=False))
    return buffer.getvalue()


def _file_stem(student: str, key: str, used: set[str]) -> str:
    base = "".join(c if c.isalnum() else "-" for c in student).strip("-")[:40] or "student"
    stem = f"{base}-{key[:8]}"
    while stem in used:
        stem += "x"
    used.add(stem)
    return stem
