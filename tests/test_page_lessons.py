"""The Lessons page (AppTest through app.py): first in the navigation; a student runs a step as
their own experiment, sees its figures, answers (kept on the server, compared with the runs),
trains the classifiers of a step, hands in; the teacher sees the hand-in; a broken lesson file is
one sentence and none of its text reaches the page; a limit refuses a run in one sentence."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from apptest_helpers import APP, charts, checked
from core.lessons import parse_lesson_text
from core.lessons.runner import expected_answer, step_record, variant_rows
from core.lessons.store import hand_ins, read_state, student_key
from lesson_files import TINY_LESSON, write_lesson

LESSON = "tiny"
WAIT = 240
HOSTILE = """---
title: Broken
goal: x
dataset: digits
---
## A step
Look <script>alert('lesson')</script> here.
"""


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see tests/test_lessons_run.py
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def lessons(tmp_path, monkeypatch, no_runs):
    folder = tmp_path / "lesson-files"
    write_lesson(folder, LESSON, TINY_LESSON)
    monkeypatch.setenv("AE_LAB_LESSON_DIRS", str(folder))
    return folder


def open_lesson(params: dict[str, str] | None = None, state: dict | None = None, errors=()) -> AppTest:
    """The Lessons page; every run fails the test on an exception or an error box that holds none of `errors`."""
    at = checked(AppTest.from_file(APP, default_timeout=120), errors)
    for key, value in {"lesson": LESSON, **(params or {})}.items():
        at.query_params[key] = value
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def wait_for_step(at: AppTest, number: int) -> dict:
    from ui.state import get_experiments

    key = student_key(at.session_state["owner_id"])
    name = read_state(no_runs_root(), LESSON, key)["steps"][str(number)]["experiment"]
    record = get_experiments().wait(name, timeout=WAIT)
    assert record["status"] == "finished", record
    return record


def no_runs_root() -> Path:
    from ui.state import checkpoints_root

    return Path(checkpoints_root())


def test_lessons_is_the_first_page_and_says_when_the_data_falls_back(no_runs):
    at = checked(AppTest.from_file(APP, default_timeout=120))
    at.run()
    no_errors(at)
    assert at.title[0].value == "Lessons"
    titles = at.selectbox(key="lesson_name").options  # shown by title
    assert len(titles) == 5 and "A deep dense autoencoder, 784-1000-500-250-2" in titles
    at.selectbox(key="lesson_name").set_value("dense-mnist").run()
    no_errors(at)
    notes = [i.value for i in at.info]
    assert any("written for MNIST, which this server does not have" in n and "digits" in n for n in notes), notes
    assert (at.query_params["lesson"], at.query_params["step"]) == ("dense-mnist", "1")
    assert at.radio(key="lesson_step").options[0].startswith("1 · ")


def test_a_lesson_finds_its_dataset_in_a_data_folder_the_teacher_added(no_runs, tmp_path, monkeypatch,
                                                                       app_registry):
    """MNIST in torchvision's layout inside an AE_LAB_DATA_DIRS folder (not the app's own data/):
    the MNIST lesson runs on it, not on the built-in digits, and its Run trains on it."""
    from idx_helpers import write_mnist

    write_mnist(tmp_path / "MNIST-10k", n_train=120, n_test=30)
    monkeypatch.setenv("AE_LAB_DATA_DIRS", str(tmp_path / "MNIST-10k"))
    at = open_lesson({"lesson": "dense-mnist"})
    no_errors(at)
    assert not [i.value for i in at.info if "does not have" in i.value]
    captions = " ".join(c.value for c in at.caption)
    assert "This step trains" in captions and "on 108 training images" in captions, captions
    at.button(key="lesson_run_1").click().run()
    no_errors(at)
    assert not at.error, [e.value for e in at.error]
    from core.experiments import load_record

    key = student_key(at.session_state["owner_id"])
    name = read_state(no_runs_root(), "dense-mnist", key)["steps"]["1"]["experiment"]
    assert load_record(no_runs_root(), name)["config"]["base"]["data"]["data_root"] == "MNIST-10k"


def test_a_broken_lesson_is_one_sentence_and_none_of_its_text_reaches_the_page(lessons):
    write_lesson(lessons, "broken", HOSTILE)
    at = open_lesson({"lesson": "broken"})
    no_errors(at)
    assert at.selectbox(key="lesson_name").value != "broken"  # not a lesson: it cannot be picked
    assert "Broken" not in at.selectbox(key="lesson_name").options
    captions = [c.value for c in at.caption]
    as_text = [re.sub(r"\\(.)", r"\1", c) for c in captions]  # what the escaped Markdown shows
    assert any("broken.md, line 7: step 1's text holds HTML (<script>)" in c for c in as_text), as_text
    shown = " ".join(m.value for m in at.markdown) + " ".join(captions)
    assert "alert('lesson')" not in shown
    assert "<script>" not in shown  # the sentence quotes the tag escaped (\\<script\\>): shown as text


def test_a_student_runs_a_step_answers_hands_in_and_the_teacher_sees_it(lessons, app_registry):
    at = open_lesson()
    no_errors(at)
    owner = at.session_state["owner_id"]
    at.button(key="lesson_run_1").click().run()
    no_errors(at)
    record = wait_for_step(at, 1)
    assert record["owner"] == owner and len(record["variants"]) == 2  # the student's own jobs
    at.run()
    no_errors(at)
    figures = at.main.get_by_key("lesson_figures")
    titles = [m.value for m in figures.get("markdown")]  # each figure's title, above its chart
    assert "**Loss per epoch of every run**" in titles and len(figures.get("image")) >= 2  # reconstructions, plane grid
    assert "**Test MSE against latent**" in titles
    assert len(charts(figures)) >= 3

    # Answers: kept on the server at once; the choice compared with the runs.
    lesson = parse_lesson_text(TINY_LESSON, LESSON)
    key = student_key(owner)
    rows = variant_rows(no_runs_root(), step_record(no_runs_root(), lesson, lesson.step(1), key))
    right = expected_answer(lesson.step(1).questions[0].expect, rows)[0]
    wrong = next(c for c in ("2", "8") if c != right)
    at.radio(key=f"lesson_answer_{LESSON}_s1q1").set_value(wrong).run()
    assert any("Your runs say otherwise" in w.value for w in at.warning)
    at.radio(key=f"lesson_answer_{LESSON}_s1q1").set_value(right).run()
    assert [s.value for s in at.success] == ["Matches your runs."]
    at.text_area(key=f"lesson_answer_{LESSON}_s1q2").input("The <b>edges</b> blur.").run()
    at.number_input(key=f"lesson_answer_{LESSON}_s1q3").set_value(2).run()
    no_errors(at)
    answers = read_state(no_runs_root(), LESSON, key)["answers"]
    assert {k: v["value"] for k, v in answers.items()} == {"s1q1": right, "s1q2": "The <b>edges</b> blur.", "s1q3": 2}

    # A reload (a new session with the same address) shows the answers kept on the server.
    again = open_lesson({"owner": owner, "step": "1"})
    assert again.radio(key=f"lesson_answer_{LESSON}_s1q1").value == right
    assert again.text_area(key=f"lesson_answer_{LESSON}_s1q2").value == "The <b>edges</b> blur."
    assert again.number_input(key=f"lesson_answer_{LESSON}_s1q3").value == 2
    assert [w.value for w in again.warning] == [], "an unasked-for warning"

    # Step 2 uses step 1's runs: it trains their classifiers, then shows them.
    again.radio(key="lesson_step").set_value(2).run()
    again.button(key="lesson_probes_2").click().run()
    no_errors(again)
    for job in app_registry.snapshots():
        if job.kind == "probe":
            app_registry.wait(job.id, timeout=WAIT)
    again.run()  # the page keeps the finished classifiers' results
    again.run()
    no_errors(again)
    frames = [frame for _, frame in charts(again.main.get_by_key("lesson_figures"))]
    assert sum({"true", "predicted", "count"} <= set(frame.columns) for frame in frames) == 2  # two confusion matrices

    # Hand in: the report is kept with the answers, and the teacher lists it.
    again.text_input(key="lesson_student_name").input("Ana").run()
    again.button(key="lesson_hand_in").click().run()
    no_errors(again)
    assert any("Handed in" in s.value for s in again.success)
    (row,) = hand_ins(no_runs_root(), LESSON)
    assert row["student"] == "Ana" and row["answers"]["s1q1"] == right
    report = (no_runs_root() / ".lessons" / LESSON / "handins" / f"{key}.html").read_text()
    assert "The &lt;b&gt;edges&lt;/b&gt; blur." in report and report.count('<img alt="') >= 6

    teacher = open_lesson(state={"is_teacher": True})
    no_errors(teacher)
    (listed,) = [df.value for df in teacher.dataframe if "student" in df.value]
    assert listed["student"].tolist() == ["Ana"] and listed["s1q2"].tolist() == ["The <b>edges</b> blur."]
    assert not [df for df in again.dataframe if "student" in df.value]  # a student sees no one's hand-ins


def test_a_run_over_the_servers_limit_is_refused_in_one_sentence(lessons, app_registry, monkeypatch):
    monkeypatch.setenv("AE_LAB_MAX_EPOCHS", "1")  # the step trains for 2
    at = open_lesson(errors=["above this server's limit"])
    at.button(key="lesson_run_1").click().run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert "2 epochs are above this server's limit of 1" in error
    assert app_registry.snapshots() == []  # nothing was queued


def test_projector_mode_shows_the_lesson_text_large(lessons):
    at = open_lesson({"projector": "1"})
    no_errors(at)
    assert any("stMarkdownContainer\"] p" in str(h.proto.body) for h in at.get("html")), "no projector style"
    plain = open_lesson()
    assert not any("stMarkdownContainer\"] p" in str(h.proto.body) for h in plain.get("html"))


def test_runs_trained_before_class_show_to_a_student_who_has_not_run(lessons, app_registry):
    import io

    from core.cli import main

    assert main(["lesson", "run", LESSON, "--epochs", "1", "--out", str(no_runs_root())], io.StringIO(),
                io.StringIO()) == 0
    at = open_lesson()
    no_errors(at)
    assert any("your teacher trained before class" in c.value for c in at.caption)
    assert at.button(key="lesson_run_1").label == "Run my own"
    figures = at.main.get_by_key("lesson_figures")
    assert "**Loss per epoch of every run**" in [m.value for m in figures.get("markdown")] and charts(figures)


def _live_search_script():
    import ui.lesson_parts as parts

    class Experiments:
        def record(self, name):
            return {"status": "running", "config": {"search": {"trials": 6}},
                    "variants": [{"index": 0, "status": "finished", "label": "trial 1", "factors": {}},
                                 {"index": 1, "status": "running", "label": "trial 2", "factors": {}}]}

    kept = parts.get_experiments, parts.variants_table, parts.loss_multiples  # the module is the process's
    parts.get_experiments = Experiments
    parts.variants_table = parts.loss_multiples = lambda record, key: None
    try:
        parts.live_step("search", "polling")
    finally:
        parts.get_experiments, parts.variants_table, parts.loss_multiples = kept


def test_a_searchs_progress_counts_every_trial_it_will_ask_not_only_those_asked_so_far():
    """A search asks its trials one by one: 1 of 2 asked done is 1 of its 6 trials, not half of it."""
    at = checked(AppTest.from_function(_live_search_script, default_timeout=30))
    at.run()
    (progress,) = at.get("progress")
    assert progress.proto.text == "1 of 6 trials done · running"
    assert abs(progress.proto.value - 1 / 6 * 100) < 1


def test_the_sidebar_names_the_lessons_own_dataset_and_the_data_pages_elsewhere(no_runs):
    at = open_lesson({"lesson": "colour-conditional"})
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    assert "**Dataset:**" in sidebar and "(this page's)" in sidebar and "Digits" not in sidebar, sidebar
    at.switch_page("views/data.py").run()
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    assert "(this page's)" not in sidebar and "**Dataset:** Digits" in sidebar, sidebar
