"""Thirty students share one server fairly (issue 17): a limit on each student's queued and running
jobs, a queue that serves students in turn, the teacher's one-click stops, a limit on one
experiment's work, the dataset store's one load per dataset and one Optuna storage per study."""
from __future__ import annotations

import threading
import time

import pytest

import core.data_store as data_store
from core.config import DataConfig, RunConfig
from core.jobs import JobRegistry
from core.serving.access import owner_key
from core.serving.limits import LimitError

from test_jobs_safety import config as safety_config

WAIT = 120


def config(epochs=1, name="") -> RunConfig:
    return safety_config(epochs, name)


@pytest.fixture
def registry(tmp_path):
    reg = JobRegistry(root=tmp_path / "runs", max_concurrent=1, max_jobs_per_owner=4)
    yield reg
    reg.stop_all()
    for job in reg.summaries():
        reg.wait(job.id, WAIT)


def test_a_student_may_have_four_jobs_queued_or_running_and_the_teacher_more(registry):
    for i in range(4):
        registry.start(config(epochs=10_000, name=f"a{i}"), owner="alice")
    with pytest.raises(LimitError) as refused:
        registry.start(config(name="a4"), owner="alice")
    assert str(refused.value) == ("You already have 4 jobs queued or running, the most one student may have at once "
                                  "on this server; wait for one to finish or stop one.")
    assert registry.room_for("alice") == 0 and registry.room_for("bob") == 4
    registry.start(config(name="b0"), owner="bob")  # another student is not held back
    registry.start(config(name="t0"), owner="teacher-id", teacher=True)  # the teacher is exempt
    registry.start(config(name="cli"))  # so is the CLI (no owner)
    oldest = registry.summaries()[-1].id
    registry.stop(oldest, by="alice")  # one of alice's ends: she may queue again
    registry.wait(oldest, WAIT)
    registry.start(config(name="a4"), owner="alice")


def test_the_queue_serves_students_in_turn_not_one_students_batch_first(registry):
    flood = [registry.start(config(epochs=10_000, name=f"flood-{i}"), owner="alice") for i in range(4)]
    others = [registry.start(config(name=f"once-{s}"), owner=s) for s in ("bob", "carol", "dave")]
    positions = {job.name: job.queue_position for job in registry.summaries() if job.status == "queued"}
    # alice's first job runs; each student who pressed Start once comes before her next three.
    assert positions == {"once-bob": 1, "once-carol": 2, "once-dave": 3, "flood-1": 4, "flood-2": 5, "flood-3": 6}
    registry.stop(flood[0])
    assert registry.wait(others[0], WAIT).status == "finished"  # bob's started next
    assert registry.snapshot(others[1]).status in ("loading", "running", "saving", "finished")


def test_the_teacher_stops_one_students_jobs_or_every_job_in_one_action(registry):
    for i in range(3):
        registry.start(config(epochs=10_000, name=f"a{i}"), owner="alice")
    bobs = registry.start(config(epochs=10_000, name="b0"), owner="bob")
    assert registry.stop_owner(owner_key("alice")) == 3
    for job in registry.summaries():
        if job.name.startswith("a"):
            assert registry.wait(job.id, WAIT).status == "stopped"
    assert registry.snapshot(bobs).status in ("queued", "loading", "running")
    assert registry.stop_all() == 1
    assert registry.wait(bobs, WAIT).status == "stopped"


def test_a_students_experiment_is_bounded_by_its_work_and_its_jobs_by_the_share(tmp_path, monkeypatch):
    from core.experiments import ExperimentConfig, ExperimentManager

    monkeypatch.setenv("AE_LAB_MAX_EXPERIMENT_IMAGES", "20000")
    registry = JobRegistry(root=tmp_path, max_concurrent=1, max_jobs_per_owner=1)
    manager = ExperimentManager(registry, poll_seconds=0.05)
    huge = ExperimentConfig(name="huge", base=config(epochs=500), grid={"model.latent": [2, 4, 8]})
    with pytest.raises(LimitError) as refused:
        manager.start(huge, owner="alice")
    assert str(refused.value) == ("This experiment would train 480,000 images in all (3 runs × epochs × training "
                                  "images), above the 20,000 one student may start at once on this server; use fewer "
                                  "runs, fewer epochs or fewer images.")
    assert manager.records() == []
    # Within the work limit, a grid bigger than the student's job share still runs, one job at a time.
    small = ExperimentConfig(name="small", base=config(epochs=1), grid={"model.latent": [2, 4, 8]})
    record = manager.wait(manager.start(small, owner="alice"), timeout=300)
    assert record["status"] == "finished", record["message"]
    assert [v["status"] for v in record["variants"]] == ["finished"] * 3
    teacher = manager.start(ExperimentConfig(name="teachers", base=config(epochs=500), grid={"model.latent": [2, 4]}),
                            owner="teacher-id", teacher=True)
    manager.stop(teacher)
    manager.wait(teacher, timeout=WAIT)


