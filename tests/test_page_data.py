"""The Data page (AppTest through app.py): counts and split sizes as the dataset really has
them, the shapes dataset, and the plain messages for a missing or unreadable folder."""
from __future__ import annotations


import pytest
from streamlit.testing.v1 import AppTest

from core.config import DataConfig
from core.data import load_dataset
from ui.state import DATA_CONFIG_KEY

from apptest_helpers import chart_frames, navigation_as_served, open_app_page  # noqa: F401
from idx_helpers import write_image_folder


# The sidebar is under test: run app.py the way a real server does (see the fixture).
pytestmark = pytest.mark.usefixtures("navigation_as_served")


def data_page(**widgets) -> AppTest:
    """The Data page, with widget values (by key) set before its first run."""
    return open_app_page("pages/data.py", widgets)


def table_with(at: AppTest, column: str):
    """The first st.dataframe with this column (AppTest does not expose a read-only table's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_digits_shows_the_real_class_counts_and_split_sizes(no_runs, digits):
    at = data_page()
    assert not at.error
    shown = metrics(at)
    assert shown["Images"] == f"{len(digits.labels):,}"
    for split, label in (("train", "Train"), ("val", "Validation"), ("test", "Test")):
        assert shown[label] == f"{len(digits.splits[split]):,}"
    assert shown["Image shape (C×H×W)"] == "1×8×8"

    table = table_with(at, "Total")
    for split, column in (("train", "Train"), ("val", "Validation"), ("test", "Test")):
        assert table[column].to_dict() == digits.class_counts(split)
    assert table["Total"].to_dict() == digits.class_counts()

    (counts,) = chart_frames(at)
    train_counts = counts[counts["split"] == "train"].set_index("class")["count"].to_dict()
    assert train_counts == digits.class_counts("train")
    # One preview grid per class, captioned with the class name.
    assert sorted(caption for img in at.image for caption in img.captions) == sorted(digits.class_names)
    assert at.session_state[DATA_CONFIG_KEY] == DataConfig(dataset="digits")
    # The sidebar (drawn after the page) names the dataset the page chose.
    assert any("Digits" in text for text in at.sidebar.markdown.values)


def test_shapes_dataset_loads_with_its_classes(no_runs):
    at = data_page(data_dataset="shapes", data_shapes_count=300, data_image_size=16)
    assert not at.error
    expected = load_dataset(DataConfig(dataset="shapes", shapes_count=300, image_size=16))
    shown = metrics(at)
    assert shown["Images"] == "300"
    assert shown["Image shape (C×H×W)"] == "3×16×16"
    assert table_with(at, "Total")["Total"].to_dict() == expected.class_counts()
    assert at.session_state[DATA_CONFIG_KEY].dataset == "shapes"
    assert any("Shapes" in text for text in at.sidebar.markdown.values)


def test_missing_folder_shows_one_plain_sentence(no_runs, tmp_path):
    missing = tmp_path / "no-such-folder"
    at = data_page(data_dataset="folder", data_folder=str(missing))
    assert len(at.error) == 1
    message = at.error[0].value
    assert str(missing) in message and "does not exist" in message
    assert "Traceback" not in message and message.count(".") <= 2
    assert not at.metric  # nothing else is drawn from a dataset that did not load
    assert DATA_CONFIG_KEY not in at.session_state


def test_folder_of_non_images_shows_the_message(no_runs, tmp_path):
    tmp_path = tmp_path / "images"
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "one.jpg").write_text("this is not a picture")
        (tmp_path / name / "two.png").write_bytes(b"")
    at = data_page(data_dataset="folder", data_folder=str(tmp_path))
    assert len(at.error) == 1 and "No readable images" in at.error[0].value


def test_folder_lists_what_it_skipped(no_runs, tmp_path):
    # Not next to the checkpoints folder no_runs made.
    tmp_path = write_image_folder(tmp_path / "images", classes=("red", "blue"), per_class=6, size=20)
    (tmp_path / "red" / "broken.jpg").write_text("not an image")
    at = data_page(data_dataset="folder", data_folder=str(tmp_path), data_image_size=16, data_channels=1)
    assert not at.error
    assert "1 file(s) could not be used" in at.warning[0].value
    skipped = table_with(at, "Why it was skipped")
    assert list(skipped["File"]) == [str(tmp_path / "red" / "broken.jpg")]
    assert metrics(at)["Image shape (C×H×W)"] == "1×16×16"
    assert table_with(at, "Total")["Total"].to_dict() == {"blue": 6, "red": 6}


@pytest.mark.parametrize("dataset", ["mnist"])
def test_torchvision_dataset_without_files_says_so(no_runs, tmp_path, dataset):
    at = data_page(data_dataset=dataset, data_root=str(tmp_path), data_download=False)
    assert len(at.error) == 1 and "Traceback" not in at.error[0].value
