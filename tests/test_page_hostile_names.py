"""What a student, a link or a file named is shown as text on every page (issue 17): a link and a
tracking image in ?folder=, class folders named as Markdown links, a run whose valid name is
Markdown emphasis around a bare link. Every string a page hands to Streamlit's Markdown that holds
the name is read by a CommonMark parser (apptest_helpers.assert_shown_as_text)."""
from __future__ import annotations

import shutil

import pytest

from apptest_helpers import HOSTILE_TEXT, assert_shown_as_text, chart_frames, open_app_page
from idx_helpers import write_image_folder
from ui.state import SELECTED_RUN_KEY

PAGES = ["views/data.py", "views/train.py", "views/runs.py", "views/experiments.py", "views/reconstructions.py",
         "views/noise.py", "views/latent.py", "views/generate.py", "views/classifier.py"]
# Folder names cannot hold "/", so these links have none: still a link and an image in Markdown.
HOSTILE_CLASSES = ("[Login here](https:example.com)", "![x](http:127.0.0.1:9)", "_Login here_")
# A valid run name ([A-Za-z0-9._-]) that Markdown shows bold around a link to www.example.com.
HOSTILE_RUN = "__www.example.com__"


@pytest.mark.parametrize("page", PAGES)
def test_a_link_in_the_urls_folder_is_text_on_every_page(no_runs, data_dir, page):
    at = open_app_page(page, query={"dataset": "folder", "root": "data", "folder": HOSTILE_TEXT},
                       errors=["does not exist"])
    assert assert_shown_as_text(at, HOSTILE_TEXT) >= 1  # the sidebar names the dataset, at least


def test_class_names_are_text(no_runs, data_dir):
    write_image_folder(data_dir / "hostile", classes=HOSTILE_CLASSES, per_class=4, size=12)
    at = open_app_page("views/data.py", query={"dataset": "folder", "root": "data", "folder": "hostile",
                                                "size": "12"})
    assert not at.error
    for name in HOSTILE_CLASSES:  # each preview grid's caption, at least
        assert assert_shown_as_text(at, name) >= 1, name


def test_a_class_named_with_a_bidi_override_does_not_read_reversed(no_runs, data_dir):
    """Charts and tables show text as it is: U+202E made "\u202etxt.exe" read "exe.txt" on the chart's axis."""
    write_image_folder(data_dir / "bidi", classes=("\u202etxt.exe", "plain"), per_class=4, size=12)
    at = open_app_page("views/data.py", query={"dataset": "folder", "root": "data", "folder": "bidi", "size": "12"})
    (counts,) = chart_frames(at)
    assert sorted(set(counts["class"])) == ["plain", "\ufffdtxt.exe"]
    assert "\ufffdtxt.exe" in [caption for image in at.image for caption in image.captions]


@pytest.mark.parametrize("page", ["views/runs.py", "views/reconstructions.py", "views/latent.py"])
def test_a_run_name_is_text(app_runs, page):
    shutil.copytree(app_runs / "tiny-conv", app_runs / HOSTILE_RUN)
    at = open_app_page(page, state={SELECTED_RUN_KEY: HOSTILE_RUN})
    assert assert_shown_as_text(at, HOSTILE_RUN) >= 1  # the sidebar's current run, at least
