"""The README's workflow: a run pre-trained from the terminal on a torchvision folder is inspected
in the app. The CLI warns when the app could not read that folder and says how to allow it; the
page then says so without the server path, and the server log names the folder for the teacher."""
from __future__ import annotations

import io
import logging

import pytest

from core.cli import main
from idx_helpers import write_mnist

from apptest_helpers import open_app_page


@pytest.fixture
def pretrained(tmp_path, monkeypatch):
    """A run trained by the CLI on MNIST files in a folder outside the app's data folders."""
    monkeypatch.setenv("AE_LAB_DATA_DIR", str(tmp_path / "app-data"))
    monkeypatch.delenv("AE_LAB_DATA_DIRS", raising=False)
    monkeypatch.setenv("AE_LAB_CHECKPOINTS", str(tmp_path / "runs"))
    mnist = tmp_path / "shared" / "MNIST-10k"
    write_mnist(mnist, n_train=60, n_test=20)
    err = io.StringIO()
    code = main(["train", "--dataset", "mnist", "--data-root", str(mnist), "--model", "dense", "--hidden", "16",
                 "--latent", "2", "--epochs", "1", "--device", "cpu", "--name", "pre",
                 "--out", str(tmp_path / "runs")], out=io.StringIO(), err=err)
    assert code == 0, err.getvalue()
    return mnist, err.getvalue()


def test_the_cli_warns_when_the_app_could_not_read_the_data(pretrained, tmp_path, monkeypatch):
    mnist, err = pretrained
    warning = next(line for line in err.splitlines() if line.startswith("warning: the app cannot show"))
    assert str(mnist) in warning and f"AE_LAB_DATA_DIRS={mnist}" in warning
    # started with the folder allowed (the same environment the app reads), nothing to warn about
    monkeypatch.setenv("AE_LAB_DATA_DIRS", str(tmp_path / "shared"))
    err = io.StringIO()
    assert main(["train", "--dataset", "mnist", "--data-root", str(mnist), "--model", "dense", "--hidden", "16",
                 "--latent", "2", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "runs")],
                out=io.StringIO(), err=err) == 0
    assert "warning: the app" not in err.getvalue()
    # a built-in dataset needs no data folder
    err = io.StringIO()
    assert main(["train", "--dataset", "digits", "--limit", "100", "--model", "dense", "--hidden", "8", "--latent", "2",
                 "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "runs")],
                out=io.StringIO(), err=err) == 0
    assert "warning: the app" not in err.getvalue()


def test_the_page_tells_the_teacher_how_to_allow_it_without_the_path(pretrained, tmp_path, monkeypatch, caplog):
    mnist, _ = pretrained
    with caplog.at_level(logging.WARNING, logger="core.serving.roots"):
        at = open_app_page("views/reconstructions.py", {"selected_run": "pre"},
                           errors=["not inside this server's data folders"])
    (message,) = [e.value for e in at.error]
    assert "AE_LAB_DATA_DIRS" in message and "teacher" in message
    assert str(tmp_path) not in message and "MNIST-10k" not in message
    assert str(mnist) in caplog.text and "AE_LAB_DATA_DIRS" in caplog.text  # the server log names the folder
    # allowed by the teacher, the same run opens with its reconstructions
    monkeypatch.setenv("AE_LAB_DATA_DIRS", str(mnist))
    at = open_app_page("views/reconstructions.py", {"selected_run": "pre"})
    assert any(c.startswith("Reconstructions") for image in at.get("image") for c in image.captions)
