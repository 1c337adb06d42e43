"""`python -m core.cli lesson list | lesson run | report` (in-process through core.cli.main):
JSON last lines, the runs a lesson run trains, the report in its three forms, a student's report by
their key, and plain one-line errors."""
from __future__ import annotations

import io
import json
import zipfile

import nbformat
import pytest
import torch

from core.cli import main
from core.lessons import parse_lesson_text
from core.lessons.store import hand_in, save_answer, student_key
from lesson_files import TINY_LESSON, write_lesson

LESSON = "tiny"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see tests/test_lessons_run.py
    yield
    torch.set_num_threads(threads)


def cli(*argv: str) -> tuple[int, dict | None, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    lines = out.getvalue().strip().splitlines()
    return code, json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None, err.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny lesson (from AE_LAB_LESSON_DIRS) run once by `lesson run --epochs 1`; returns its folders."""
    folder = tmp_path_factory.mktemp("lessons")
    write_lesson(folder, LESSON, TINY_LESSON)
    out = tmp_path_factory.mktemp("checkpoints")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AE_LAB_LESSON_DIRS", str(folder))
        code, summary, err = cli("lesson", "run", LESSON, "--epochs", "1", "--out", str(out))
    assert code == 0, err
    return folder, out, summary


@pytest.fixture
def lessons_env(trained, monkeypatch):
    monkeypatch.setenv("AE_LAB_LESSON_DIRS", str(trained[0]))
    return trained


def test_lesson_list_names_every_lesson_and_every_broken_file(tmp_path, monkeypatch):
    write_lesson(tmp_path, LESSON, TINY_LESSON)
    write_lesson(tmp_path, "broken", TINY_LESSON.replace("dataset: digits", "dataset: imagenet"))
    monkeypatch.setenv("AE_LAB_LESSON_DIRS", str(tmp_path))
    code, listing, err = cli("lesson", "list")
    assert code == 0
    names = {entry["name"]: entry for entry in listing["lessons"]}
    assert names[LESSON] == {"name": LESSON, "title": "Tiny latent lesson", "steps": 3}
    assert {"fashion-latent", "dense-mnist", "mnist-conv", "colour-conditional", "photos-size-dropout"} <= set(names)
    assert [p["name"] for p in listing["problems"]] == ["broken"]
    assert "broken.md, line 1: dataset: imagenet is not a dataset" in err


def test_lesson_run_trains_every_step_with_the_epochs_override(trained):
    _, out, summary = trained
    assert summary["lesson"] == LESSON and summary["dataset"] == "digits" and summary["fallback"] is False
    assert [(s["step"], len(s["runs"]), s["status"]) for s in summary["steps"]] == [(1, 2, "finished"),
                                                                                   (3, 2, "finished")]
    first = summary["steps"][0]
    assert "--epochs 1" in first["command"] and first["command"].endswith(f"--name {first['experiment']}")
    for run in first["runs"]:
        info = json.loads((out / run / "info.json").read_text())
        assert info["epochs_run"] == 1 and info["experiment"] == first["experiment"]
        assert (out / ".lessons" / "probes" / f"{run}.json").is_file()  # step 2 shows classifiers: trained too


def test_report_writes_html_zip_and_notebook(lessons_env, tmp_path):
    _, out, summary = lessons_env
    code, html_summary, err = cli("report", "--lesson", LESSON, "--out", str(out), "--to", str(tmp_path / "r.html"))
    assert code == 0, err
    html = (tmp_path / "r.html").read_text()
    assert html_summary["steps"] == 3 and html_summary["runs"] == 4
    assert html.count('<img alt="') == html_summary["figures"] and html_summary["figures"] >= 8
    assert "Tiny latent lesson" in html and "python -m core.cli experiment" in html

    code, zip_summary, err = cli("report", "--lesson", LESSON, "--out", str(out), "--to", str(tmp_path / "r.zip"))
    assert code == 0, err
    with zipfile.ZipFile(tmp_path / "r.zip") as archive:
        names = archive.namelist()
        markdown = archive.read(f"{LESSON}/report.md").decode()
    pictures = [n for n in names if n.endswith(".png")]
    assert len(pictures) == html.count('<img alt="')
    assert all(f"(figures/{n.rsplit('/', 1)[1]})" in markdown for n in pictures)

    code, nb_summary, err = cli("report", "--lesson", LESSON, "--to", str(tmp_path / "r.ipynb"), "--epochs", "1")
    assert code == 0, err
    notebook = nbformat.read(tmp_path / "r.ipynb", as_version=4)
    nbformat.validate(notebook)
    assert "EPOCHS = 1" in "".join(cell.source for cell in notebook.cells)


def test_report_of_a_students_work_by_their_key(lessons_env, tmp_path):
    _, out, _ = lessons_env
    lesson = parse_lesson_text(TINY_LESSON, LESSON)
    key = student_key("student-" + "s" * 16)
    save_answer(out, lesson, key, lesson.step(1).questions[1], "Edges blur <first>.")
    hand_in(out, lesson, key, "Sam", b"<html></html>")
    code, _, err = cli("report", "--lesson", LESSON, "--owner", key[:10], "--out", str(out),
                       "--to", str(tmp_path / "sam.html"))
    assert code == 0, err
    html = (tmp_path / "sam.html").read_text()
    assert "Handed in by Sam" in html and "Edges blur &lt;first&gt;." in html
    # Sam trained nothing: the report shows the runs `lesson run` trained before class, and says so.
    assert html.count("trained by the teacher before class") == 3 and html.count('<img alt="') >= 8


@pytest.mark.parametrize("argv, message", [
    (["report", "--lesson", LESSON, "--to", "r.pdf"], "write the report to a .html, .zip or .ipynb file"),
    (["report", "--lesson", "nope", "--to", "r.html"], "There is no lesson named nope"),
    (["report", "--lesson", LESSON, "--owner", "abc", "--to", "r.html"], "first 8 characters"),
    (["report", "--lesson", LESSON, "--owner", "ffffffffff", "--to", "r.html"], "has the key ffffffffff"),
    (["report", "--experiment", "nope", "--to", "r.html"], "There is no experiment named nope"),
    (["report", "--run", "nope", "--to", "r.ipynb"], "A notebook is made of a lesson"),
    (["lesson", "run", LESSON, "--epochs", "0"], "at least 1 epoch"),
])
def test_mistakes_are_one_plain_line(lessons_env, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, summary, err = cli(*argv, *(["--out", str(lessons_env[1])] if argv[0] == "report" else []))
    assert code == 2 and summary is None
    assert err.startswith("error: ") and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_report_of_one_experiment_and_of_one_run(lessons_env, tmp_path):
    _, out, summary = lessons_env
    first = summary["steps"][0]
    code, report, err = cli("report", "--experiment", first["experiment"], "--out", str(out),
                            "--to", str(tmp_path / "e.html"))
    assert code == 0, err
    assert report["runs"] == 2
    code, report, err = cli("report", "--run", first["runs"][0], "--out", str(out), "--to", str(tmp_path / "r.zip"))
    assert code == 0, err
    with zipfile.ZipFile(tmp_path / "r.zip") as archive:
        assert sum(n.endswith(".png") for n in archive.namelist()) == report["figures"] >= 4
    code, _, err = cli("report", "--run", first["runs"][0], "--out", str(out), "--to", str(tmp_path / "r.zip"))
    assert code == 2 and "already exists" in err
