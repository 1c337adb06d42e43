"""The Runs page's resume, export and import (AppTest through app.py)."""
from __future__ import annotations

import json


from core.bundles import export_bytes
from core.checkpoints import list_runs, load_run
from core.serving.access import owner_key
from ui.owners import OWNER_KEY
from ui.state import get_registry

from apptest_helpers import open_app_page

ALICE, BOB = "alice-owner-id-00000001", "bob-owner-id-0000000002"


def own(root, name: str, owner: str) -> None:
    info_file = root / name / "info.json"
    info_file.write_text(json.dumps({**json.loads(info_file.read_text()), "owner": owner_key(owner)}))

JOB_TIMEOUT = 120


def test_resume_from_the_runs_page_continues_the_run_on_the_train_page(app_runs):
    own(app_runs, "tiny-conv", ALICE)
    at = open_app_page("views/runs.py", {OWNER_KEY: ALICE})
    at.selectbox(key="resume_run_name").set_value("tiny-conv").run()
    at.number_input(key="resume_epochs").set_value(2)
    at.button(key="resume_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Train"]  # it switched to the Train page, following the job
    job = at.query_params["job"]
    job = job[0] if isinstance(job, list) else job
    registry = get_registry()
    snap = registry.snapshot(job)
    assert snap.resume_from == "tiny-conv" and snap.owner_key == owner_key(ALICE)
    done = registry.wait(job, timeout=JOB_TIMEOUT)
    assert done.status == "finished", done.message
    assert [r["epoch"] for r in load_run(app_runs, "tiny-conv").history] == [1, 2, 3, 4]


def test_export_offers_a_download_and_import_adds_renamed_runs(app_runs, trained_runs):
    at = open_app_page("views/runs.py")
    at.multiselect(key="export_runs").set_value(["tiny-conv", "tiny-vae"]).run()
    # the export's button (the page offers a run's report as a download too)
    assert "Download 2 run(s)" in [d.proto.label for d in at.get("download_button")]
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


def test_another_student_s_run_is_continued_only_as_a_copy_of_their_own(app_runs, monkeypatch):
    """Issue 17: any student could resume another's run, re-saving it under its name."""
    own(app_runs, "tiny-conv", BOB)
    at = open_app_page("views/runs.py", {OWNER_KEY: ALICE}, errors=["Queued nothing"])
    at.selectbox(key="resume_run_name").set_value("tiny-conv").run()
    assert any("`tiny-conv` is not yours" in c.value for c in at.caption)
    copy_name = at.text_input(key="resume_copy_name_tiny-conv")
    assert copy_name.value == "tiny-conv-copy"
    asked = []

    def resume(run_name, epochs, owner=None, as_name=None, teacher=False):  # the registry's owner-aware resume
        asked.append((run_name, epochs, owner, as_name, teacher))
        raise ValueError("Queued nothing: this test only looks at what was asked.")

    monkeypatch.setattr(get_registry(), "resume", resume)
    at.run()
    assert not at.button(key="resume_run").disabled
    copy_name.set_value("my-copy").run()
    at.button(key="resume_run").click().run()
    assert asked == [("tiny-conv", 5, ALICE, "my-copy", False)]
    # as shown (the page escapes a message's Markdown: it may quote names)
    assert [e.value.replace("\\", "") for e in at.error] == ["Queued nothing: this test only looks at what was asked."]


def test_a_copy_of_another_students_run_trains_on_and_leaves_theirs_as_it_was(app_runs):
    own(app_runs, "tiny-conv", BOB)
    at = open_app_page("views/runs.py", {OWNER_KEY: ALICE})
    at.selectbox(key="resume_run_name").set_value("tiny-conv").run()
    at.number_input(key="resume_epochs").set_value(2)
    at.button(key="resume_run").click().run()
    assert [t.value for t in at.title] == ["Train"], [e.value for e in at.error]
    job = at.query_params["job"]
    done = get_registry().wait(job[0] if isinstance(job, list) else job, timeout=JOB_TIMEOUT)
    assert done.status == "finished" and done.run_name == "tiny-conv-copy", done.message
    copy = load_run(app_runs, "tiny-conv-copy")
    assert [r["epoch"] for r in copy.history] == [1, 2, 3, 4] and copy.info["owner"] == owner_key(ALICE)
    original = load_run(app_runs, "tiny-conv")
    assert len(original.history) == 2 and original.info["owner"] == owner_key(BOB)


def test_a_student_s_imported_runs_are_theirs(app_runs, trained_runs):
    at = open_app_page("views/runs.py", {OWNER_KEY: ALICE})
    at.file_uploader(key="import_upload").set_value(("lesson.zip", export_bytes(trained_runs, ["tiny-vae"]),
                                                     "application/zip")).run()
    at.button(key="import_runs").click().run()
    owners = {r["name"]: r["owner"] for r in list_runs(app_runs)}
    assert owners["tiny-vae-2"] == owner_key(ALICE) and owners["tiny-vae"] is None


def test_more_epochs_are_bounded_by_the_servers_epoch_limit(app_runs, monkeypatch):
    """Issue 17: 'More epochs' 10000 was accepted past the 1,000-epoch limit (the job reached 1551)."""
    monkeypatch.setenv("AE_LAB_MAX_EPOCHS", "5")
    own(app_runs, "tiny-conv", ALICE)  # 2 epochs trained: 3 more are allowed
    at = open_app_page("views/runs.py", {OWNER_KEY: ALICE})
    at.selectbox(key="resume_run_name").set_value("tiny-conv").run()
    more = at.number_input(key="resume_epochs")
    assert (more.max, more.value) == (3, 3)
    monkeypatch.setenv("AE_LAB_MAX_EPOCHS", "2")
    get_registry.clear()  # a server started with a limit of 2 epochs
    at = open_app_page("views/runs.py", {OWNER_KEY: ALICE})
    at.selectbox(key="resume_run_name").set_value("tiny-conv").run()
    assert not [b for b in at.button if b.key == "resume_run"]
    assert "Run tiny-conv has trained 2 epochs, this server's limit for one run; start a new run on the Train page " \
           "instead." in [c.value for c in at.caption]
