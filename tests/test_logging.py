"""Logging (core.logs, ui.errors): what a teacher debugging a class finds in <checkpoints>/.logs —
a page's unexpected error with its traceback (the student sees one sentence), a job's life, the
CLI's commands — and what is never there (the teacher token, the guesses at it)."""
from __future__ import annotations

import io
import logging

import pytest

from core.logs import log_file, setup_logging

from apptest_helpers import expect_errors, open_app_page

TOKEN = "correct horse battery staple"
SERVER_PATH = "/srv/secret/place.py"


def boom(*_args, **_kwargs):
    raise KeyError(f"a bug at {SERVER_PATH}")


def unexpected_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "ui.errors" and r.exc_info]


@pytest.mark.parametrize("where", ["caught by the page", "past the page"])
def test_an_unexpected_error_is_one_sentence_on_the_page_and_a_traceback_in_the_log(app_runs, monkeypatch, caplog,
                                                                                     where):
    from ui import inspect_cache, widgets
    from ui.errors import UNEXPECTED

    # The Reconstructions page catches what loading the test split raises; upscale_for it does not.
    monkeypatch.setattr(*((inspect_cache, "test_split", boom) if where == "caught by the page"
                          else (widgets, "upscale_for", boom)))
    caplog.set_level(logging.ERROR, logger="ui.errors")
    at = open_app_page("views/reconstructions.py", {"selected_run": "tiny-conv"}, errors=[UNEXPECTED])
    assert [e.value for e in at.error] == [UNEXPECTED]
    assert not at.exception
    page_text = " ".join(str(e.value) for e in at.main.children.values() if hasattr(e, "value"))
    assert SERVER_PATH not in page_text and "Traceback" not in page_text
    records = unexpected_records(caplog)
    assert len(records) == 1 and records[0].exc_info[0] is KeyError
    # The same record, traceback and all, is in the log file beside the runs.
    logged = log_file(app_runs).read_text(encoding="utf-8")
    assert "Traceback" in logged and SERVER_PATH in logged and "boom" in logged


def test_a_refusal_a_page_shows_on_purpose_is_not_logged_as_a_bug(app_runs, monkeypatch, caplog):
    from core.checkpoints import CheckpointError
    from ui import inspect_cache

    def refuse(*_args, **_kwargs):
        raise CheckpointError("Run tiny-conv is damaged; delete it and train it again.")

    monkeypatch.setattr(inspect_cache, "test_split", refuse)
    caplog.set_level(logging.ERROR, logger="ui.errors")
    at = open_app_page("views/reconstructions.py", {"selected_run": "tiny-conv"}, errors=["is damaged"])
    assert [e.value for e in at.error if "is damaged" in e.value]  # core's own sentence, not UNEXPECTED
    assert not unexpected_records(caplog)


def test_a_jobs_life_is_in_the_log_file(tmp_path):
    from test_jobs import WAIT, config
    from core.jobs import JobRegistry

    root = tmp_path / "runs"
    assert setup_logging(root) == log_file(root)
    registry = JobRegistry(root=root, max_concurrent=1)
    job_id = registry.start(config(epochs=2, name="logged"))
    assert registry.wait(job_id, WAIT).status == "finished"
    logged = log_file(root).read_text(encoding="utf-8")
    for line in (f"job {job_id} queued", f"job {job_id} (train logged", f"job {job_id} epoch 1/2",
                 f"job {job_id} epoch 2/2", f"job {job_id} ended finished after 2 epochs; saved as run logged",
                 "saved run logged"):
        assert line in logged, (line, logged)


def test_the_teacher_token_and_the_guesses_never_reach_the_log(no_runs, monkeypatch):
    monkeypatch.setenv("AE_LAB_TEACHER_TOKEN", TOKEN)
    guesses = [TOKEN[:-1], TOKEN + "!", TOKEN.upper()]
    at = expect_errors(open_app_page("views/train.py"), "not the teacher token")
    for guess in guesses:
        at.text_input(key="teacher_token").input(guess).run()
    at.text_input(key="teacher_token").input(TOKEN).run()
    assert any("Teacher: you can stop any job." in c.value for c in at.caption)
    logged = log_file(no_runs).read_text(encoding="utf-8")
    assert logged.count("teacher token refused") == len(guesses) and "teacher token accepted" in logged
    assert "correct horse" not in logged.lower() and "battery" not in logged.lower()


def test_the_cli_logs_to_its_out_folder_and_keeps_stderr_for_its_own_lines(tmp_path, monkeypatch):
    from core.cli.main import main
    from core.cli.output import EXIT_UNEXPECTED

    out, err = io.StringIO(), io.StringIO()
    assert main(["list", "--out", str(tmp_path)], out, err) == 0
    assert err.getvalue() == ""  # no log line on the CLI's stderr
    monkeypatch.setattr("core.checkpoints.list_runs", boom)  # cmd_list imports it when it runs
    out, err = io.StringIO(), io.StringIO()
    assert main(["list", "--out", str(tmp_path)], out, err) == EXIT_UNEXPECTED
    said = err.getvalue().splitlines()
    assert len(said) == 1 and "Traceback" not in said[0] and str(log_file(tmp_path)) in said[0]
    logged = log_file(tmp_path).read_text(encoding="utf-8")
    assert "cli list started" in logged and "cli list failed unexpectedly" in logged and "Traceback" in logged


def test_a_cli_command_prints_no_log_records_even_after_the_app_set_up_logging(tmp_path, capsys):
    """The CLI's stderr is its progress and one error line: in a process where the app attached the
    stderr handler before (as the test suite is), a CLI command detaches it."""
    from core.cli import main as cli

    setup_logging(tmp_path / "app-runs")  # as app.py does
    assert cli(["resume", "nope", "--epochs", "1", "--out", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err == "error: There is no run named nope; pick one of the saved runs.\n"
    assert "cli resume refused" in log_file(tmp_path / "runs").read_text(encoding="utf-8")
