"""Runs that travel (issue 9): export runs as one .zip and import it, validated like loading:
weights_only, names, sizes, no path escapes, no code or pickles, never overwriting a run silently.
Also the CLI's export / import / resume."""
from __future__ import annotations

import errno
import io
import json
import os
import shutil
import stat
import zipfile
from pathlib import Path

import pytest
import torch

from core.bundles import BundleError, export_bytes, import_runs
from core.checkpoints import CheckpointError, delete_run, list_runs, load_run
from core.cli import main as cli

NAMES = ["tiny-conv", "tiny-vae"]


def bundle_of(members: dict[str, bytes], manifest: dict | None = None) -> io.BytesIO:
    buffer = io.BytesIO()
    runs = sorted({name.split("/")[0] for name in members if "/" in name})
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("bundle.json", json.dumps(manifest or {"format": "autoencoder-lab-runs", "version": 1,
                                                           "runs": runs}))
        for name, data in members.items():
            zf.writestr(name, data)
    buffer.seek(0)
    return buffer


def run_members(root, name, as_name=None) -> dict[str, bytes]:
    return {f"{as_name or name}/{p.name}": p.read_bytes() for p in (root / name).iterdir()}


def test_export_then_import_brings_the_runs_back_identical(trained_runs, tmp_path):
    data = export_bytes(trained_runs, NAMES)
    target = tmp_path / "elsewhere"
    imported = import_runs(target, io.BytesIO(data))
    assert [(r.name_in_bundle, r.name, r.renamed) for r in imported] == [(n, n, False) for n in NAMES]
    assert sorted(r["name"] for r in list_runs(target)) == NAMES
    for name in NAMES:
        before, after = load_run(trained_runs, name), load_run(target, name)
        assert after.history == before.history
        for key, value in before.model.state_dict().items():
            assert torch.equal(after.model.state_dict()[key], value)
    assert not [p for p in target.iterdir() if p.name.startswith(".")]  # no staging left


def test_a_taken_name_is_imported_under_a_new_name_and_said(trained_runs, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(trained_runs, root)
    before = (root / "tiny-conv" / "weights.pt").read_bytes()
    (imported,) = import_runs(root, io.BytesIO(export_bytes(trained_runs, ["tiny-conv"])))
    assert imported.name == "tiny-conv-2" and imported.renamed
    assert imported.sentence() == "Imported tiny-conv as tiny-conv-2, because a run named tiny-conv already exists."
    assert (root / "tiny-conv" / "weights.pt").read_bytes() == before  # the old one untouched


@pytest.mark.parametrize("member, reason", [
    ("tiny-conv/train.py", "not part of a saved run"),
    ("tiny-conv/model.pkl", "not part of a saved run"),
    ("evil.py", "not part of a saved run"),
    ("../escape/weights.pt", "points outside"),
    ("/etc/cron.d/x", "absolute path"),
    ("tiny-conv/../../x/info.json", "points outside"),
    ("tiny-conv\\..\\info.json", "points outside"),
    (".hidden/info.json", "not a valid run name"),
])
def test_a_bundle_with_anything_but_run_files_is_refused_whole(trained_runs, tmp_path, member, reason):
    members = run_members(trained_runs, "tiny-conv") | {member: b"print('owned')"}
    with pytest.raises(BundleError, match=reason):
        import_runs(tmp_path / "runs", bundle_of(members, {"format": "autoencoder-lab-runs", "version": 1,
                                                            "runs": ["tiny-conv"]}))
    assert list_runs(tmp_path / "runs") == []


def test_pickled_code_in_the_weights_is_refused(trained_runs, tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))
    buffer = io.BytesIO()
    torch.save({"x": Evil()}, buffer)
    members = run_members(trained_runs, "tiny-conv") | {"tiny-conv/weights.pt": buffer.getvalue()}
    with pytest.raises(CheckpointError, match="not plain weights"):
        import_runs(tmp_path / "runs", bundle_of(members))
    assert list_runs(tmp_path / "runs") == []


