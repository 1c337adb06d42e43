"""Lesson files (core.lessons): parsing, every kind of malformed file as one sentence naming the
file, the line and what to write instead, the answers kept on the server, expected answers, and
the report's reproducing commands and safe HTML. No training here (tests/test_lessons_run.py trains)."""
from __future__ import annotations

import json
import re
import zipfile
import io

import pytest

from core.cli import build_parser, config_from_args
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.lessons import load_lessons, parse_lesson_text
from core.lessons.model import Expectation, Question
from core.lessons.parse import SHIPPED_DIR
from core.lessons.runner import expected_answer, matches
from core.lessons.store import (CLI_KEY, answer_value, hand_in, hand_ins, hand_ins_zip, read_state,
                                record_step, save_answer, step_done, student_key)
from core.reports.commands import train_command
from core.reports.html import report_html
from core.reports.markdown import report_markdown
from core.reports.report import QuestionReport, Report, StepReport
from lesson_files import TINY_LESSON, write_lesson

OWNER = "a" * 22  # an owner id as the app makes them


def lesson_with(old: str, new: str, text: str = TINY_LESSON) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


# ---------------------------------------------------------------- parsing

def test_a_lesson_file_becomes_steps_with_questions():
    lesson = parse_lesson_text(TINY_LESSON, "tiny")
    assert (lesson.title, lesson.dataset, lesson.fallback) == ("Tiny latent lesson", "digits", "digits")
    assert lesson.intro.startswith("An introduction")
    assert [s.title for s in lesson.steps] == ["Two code sizes", "Classifiers", "Dropout"]
    first, second, third = lesson.steps
    assert first.run == "--grid model.latent=2,8 --model conv-small --epochs 2"
    assert first.show == ["runs", "answer", "reconstructions", "latent-raw"]
    assert first.text == "Train two runs."  # the step block is not part of the text
    assert (second.use, second.source, third.source) == (1, 1, 3)
    kinds = [(q.key, q.kind) for q in lesson.questions()]
    assert kinds == [("s1q1", "choice"), ("s1q2", "text"), ("s1q3", "number"), ("s2q1", "choice")]
    assert first.questions[0].choices == ["2", "8"]
    assert first.questions[0].expect == Expectation("test_mse", "lowest", "model.latent")
    # Line numbers point into the file (messages and the teacher's editor agree).
    assert first.questions[1].line == line_of(TINY_LESSON, "  - ask: What did you see?")
    assert first.line == line_of(TINY_LESSON, "## Two code sizes")


def test_every_shipped_lesson_reads_without_a_problem():
    lessons, problems = load_lessons([SHIPPED_DIR])
    assert problems == []
    names = {lesson.name for lesson in lessons}
    assert names == {"photos-size-dropout", "dense-mnist", "fashion-latent", "colour-conditional", "mnist-conv"}
    for lesson in lessons:
        assert len(lesson.steps) >= 3, lesson.name
        assert all(step.show for step in lesson.steps if step.source), lesson.name  # a run is always looked at
        assert all(step.look_for for step in lesson.steps if step.show), lesson.name  # each says what to look for
        assert any(q.expect for q in lesson.questions()), lesson.name


# ---------------------------------------------------------------- malformed files