def test_the_dataset_store_loads_a_dataset_once_for_everyone_who_asks_at_once(monkeypatch):
    calls = []
    real_load = data_store.load_dataset

    def slow_load(cfg, progress=None):
        calls.append(cfg)
        time.sleep(0.5)
        return real_load(cfg, progress)

    monkeypatch.setattr(data_store, "load_dataset", slow_load)
    store = data_store.DatasetStore()
    got = []
    students = [threading.Thread(target=lambda: got.append(store.get(DataConfig(dataset="digits"))))
                for _ in range(8)]
    for thread in students:
        thread.start()
    for thread in students:
        thread.join(WAIT)
    assert len(calls) == 1 and len(got) == 8 and all(d is got[0] for d in got)


def test_a_failed_load_reaches_everyone_waiting_and_is_not_remembered(monkeypatch, tmp_path):
    from core.data import DataError

    store = data_store.DatasetStore()
    missing = DataConfig(dataset="folder", folder=str(tmp_path / "nothing-here"))
    with pytest.raises(DataError):
        store.get(missing)
    (tmp_path / "nothing-here").mkdir()
    with pytest.raises(DataError):  # tried again (an empty folder now), not served from a memory of the failure
        store.get(missing)
    assert not store._loading


def test_a_study_read_on_every_rerun_opens_one_database_engine(tmp_path, monkeypatch):
    import sqlalchemy

    from core.experiments.config import ExperimentConfig, ParamSpace, SearchConfig
    from core.experiments.search import load_study, open_study

    exp = ExperimentConfig(name="s", base=config(), search=SearchConfig(space={"train.lr": ParamSpace("float", 1e-3, 1e-1)},
                                                                     trials=2))
    open_study(exp, tmp_path)
    engines = []
    real_create = sqlalchemy.engine.create_engine
    monkeypatch.setattr(sqlalchemy.engine, "create_engine", lambda *a, **k: engines.append(1) or real_create(*a, **k))
    for _ in range(20):  # twenty reruns of the Experiments page
        assert load_study(tmp_path, "s") is not None
    assert engines == []


def test_the_teachers_stop_of_a_student_also_stops_their_experiments_waiting_runs(tmp_path):
    from core.experiments import ExperimentConfig, ExperimentManager

    registry = JobRegistry(root=tmp_path, max_concurrent=1, max_jobs_per_owner=2)
    manager = ExperimentManager(registry, poll_seconds=0.05)
    grid = ExperimentConfig(name="grid", base=config(epochs=1000), grid={"model.latent": [2, 3, 4, 5, 6, 8]})
    name = manager.start(grid, owner="alice")
    bobs = registry.start(config(epochs=10_000, name="b0"), owner="bob")
    deadline = time.monotonic() + WAIT
    while sum(1 for j in registry.summaries() if j.owner_key == owner_key("alice")) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert manager.stop_owner(owner_key("alice")) + registry.stop_owner(owner_key("alice")) >= 2
    record = manager.wait(name, timeout=WAIT)
    # Her grid queued nothing more once the teacher stopped her: the four runs left never started.
    assert record["status"] == "stopped"
    assert sum(1 for j in registry.summaries() if j.owner_key == owner_key("alice")) == 2
    assert [v["status"] for v in record["variants"]][2:] == ["stopped"] * 4
    assert registry.snapshot(bobs).status in ("queued", "loading", "running")
    assert manager.stop_all() == 0  # nothing of anyone's is left to stop but bob's own job
    registry.stop_all()
    registry.wait(bobs, WAIT)