def test_a_link_in_the_bundle_is_refused(trained_runs, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("bundle.json", json.dumps({"format": "autoencoder-lab-runs", "version": 1, "runs": ["tiny-conv"]}))
        for name, data in run_members(trained_runs, "tiny-conv").items():
            info = zipfile.ZipInfo(name)
            if name.endswith("film.pt"):
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                data = b"/etc/passwd"
            zf.writestr(info, data)
    buffer.seek(0)
    with pytest.raises(BundleError, match="link"):
        import_runs(tmp_path / "runs", buffer)


def test_a_zip_bomb_and_an_oversized_bundle_are_refused(trained_runs, tmp_path, monkeypatch):
    members = run_members(trained_runs, "tiny-conv")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bundle.json", json.dumps({"format": "autoencoder-lab-runs", "version": 1, "runs": ["tiny-conv"]}))
        for name, data in members.items():
            zf.writestr(name, data + (b"\0" * (50 << 20) if name.endswith("metrics.json") else b""))
    bomb.seek(0)
    with pytest.raises(BundleError, match="zip bomb"):
        import_runs(tmp_path / "runs", bomb)
    monkeypatch.setenv("AE_LAB_MAX_BUNDLE_MB", "0.01")
    with pytest.raises(BundleError, match="larger than"):
        import_runs(tmp_path / "runs", io.BytesIO(export_bytes(trained_runs, ["tiny-conv"])))


def test_not_a_zip_and_a_zip_that_is_not_a_bundle_are_said(tmp_path):
    with pytest.raises(BundleError, match="not a zip"):
        import_runs(tmp_path, io.BytesIO(b"hello"))
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("tiny-conv/info.json", "{}")
    plain.seek(0)
    with pytest.raises(BundleError, match="no bundle.json"):
        import_runs(tmp_path, plain)


def test_the_manifest_must_match_the_runs(trained_runs, tmp_path):
    members = run_members(trained_runs, "tiny-conv")
    with pytest.raises(BundleError, match="does not match"):
        import_runs(tmp_path, bundle_of(members, {"format": "autoencoder-lab-runs", "version": 1,
                                                  "runs": ["tiny-conv", "ghost"]}))


def test_cli_export_import_and_resume(trained_runs, tmp_path, capsys):
    bundle = tmp_path / "lesson.zip"
    assert cli(["export", "tiny-conv", "--to", str(bundle), "--out", str(trained_runs)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["runs"] == ["tiny-conv"]
    assert cli(["export", "tiny-conv", "--to", str(bundle), "--out", str(trained_runs)]) == 2
    assert "already exists" in capsys.readouterr().err
    root = tmp_path / "student"
    assert cli(["import", str(bundle), "--out", str(root)]) == 0
    assert cli(["import", str(bundle), "--out", str(root)]) == 0
    captured = capsys.readouterr()
    assert "Imported tiny-conv as tiny-conv-2, because a run named tiny-conv already exists." in captured.err
    assert sorted(r["name"] for r in list_runs(root)) == ["tiny-conv", "tiny-conv-2"]

    assert cli(["resume", "tiny-conv", "--epochs", "2", "--out", str(root)]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["epochs"] == 4 and summary["new_epochs"] == 2
    assert [r["epoch"] for r in load_run(root, "tiny-conv").history] == [1, 2, 3, 4]
    assert cli(["resume", "nope", "--epochs", "2", "--out", str(root)]) == 2
    assert capsys.readouterr().err.startswith("error: There is no run named nope")


# ---------------------------------------------------------------- issue 16: every run or none, never a save's name

def test_an_import_never_takes_the_name_a_save_has_just_reserved(trained_runs, tmp_path, monkeypatch):
    """A save reserves its name with an empty folder a moment before renaming its run onto it; a
    rename onto an empty folder succeeds on POSIX, so an import that only checked exists() took
    the reservation, and the save's own rename then failed."""
    root = tmp_path / "runs"
    root.mkdir()
    bundle = io.BytesIO(export_bytes(trained_runs, ["tiny-conv"]))
    reserved_by_the_save = []
    real_rename = os.rename

    def rename(src, dst, *args, **kwargs):
        dst = Path(dst)
        if dst.parent == root and not dst.name.startswith("."):
            try:  # a save in another process reserves this very name just now
                os.mkdir(root / "tiny-conv")
                reserved_by_the_save.append(root / "tiny-conv")
            except FileExistsError:
                pass
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    (imported,) = import_runs(root, bundle)
    monkeypatch.undo()
    for reservation in reserved_by_the_save:
        assert reservation.is_dir() and not any(reservation.iterdir())  # still the save's, still empty
    assert imported.name != "tiny-conv" or not reserved_by_the_save
    assert load_run(root, imported.name).history


def test_an_error_midway_imports_none_of_the_runs(trained_runs, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    bundle = io.BytesIO(export_bytes(trained_runs, NAMES))
    real_rename = os.rename

    def rename(src, dst, *args, **kwargs):
        if Path(dst).parent == root and Path(src).name == NAMES[1]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(CheckpointError, match="Could not import the bundle"):
        import_runs(root, bundle)
    monkeypatch.undo()
    assert list_runs(root) == [] and list(root.iterdir()) == []  # no run, no reservation, no staging


# ---------------------------------------------------------------- issue 17: bounded work, owners

def _with_member(trained_runs, name: str, data: bytes, stored: bool = False) -> io.BytesIO:
    members = run_members(trained_runs, "tiny-conv") | {f"tiny-conv/{name}": data}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bundle.json", json.dumps({"format": "autoencoder-lab-runs", "version": 1, "runs": ["tiny-conv"]}))
        for member, content in members.items():
            zf.writestr(member, content)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize("file_name, content, stored, words", [
    ("metrics.json", json.dumps({"history": [], "pad": "0" * (17 << 20)}).encode(), True,
     "unpacks to 17 MB, more than a run's metrics.json may \\(16 MB\\)"),
    ("metrics.json", json.dumps({"history": [], "batch_losses": [0.5] * 600_000}).encode(), True,
     "more than 500,000 batch losses"),
    ("metrics.json", DEEP_JSON := ("[" * 100_000 + "]" * 100_000).encode(), True, "nested too deeply"),
    ("info.json", DEEP_JSON, True, "its info.json is nested too deeply"),
    ("config.json", DEEP_JSON, True, "its config.json is damaged or from another version: it is nested too deeply"),
    ("metrics.json", DEEP_JSON, False, "inflates .* times: that looks like a zip bomb"),  # compressed: the ratio
])
def test_oversized_or_hostile_run_files_are_refused_in_one_sentence(trained_runs, tmp_path, file_name, content,
                                                                    stored, words):
    with pytest.raises(BundleError, match=words) as refused:
        import_runs(tmp_path / "runs", _with_member(trained_runs, file_name, content, stored))
    assert "\n" not in str(refused.value) and str(refused.value).endswith("nothing was imported.")
    assert list_runs(tmp_path / "runs") == []


@pytest.mark.parametrize("hidden, words", [([24576, 24576], "would have"), ([64], "would have")])
def test_a_model_over_the_limits_is_refused_before_it_is_built(trained_runs, tmp_path, monkeypatch, hidden, words):
    """A 405 KB bundle whose config is dense 24576-24576 cost 4.6 GB and 11.5 s before it was refused."""
    import core.checkpoints.load as load_module

    config = json.loads((trained_runs / "tiny-conv" / "config.json").read_text())
    config["model"].update(family="dense", hidden=hidden)
    monkeypatch.setenv("AE_LAB_MAX_PARAMS", "20000000" if hidden[0] > 1000 else "1000")
    monkeypatch.setattr(load_module, "build_model", lambda cfg: pytest.fail("the model was built"))
    with pytest.raises(BundleError, match=f"over this server's limits \\(this model {words}"):
        import_runs(tmp_path / "runs", _with_member(trained_runs, "config.json", json.dumps(config).encode()))
    assert list_runs(tmp_path / "runs") == []


def test_a_student_importing_owns_the_copies_and_the_teacher_keeps_the_bundle_s_owners(trained_runs, tmp_path):
    from core.serving.access import OwnerError, owner_key

    alice, bob = "alice-owner-id-00000001", "bob-owner-id-0000000002"
    source = tmp_path / "source"
    shutil.copytree(trained_runs, source)
    info_file = source / "tiny-conv" / "info.json"
    info_file.write_text(json.dumps({**json.loads(info_file.read_text()), "owner": owner_key(alice)}))
    bundle = export_bytes(source, ["tiny-conv"])
    (bobs,) = import_runs(tmp_path / "runs", io.BytesIO(bundle), owner=bob)
    (kept,) = import_runs(tmp_path / "runs", io.BytesIO(bundle), owner="teacher-owner-id-00003", teacher=True)
    (by_cli,) = import_runs(tmp_path / "runs", io.BytesIO(bundle))
    owners = {r["name"]: r["owner"] for r in list_runs(tmp_path / "runs")}
    assert owners == {bobs.name: owner_key(bob), kept.name: owner_key(alice), by_cli.name: owner_key(alice)}
    with pytest.raises(OwnerError):
        delete_run(tmp_path / "runs", kept.name, by=bob)
    delete_run(tmp_path / "runs", bobs.name, by=bob)
