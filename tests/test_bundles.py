"""Runs that travel (issue 9): export runs as one .zip and import it, validated like loading:
weights_only, names, sizes, no path escapes, no code or pickles, never overwriting a run silently.
Also the CLI's export / import / resume."""
from __future__ import annotations

import io
import json
import shutil
import stat
import zipfile

import pytest
import torch

from core.bundles import BundleError, export_bytes, import_runs
from core.checkpoints import CheckpointError, list_runs, load_run
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