MALFORMED = [
    # (what is wrong, old text, new text, the line it names (a fragment of it, or None), words of the fix)
    ("no front matter", "---\ntitle: Tiny", "title: Tiny", 1, "front-matter block"),
    ("front matter not YAML", "goal: Two code sizes on the digits, quickly.", "goal: [unclosed", "goal: [unclosed",
     "YAML"),
    ("a colon in a value", "goal: Two code sizes on the digits, quickly.", "goal: Two sizes: quickly",
     "goal: Two sizes", 'in quotes'),
    ("no title", "title: Tiny latent lesson\n", "", None, "add a line title:"),
    ("unknown field", "dataset: digits", "dataset: digits\ncolour: blue", None, "unknown field colour"),
    ("unknown dataset", "dataset: digits", "dataset: imagenet", None, "use one of digits, shapes"),
    ("fallback not built in", "dataset: digits", "dataset: mnist\nfallback: cifar10", None, "built-in dataset"),
    ("training option in data:", "dataset: digits", "dataset: digits\ndata: --epochs 3", None, "not a data option"),
    ("no steps", TINY_LESSON[TINY_LESSON.index("## Two"):], "", None, "## Step title"),
    ("step block not YAML", "show: [runs, answer, reconstructions, latent-raw]", "show: [runs",
     "show: [runs", "YAML"),
    ("unknown step field", "look_for: The larger", "picture: x\nlook_for: The larger", "picture: x",
     "unknown field picture"),
    ("unknown preset", "run: --grid model.latent=2,8 --model conv-small --epochs 2", "run: --preset colours",
     "## Two code sizes", "latent-sizes"),
    ("unknown view", "show: [runs, answer, reconstructions, latent-raw]", "show: [runs, pictures]",
     "show: [runs, pictures]", "latent-tsne"),
    ("neither a preset nor a grid", "run: --grid model.latent=2,8 --model conv-small --epochs 2",
     "run: --model conv-small --epochs 2", "## Two code sizes", "--preset NAME"),
    ("grid path that does not exist", "--grid model.latent=2,8", "--grid model.latnet=2,8", "## Two code sizes",
     "model.latent"),
    ("an option the lesson decides", "--model conv-small --epochs 2", "--model conv-small --dataset mnist",
     "## Two code sizes", "front matter's dataset"),
    ("an option that does not exist", "--model conv-small --epochs 2", "--model conv-small --colour red",
     "## Two code sizes", "--colour"),
    ("use: a later step", "use: 1", "use: 3", "use: 3", "earlier step"),
    ("use: a step that trains nothing", "```step\nrun: --grid model.dropout=0,0.5 --latent 4 --model conv-small "
     "--epochs 1\nshow: [noise-sweep, generate]", "```step\nuse: 2\nshow: [noise-sweep, generate]", "## Dropout",
     "trains nothing"),
    ("run: and use:", "use: 1", "use: 1\nrun: --grid model.latent=2", "use: 1", "either trains"),
    ("show: without runs", "use: 1\n", "", "show: classifier", "add run:"),
    ("unknown question kind", "    kind: number", "    kind: essay", "  - ask: How many runs", "text, choice, number"),
    ("choice without choices", "    choices: [2, 8]\n    expect: {highest", "    expect: {highest",
     "  - ask: Which code size classifies", "choices: [2, 4, 6]"),
    ("expect on free text", "  - ask: What did you see?", "  - ask: What did you see?\n    expect: {lowest: test_mse}",
     "  - ask: What did you see?", "kind: choice or number"),
    ("expect an unknown metric", "{lowest: test_mse, factor: model.latent}", "{lowest: beauty, factor: model.latent}",
     "  - ask: Which code size gives", "test_mse"),
    ("expect a factor the runs do not vary", "{lowest: test_mse, factor: model.latent}",
     "{lowest: test_mse, factor: model.dropout}", "  - ask: Which code size gives", "do not vary"),
    ("choices that miss a value of the grid", "    choices: [2, 8]\n    expect: {lowest", "    choices: [2, 4]\n"
     "    expect: {lowest", "  - ask: Which code size gives", "miss 8"),
    ("two questions with one id", "  - ask: What did you see?", "  - ask: What did you see?\n    id: same\n"
     "  - ask: Again?\n    id: same", "  - ask: Again?", "used twice"),
    ("raw HTML in a step", "Train two runs.", "Train two <script>alert(1)</script> runs.", "Train two <script>",
     "Markdown instead"),
    ("an HTML block", "Train two runs.", "<div onclick=x>Train</div>", "<div onclick", "Markdown instead"),
    ("an image", "Train two runs.", "Train ![x](http://tracker.example/p.png) runs.", "Train ![x]",
     "describe it in words"),
    ("a javascript: link", "Train two runs.", "Train [two](javascript:alert(1)) runs.", "Train [two]",
     "http(s) or mailto"),
    ("HTML in a question", "  - ask: What did you see?", "  - ask: What did <b>you</b> see?",
     "  - ask: What did <b>", "Markdown instead"),
]


