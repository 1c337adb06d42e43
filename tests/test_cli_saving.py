"""The CLI saves through the app's save policy (issue 16): a failed save at a terminal asks whether
to try again (the trained model is still in memory); a script gets exit 1 and the sentence."""
from __future__ import annotations

import io
import json

from core.checkpoints import list_runs, load_run
from core.cli import main

from test_jobs_safety import failing_renames

TRAIN = ["train", "--dataset", "digits", "--model", "dense", "--hidden", "16", "--latent", "2", "--epochs", "2",
         "--batch-size", "128", "--device", "cpu", "--name", "kept"]


class Terminal(io.StringIO):
    """stdin at a terminal, answering the save prompt."""

    def isatty(self) -> bool:
        return True


def test_a_failed_save_at_a_terminal_asks_and_saves_again(tmp_path, monkeypatch):
    failing_renames(monkeypatch, tmp_path, failures=1)
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    out, err = io.StringIO(), io.StringIO()
    assert main(TRAIN + ["--out", str(tmp_path)], out, err) == 0, err.getvalue()
    assert "the disk is full" in err.getvalue() and "Save again? [Y/n]" in err.getvalue()
    assert json.loads(out.getvalue().splitlines()[-1])["run"] == "kept"
    assert len(load_run(tmp_path, "kept").history) == 2


def test_a_failed_save_in_a_script_exits_1_with_the_sentence(tmp_path, monkeypatch):
    failing_renames(monkeypatch, tmp_path, failures=1)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: nobody to ask
    out, err = io.StringIO(), io.StringIO()
    assert main(TRAIN + ["--out", str(tmp_path)], out, err) == 1
    last = err.getvalue().strip().splitlines()[-1]
    assert last.startswith("error: Could not save run kept: the disk is full")
    summary = json.loads(out.getvalue().splitlines()[-1])
    assert summary["run"] is None and summary["message"].startswith("Could not save run kept")
    assert list_runs(tmp_path) == []
