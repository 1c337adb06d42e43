"""The Runs page's resume, export and import (AppTest through app.py)."""
from __future__ import annotations

from core.bundles import export_bytes
from core.checkpoints import list_runs, load_run
from ui.state import get_registry

from apptest_helpers import open_app_page

JOB_TIMEOUT = 120


def test_resume_from_the_runs_page_continues_the_run_on_the_train_page(app_runs):
    at = open_app_page("views/runs.py")
    at.selectbox(key="resume_run_name").set_value("tiny-conv")
    at.number_input(key="resume_epochs").set_value(2)
    at.button(key="resume_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Train"]  # it switched to the Train page, following the job
    job = at.query_params["job"]
    job = job[0] if isinstance(job, list) else job
    registry = get_registry()
    snap = registry.snapshot(job)
    assert snap.resume_from == "tiny-conv" and snap.owner is not None
    done = registry.wait(job, timeout=JOB_TIMEOUT)
    assert done.status == "finished", done.message
    assert [r["epoch"] for r in load_run(app_runs, "tiny-conv").history] == [1, 2, 3, 4]


def test_export_offers_a_download_and_import_adds_renamed_runs(app_runs, trained_runs):
    at = open_app_page("views/runs.py")
    at.multiselect(key="export_runs").set_value(["tiny-conv", "tiny-vae"]).run()
    (download,) = at.get("download_button")
    assert download.proto.label == "Download 2 run(s)"
    bundle = export_bytes(trained_runs, ["tiny-conv"])
    at.file_uploader(key="import_upload").set_value(("lesson.zip", bundle, "application/zip")).run()
    at.button(key="import_runs").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == [
        "Imported tiny-conv as tiny-conv-2, because a run named tiny-conv already exists."]
    assert "tiny-conv-2" in {r["name"] for r in list_runs(app_runs)}


def test_a_refused_bundle_is_one_sentence_and_adds_nothing(app_runs):
    at = open_app_page("views/runs.py", errors=["not a zip"])
    before = {r["name"] for r in list_runs(app_runs)}
    at.file_uploader(key="import_upload").set_value(("evil.zip", b"not a zip at all", "application/zip")).run()
    at.button(key="import_runs").click().run()
    assert [e.value for e in at.error] == [
        "This file is not a zip (or it is damaged); export runs again and import that file."]
    assert {r["name"] for r in list_runs(app_runs)} == before