@pytest.mark.parametrize("what, old, new, line, fix", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_lesson_is_one_sentence_and_the_others_still_load(tmp_path, what, old, new, line, fix):
    text = lesson_with(old, new)
    write_lesson(tmp_path, "broken", text)
    write_lesson(tmp_path, "good", TINY_LESSON)
    lessons, problems = load_lessons([tmp_path])
    assert [lesson.name for lesson in lessons] == ["good"]
    (problem,) = problems
    message = problem.message
    assert message.startswith(f"{tmp_path.name}/broken.md"), message
    assert str(tmp_path.parent) not in message  # a folder's name, never a server path
    assert fix in message, message
    if line is not None:
        expected = line if isinstance(line, int) else line_of(text, line)
        assert f", line {expected}:" in message, message
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message


def test_files_that_cannot_be_read(tmp_path):
    (tmp_path / "latin1.md").write_bytes("---\ntitle: Caf\xe9\n".encode("latin-1"))
    (tmp_path / "huge.md").write_text("---\n" + "x" * (300 * 1024))
    (tmp_path / "bad name!.md").write_text(TINY_LESSON)
    other = tmp_path / "other"
    write_lesson(other, "tiny", TINY_LESSON)
    write_lesson(tmp_path, "tiny", TINY_LESSON)
    lessons, problems = load_lessons([tmp_path, other, tmp_path / "missing"])
    messages = sorted(p.message for p in problems)
    assert [lesson.name for lesson in lessons] == ["tiny"]
    assert any("bad name!.md" in m and "rename the file" in m for m in messages)
    assert any("huge.md" in m and "split it" in m for m in messages)
    assert any("latin1.md" in m and "UTF-8" in m for m in messages)
    assert any("other/tiny.md" in m and "already comes from" in m for m in messages)
    assert any("missing" in m and "is not there" in m for m in messages)


# ---------------------------------------------------------------- answers on the server

def test_answers_are_kept_per_student_and_survive_a_restart(tmp_path):
    lesson = parse_lesson_text(TINY_LESSON, "tiny")
    choice, text, number = lesson.step(1).questions
    key = student_key(OWNER)
    assert key != OWNER and OWNER not in key  # the disk keeps a salted key, never the id
    save_answer(tmp_path, lesson, key, choice, "8")
    save_answer(tmp_path, lesson, key, text, "The <b>edges</b> blur.")
    save_answer(tmp_path, lesson, key, number, "2")
    record_step(tmp_path, lesson.name, key, 1, "tiny-s1")
    state = read_state(tmp_path, lesson.name, key)  # a new read: what the next server sees
    assert [answer_value(state, q) for q in (choice, text, number)] == ["8", "The <b>edges</b> blur.", 2]
    assert state["steps"]["1"]["experiment"] == "tiny-s1"
    assert read_state(tmp_path, lesson.name, student_key("b" * 22))["answers"] == {}  # another student
    files = list((tmp_path / ".lessons" / "tiny").iterdir())
    assert OWNER not in json.dumps([f.name for f in files]) + "".join(f.read_text() for f in files)


@pytest.mark.parametrize("kind, value, fragment", [
    ("choice", "9", "not one of the choices"), ("number", "four", "not a number"),
    ("number", "nan", "finite number"), ("text", "x" * 6000, "characters long")])
def test_a_bad_answer_is_refused_and_the_kept_one_stays(tmp_path, kind, value, fragment):
    lesson = parse_lesson_text(TINY_LESSON, "tiny")
    question = {"choice": lesson.step(1).questions[0], "text": lesson.step(1).questions[1],
                "number": lesson.step(1).questions[2]}[kind]
    good = {"choice": "2", "text": "fine", "number": 3}[kind]
    save_answer(tmp_path, lesson, CLI_KEY, question, good)
    with pytest.raises(ValueError, match=fragment):
        save_answer(tmp_path, lesson, CLI_KEY, question, value)
    assert answer_value(read_state(tmp_path, lesson.name, CLI_KEY), question) == good


def test_a_damaged_state_file_starts_empty_and_is_kept_aside(tmp_path):
    lesson = parse_lesson_text(TINY_LESSON, "tiny")
    key = student_key(OWNER)
    save_answer(tmp_path, lesson, key, lesson.step(1).questions[1], "kept")
    path = tmp_path / ".lessons" / "tiny" / f"{key}.json"
    path.write_text("{not json")
    assert read_state(tmp_path, lesson.name, key)["answers"] == {}
    assert path.with_name(path.name + ".damaged").read_text() == "{not json"
    save_answer(tmp_path, lesson, key, lesson.step(1).questions[1], "again")  # and it works again
    assert answer_value(read_state(tmp_path, lesson.name, key), lesson.step(1).questions[1]) == "again"


def test_hand_ins_are_listed_and_zipped_for_the_teacher(tmp_path):
    lesson = parse_lesson_text(TINY_LESSON, "tiny")
    alice, bob = student_key("alice-" + "a" * 16), student_key("bob-" + "b" * 18)
    save_answer(tmp_path, lesson, alice, lesson.step(1).questions[0], "8")
    with pytest.raises(ValueError, match="Write your name"):
        hand_in(tmp_path, lesson, alice, "  ", b"<html>alice</html>")
    hand_in(tmp_path, lesson, alice, "Alice  Martin", b"<html>alice</html>")
    hand_in(tmp_path, lesson, bob, "Bob/../../etc", b"<html>bob</html>")
    save_answer(tmp_path, lesson, alice, lesson.step(1).questions[0], "2")  # after handing in: not handed in
    rows = hand_ins(tmp_path, lesson.name)
    assert {r["student"] for r in rows} == {"Alice Martin", "Bob/../../etc"}
    assert next(r for r in rows if r["key"] == alice)["answers"] == {"s1q1": "8"}
    with zipfile.ZipFile(io.BytesIO(hand_ins_zip(tmp_path, lesson))) as archive:
        names = archive.namelist()
        index = json.loads(archive.read("tiny/answers.json"))
        assert all(name.startswith("tiny/") and ".." not in name for name in names)
        reports = [n for n in names if n.endswith(".html")]
        assert len(reports) == 2 and {archive.read(n) for n in reports} == {b"<html>alice</html>", b"<html>bob</html>"}
    assert {row["student"] for row in index} == {"Alice Martin", "Bob/../../etc"}


# ---------------------------------------------------------------- expected answers

def test_the_expected_answer_is_the_factor_of_the_best_run():
    rows = [{"label": "latent 2", "factors": {"model.latent": 2}, "test_mse": 0.05, "probe_accuracy": 0.7},
            {"label": "latent 8", "factors": {"model.latent": 8}, "test_mse": 0.02, "probe_accuracy": 0.6},
            {"label": "latent 16", "factors": {"model.latent": 16}, "test_mse": None, "probe_accuracy": None}]
    assert expected_answer(Expectation("test_mse", "lowest", "model.latent"), rows)[0] == "8"
    assert expected_answer(Expectation("probe_accuracy", "highest", "model.latent"), rows)[0] == "2"
    assert expected_answer(Expectation("test_mse", "highest"), rows)[0] == "latent 2"  # no factor: the run's label
    assert expected_answer(Expectation("gap", "lowest"), rows) is None  # nothing measured yet
    number = Question(key="q", ask="?", kind="number")
    choice = Question(key="q", ask="?", kind="choice", choices=["2", "8"])
    assert matches(number, 8, "8") and matches(number, 8.0, "8") and not matches(number, 2, "8")
    assert matches(choice, "8", "8") and not matches(choice, "2", "8") and not matches(choice, None, "8")


# ---------------------------------------------------------------- the report's commands and HTML

@pytest.mark.parametrize("cfg", [
    RunConfig(),
    RunConfig(data=DataConfig(dataset="mnist", limit=5000, exclude_classes=[1, 7], seed=3),
              model=ModelConfig(family="dense", hidden=[1000, 500, 250], latent=2, activation="sigmoid"),
              train=TrainConfig(optimizer="rprop", lr=0.01, batch_size=4096, epochs=7, seed=3)),
    RunConfig(data=DataConfig(dataset="shapes", image_size=48, balanced=True, val_fraction=0.2),
              model=ModelConfig(preset="large", latent=6, dropout=0.5, vae=True, beta=4.0, conditional=True),
              train=TrainConfig(loss="mae", noise_factor=0.3, patience=3, weight_decay=1e-4)),
    RunConfig(data=DataConfig(dataset="folder", folder="photos/cats", image_size=64, channels=1),
              model=ModelConfig(channels=[8, 16, 32], output_activation="none")),
])
def test_the_reproducing_command_parses_back_to_the_same_run(cfg):
    command = train_command(cfg, "again")
    words = command.split()[3:]
    args = build_parser().parse_args(words)
    back = config_from_args(args)
    for section in ("data", "model", "train"):
        assert getattr(back, section) == getattr(cfg, section), (section, command)
    assert back.name == "again"


def test_the_html_report_shows_answers_as_text_and_fetches_nothing():
    hostile = '<script>alert(1)</script><img src=x onerror=alert(2)> **not bold** [x](javascript:y)'
    step = StepReport(number=1, title="A <i>step</i>", text="Text with [a link](https://example.org) and "
                      "<b>raw</b> HTML.", questions=[QuestionReport(ask="Why?", kind="text", choices=[],
                                                                   answer=hostile)],
                      table=[{"run": "<b>r</b>", "test MSE": "0.1"}], command="python -m core.cli x --name '<r>'")
    report = Report(kind="lesson", name="x", title="T <script>", student='Eve"><script>', steps=[step],
                    versions={"torch": "2"})
    html = report_html(report, {})
    body = html[html.index("<body>"):]
    assert "<script>" not in body and "<img src=x" not in body and "<b>raw</b>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body  # the answer, shown as what was typed
    assert '<a href="https://example.org">a link</a>' in body
    assert "javascript:" not in body.replace("[x](javascript:y)", "")
    assert "default-src 'none'; img-src data:" in html  # scripts and requests forbidden, should anything slip
    assert not re.search(r'(src|href)="(?!data:|https://example\.org|#)', html)
    markdown = report_markdown(report)
    fenced = markdown[markdown.index("**Answer:**"):]
    assert fenced.split("```text\n", 1)[1].startswith(hostile)  # inside a fence: shown as text by any viewer


def test_the_readmes_example_lesson_is_a_valid_lesson():
    readme = (SHIPPED_DIR.parent / "README.md").read_text(encoding="utf-8")
    example = readme.split("````markdown\n", 1)[1].split("````", 1)[0]
    lesson = parse_lesson_text(example, "example")
    assert [s.title for s in lesson.steps] == ["Three code sizes", "The codes"]
    assert lesson.step(1).questions[0].expect == Expectation("test_mse", "lowest", "model.latent")
    assert lesson.step(2).show == ["latent-pca", "classifier"]


def test_a_step_that_shows_an_earlier_steps_runs_is_not_done_before_that_step_ran(tmp_path):
    """Walked in Chromium: step 2 (`use: 1`) was ticked done on its answer alone while step 1 had
    never run, so the progress bar said a step was done that had nothing to show."""
    lesson = parse_lesson_text(TINY_LESSON, "tiny")
    key = student_key(OWNER)
    (question,) = lesson.step(2).questions
    state = save_answer(tmp_path, lesson, key, question, "8")
    assert not step_done(lesson, 2, state)
    state = record_step(tmp_path, "tiny", key, 1, "tiny-step1")
    assert step_done(lesson, 2, state) and not step_done(lesson, 1, state)  # step 1's questions are unanswered


def test_the_colour_lessons_first_step_trains_the_16_number_code_its_text_promises():
    """The `conditional` preset's base code is 4 numbers: on the styles that decoded shapeless blobs
    while the step said "the same code size (16 numbers)" and the next "the shape ... stays"."""
    from core.lessons.runspec import parse_run

    lesson = next(lesson for lesson in load_lessons([SHIPPED_DIR])[0] if lesson.name == "colour-conditional")
    assert "(16 numbers)" in (SHIPPED_DIR / "colour-conditional.md").read_text(encoding="utf-8")
    exp = parse_run(lesson.step(1).run, DataConfig(dataset="styles")).experiment
    assert exp.base.model.latent == 16 and exp.grid == {"model.conditional": [False, True]}
