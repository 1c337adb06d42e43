"""Jobs have owners (issue 9), on the Train page through AppTest: a browser session owns the jobs
it starts (its id in ?owner= survives a reload); others see them but cannot stop them; the teacher,
with AE_LAB_TEACHER_TOKEN entered in the sidebar, can. And the restart note, said once."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.config import DataConfig, RunConfig, TrainConfig
from ui.state import get_registry

from apptest_helpers import expect_errors, open_app_page

# The sidebar (teacher box) and app.py's owner id and restart note are under test: run app.py the
# way a real server does.

JOB_TIMEOUT = 120
TOKEN = "correct horse battery staple"


def long_run(name: str) -> RunConfig:
    return RunConfig(data=DataConfig(dataset="digits"), train=TrainConfig(epochs=1000, batch_size=16, device="cpu"),
                     name=name)


def train_tab(owner: str | None = None, job: str | None = None) -> AppTest:
    """A browser tab on the Train page; `owner`: the ?owner= its URL carries (a reload)."""
    query = {"owner": owner} if owner else {}
    if job:
        query["job"] = job
    return open_app_page("views/train.py", query=query)


def param(at: AppTest, name: str) -> str:
    value = at.query_params[name]
    return value[0] if isinstance(value, list) else value


@pytest.fixture
def teacher_server(no_runs, monkeypatch):
    monkeypatch.setenv("AE_LAB_TEACHER_TOKEN", TOKEN)
    monkeypatch.setenv("AE_LAB_MAX_EPOCHS", "10000")  # long_run's jobs must keep running (default limit 1000)


@pytest.fixture
def registry(teacher_server, app_registry):
    return app_registry


def test_the_starting_tab_owns_its_job_and_keeps_it_after_a_reload(registry):
    alice = train_tab()
    owner = param(alice, "owner")
    alice.text_input(key="cfg_name").input("alice-run").run()
    alice.number_input(key="cfg_epochs").set_value(1000).run()
    alice.button(key="start_job").click().run()
    job = param(alice, "job")
    assert registry.snapshot(job).owner == owner
    reloaded = train_tab(owner=owner, job=job)  # a reload: a new session, the same URL
    assert param(reloaded, "owner") == owner
    stop = reloaded.button(key="stop_job")
    assert not stop.disabled
    stop.click().run()
    assert registry.wait(job, timeout=JOB_TIMEOUT).status == "stopped"


def test_another_student_sees_the_job_but_cannot_stop_it_and_the_teacher_can(registry):
    job = registry.start(long_run("alice-run"), owner="alice-owner-id-0123456789")
    bob = train_tab(job=job)
    assert param(bob, "owner") != "alice-owner-id-0123456789"
    assert bob.button(key="stop_job").disabled
    assert "Only the student who started this job (or the teacher) can stop it." in [c.value for c in bob.caption]
    assert registry.snapshot(job).status in ("loading", "running")

    expect_errors(bob, "That is not the teacher token")
    bob.text_input(key="teacher_token").input("guess").run()
    assert "That is not the teacher token; check it and try again." in [e.value for e in bob.error]
    assert bob.button(key="stop_job").disabled
    expect_errors(bob)  # the right token: no error box any more
    bob.text_input(key="teacher_token").input(TOKEN).run()
    assert not bob.exception
    assert any("Teacher" in c.value for c in bob.caption)
    bob.button(key="stop_job").click().run()
    assert registry.wait(job, timeout=JOB_TIMEOUT).status == "stopped"


def test_a_forged_owner_in_the_url_is_replaced(registry):
    at = train_tab(owner="../../etc")
    assert param(at, "owner") != "../../etc" and len(param(at, "owner")) >= 16


def test_the_restart_note_is_said_once_and_can_be_dismissed(no_runs):
    from core.jobs.restart import write_state

    write_state(no_runs, {"queued": [{"id": "abcd1234", "name": "bob", "owner": None,
                                      "config": RunConfig(data=DataConfig(dataset="digits"),
                                                          train=TrainConfig(epochs=1, batch_size=512, device="cpu"),
                                                          name="bob").to_dict()}],
                          "saved": [{"run": "alice", "epoch": 12, "owner": None}], "lost": 0})
    at = train_tab()
    notes = [i.value for i in at.info if "server restarted" in i.value]
    assert notes == ["The server restarted: 1 run was saved at epoch 12, 1 queued run was restored. "
                     "Continue them with Resume on the Runs page."]
    get_registry().wait("abcd1234", timeout=JOB_TIMEOUT)
    at.button(key="dismiss_restart_note").click().run()
    assert not [i.value for i in at.info if "server restarted" in i.value]
