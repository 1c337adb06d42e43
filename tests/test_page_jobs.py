"""The Train page's side of the jobs (AppTest through app.py): Save again after a failed save, the
teacher's one-click stops, and the note after a server that was killed continues its jobs."""
from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from core.checkpoints import load_run
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.train import train
from ui.state import get_registry

from test_jobs_safety import failing_renames
from test_page_owners import train_tab

JOB_TIMEOUT = 120
TOKEN = "correct horse battery staple"
ALICE = "alice-owner-id-0123456789"


def tiny(epochs=1, name="") -> RunConfig:
    return RunConfig(data=DataConfig(dataset="digits", limit=300),
                     model=ModelConfig(family="dense", hidden=[16], latent=2),
                     train=TrainConfig(epochs=epochs, batch_size=64, device="cpu"), name=name)


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def test_a_failed_save_shows_why_and_save_again_saves_it(no_runs, app_registry, monkeypatch):
    failing_renames(monkeypatch, no_runs, failures=1)
    job = app_registry.start(tiny(name="kept"), owner=ALICE)
    assert app_registry.wait(job, JOB_TIMEOUT).status == "unsaved"

    bob = train_tab(job=job, errors=["Could not save run kept"])  # another student sees why, cannot save it
    assert any("Could not save run kept" in e.value for e in bob.error)
    assert "Only the student who started this job (or the teacher) can save it." in captions(bob)

    alice = train_tab(owner=ALICE, job=job, errors=["Could not save run kept"])
    assert [e.value.replace("\\", "") for e in alice.error] == [  # as shown (escaped Markdown)
        "Could not save run kept (the server's disk is full), so the trained model is kept in memory: ask the "
        "teacher to free some space, then press Save again."]
    alice.button(key="save_again").click().run()
    assert not alice.exception and not alice.error
    assert get_registry().snapshot(job).status == "finished"
    assert "Saved as run **kept**." in captions(alice)
    assert len(load_run(no_runs, "kept").history) == 1


@pytest.fixture
def teacher_server(no_runs, monkeypatch):
    monkeypatch.setenv("AE_LAB_TEACHER_TOKEN", TOKEN)
    monkeypatch.setenv("AE_LAB_MAX_EPOCHS", "10000")


def test_the_teacher_stops_a_students_jobs_or_every_job_from_the_job_list(teacher_server, app_registry):
    alice = [app_registry.start(tiny(epochs=5000, name=f"alice-{i}"), owner=ALICE) for i in range(2)]
    bob = app_registry.start(tiny(epochs=5000, name="bob"), owner="bob-owner-id-0123456789")
    student = train_tab(owner=ALICE, job=alice[0])
    assert not {"stop_student", "stop_every_job"} & {b.key for b in student.button}  # teacher only

    teacher = train_tab(job=alice[0])
    teacher.text_input(key="teacher_token").input(TOKEN).run()
    teacher.button(key="stop_student").click().run()
    assert not teacher.exception
    assert [app_registry.wait(job, JOB_TIMEOUT).status for job in alice] == ["stopped", "stopped"]
    assert app_registry.snapshot(bob).status in ("queued", "loading", "running")
    teacher.button(key="stop_every_job").click().run()
    assert app_registry.wait(bob, JOB_TIMEOUT).status == "stopped"


def test_the_teachers_stop_of_a_student_stops_their_experiment_too(teacher_server, app_registry):
    from core.experiments import ExperimentConfig
    from core.serving.access import owner_key
    from ui.state import get_experiments

    manager = get_experiments()
    grid = ExperimentConfig(name="grid", base=tiny(epochs=5000), grid={"model.latent": [2, 3, 4, 5, 6, 8]})
    name = manager.start(grid, owner=ALICE)
    deadline = time.monotonic() + JOB_TIMEOUT
    while len(alices := [j.id for j in app_registry.summaries() if j.owner_key == owner_key(ALICE)]) < 4:
        assert time.monotonic() < deadline, "her grid queued fewer than her share of 4 runs"
        time.sleep(0.05)
    first = alices[-1]
    teacher = train_tab(job=first)
    teacher.text_input(key="teacher_token").input(TOKEN).run()
    teacher.button(key="stop_student").click().run()
    record = manager.wait(name, timeout=JOB_TIMEOUT)
    # Main stopped her queued jobs, and her grid queued its two waiting runs as soon as there was room.
    assert record["status"] == "stopped"
    assert [v["status"] for v in record["variants"]][4:] == ["stopped", "stopped"]
    assert all(j.status == "stopped" for j in app_registry.summaries() if j.owner_key == owner_key(ALICE))


def test_after_a_kill_the_page_says_the_running_job_continues_from_its_checkpoint(no_runs):
    from core.data import load_dataset
    from core.jobs.restart import write_checkpoint, write_state

    cfg = tiny(epochs=3, name="alice")
    taken = []

    class KeepsCheckpoints:  # what a served registry's job does between epochs
        on_start = on_batch = on_epoch = staticmethod(lambda *args: None)

        def on_checkpoint(self, epoch, take):
            if epoch == 2:
                taken.append(take())

    train(cfg, load_dataset(cfg.data), reporter=KeepsCheckpoints())  # the server was killed during epoch 3
    write_checkpoint(no_runs, "abcd1234", taken[0])
    write_state(no_runs, {"jobs": [{"id": "abcd1234", "name": "alice", "owner": None, "config": cfg.to_dict(),
                                    "running": True}]})
    at = train_tab()
    notes = [i.value.replace("\\", "") for i in at.info if "server restarted" in i.value]  # as shown
    assert notes == ["The server restarted: 1 running job continues from its checkpoint at epoch 2. "
                     "They carry on by themselves; the Train page follows them."]
    done = get_registry().wait("abcd1234", timeout=JOB_TIMEOUT)
    assert done.status == "finished", done.message
    assert [r["epoch"] for r in load_run(no_runs, "alice").history] == [1, 2, 3]


def test_a_student_at_her_share_is_told_in_one_sentence_and_nothing_is_queued(teacher_server, monkeypatch):
    monkeypatch.setenv("AE_LAB_MAX_JOBS_PER_STUDENT", "1")
    registry = get_registry()  # made with the share of 1
    try:
        first = registry.start(tiny(epochs=5000, name="first"), owner=ALICE)
        alice = train_tab(owner=ALICE, job=first, errors=["You already have"])
        alice.text_input(key="cfg_name").input("second").run()
        alice.button(key="start_job").click().run()
        assert [e.value.replace("\\", "") for e in alice.error] == [
            "You already have 1 job queued or running, the most one student may have at once on this server; "
            "wait for one to finish or stop one."]
        assert [j.name for j in registry.summaries()] == ["first"]
    finally:
        registry.stop_all()
        for job in registry.summaries():
            registry.wait(job.id, JOB_TIMEOUT)


def test_the_pages_poll_job_summaries_and_copy_only_the_job_shown(teacher_server, app_registry, monkeypatch):
    """Every tab's sidebar and the Train page poll the light summaries (no loss histories); only the
    job a page shows is copied in full (snapshot). A page that called snapshots() copied every job
    ever run, each with up to 20,000 losses, under the registry's lock, on every poll of every tab."""
    from core.jobs import JobRegistry

    done = [app_registry.start(tiny(name=f"done-{i}"), owner=ALICE) for i in range(3)]
    for job in done:
        assert app_registry.wait(job, JOB_TIMEOUT).status == "finished"
    running = app_registry.start(tiny(epochs=5000, name="long"), owner=ALICE)
    copied = []
    real_snapshot = JobRegistry.snapshot

    def refuse(self):
        raise AssertionError("a page copied every job (snapshots())")

    def counting_snapshot(self, job_id):
        copied.append(job_id)
        return real_snapshot(self, job_id)

    monkeypatch.setattr(JobRegistry, "snapshots", refuse)
    monkeypatch.setattr(JobRegistry, "snapshot", counting_snapshot)
    tab = train_tab(owner=ALICE, job=running)
    assert set(copied) <= {running}  # the job shown, and nothing else
    for page in ("views/runs.py", "views/experiments.py", "views/lessons.py"):
        copied.clear()
        tab.switch_page(page).run()
        assert not tab.exception, (page, [e.value for e in tab.exception])
        assert copied == [], page
    monkeypatch.undo()  # the fixture's clean-up copies every job to stop them
