"""The Data page (AppTest through app.py): counts and split sizes as the dataset really has
them, the shapes dataset, and the plain messages for a missing or unreadable folder."""
from __future__ import annotations


import pytest
from streamlit.testing.v1 import AppTest

from core.config import DataConfig
from core.data import load_dataset
from ui.state import DATA_CONFIG_KEY

from apptest_helpers import chart_frames, open_app_page, shown_text
from idx_helpers import write_image_folder


# The sidebar is under test: run app.py the way a real server does (see the fixture).


def data_page(errors=(), **widgets) -> AppTest:
    """The Data page, with widget values (by key) set before its first run; error boxes holding
    one of `errors` are the test's to check (any other fails it)."""
    return open_app_page("views/data.py", widgets, errors=errors)


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


def test_missing_folder_shows_one_plain_sentence(no_runs, data_dir):
    at = data_page(["does not exist"], data_dataset="folder", data_folder="data/no-such-folder")
    assert len(at.error) == 1
    message = at.error[0].value
    assert "data/no-such-folder" in message and "does not exist" in message
    assert str(data_dir) not in message
    assert "Traceback" not in message and message.count(".") <= 2
    assert not at.metric  # nothing else is drawn from a dataset that did not load
    assert DATA_CONFIG_KEY not in at.session_state


def test_folder_of_non_images_shows_the_message(no_runs, data_dir):
    tmp_path = data_dir / "images"
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "one.jpg").write_text("this is not a picture")
        (tmp_path / name / "two.png").write_bytes(b"")
    at = data_page(["No readable images"], data_dataset="folder", data_folder="data/images")
    assert len(at.error) == 1 and "No readable images were found in data/images;" in at.error[0].value


def test_folder_lists_what_it_skipped(no_runs, data_dir):
    tmp_path = write_image_folder(data_dir / "images", classes=("red", "blue"), per_class=6, size=20)
    (tmp_path / "red" / "broken.jpg").write_text("not an image")
    at = data_page(data_dataset="folder", data_folder="data/images", data_image_size=16, data_channels=1)
    assert not at.error
    assert "1 file(s) could not be used" in at.warning[0].value
    skipped = table_with(at, "Why it was skipped")
    # named relative to the data folder, never by its server path
    assert list(skipped["File"]) == ["data/images/red/broken.jpg"]
    assert metrics(at)["Image shape (C×H×W)"] == "1×16×16"
    assert table_with(at, "Total")["Total"].to_dict() == {"blue": 6, "red": 6}


@pytest.mark.parametrize("dataset", ["mnist"])
def test_torchvision_dataset_without_files_says_so(no_runs, data_dir, dataset):
    at = data_page(["was not found"], data_dataset=dataset, data_root=str(data_dir), data_download=False)
    assert len(at.error) == 1 and "Traceback" not in at.error[0].value
    assert "not inside this server's data folders" not in at.error[0].value


# ---------------------------------------------------------------- a served app's folders (issue 9)

@pytest.mark.parametrize("typed", ["/usr/share/doc", "/root", "/nonexistent", "~/", "data/../../..",
                                   "data/images/../../served"])
def test_no_folder_outside_the_data_folders_is_listed_or_probed(no_runs, data_dir, typed):
    write_image_folder(data_dir / "images", classes=("red", "blue"), per_class=4, size=12)
    at = data_page(["not allowed"], data_dataset="folder", data_folder=typed)
    assert len(at.error) == 1
    message = at.error[0].value
    assert "not allowed" in message and "\n" not in message and "Traceback" not in message
    assert not at.metric and not at.dataframe  # nothing listed, nothing previewed
    assert str(data_dir) not in message and DATA_CONFIG_KEY not in at.session_state


def test_an_existing_and_a_missing_server_path_read_the_same(no_runs, data_dir):
    """/root exists and /nonexistent does not: the page must not tell them apart."""
    first = data_page(["not allowed"], data_dataset="folder", data_folder="/root").error[0].value
    second = data_page(["not allowed"], data_dataset="folder", data_folder="/nonexistent").error[0].value
    assert first == second


def test_a_link_out_of_the_data_folder_is_refused(no_runs, data_dir, tmp_path):
    outside = write_image_folder(tmp_path / "outside", classes=("red", "blue"), per_class=4, size=12)
    (data_dir / "sneaky").symlink_to(outside)
    at = data_page(["link"], data_dataset="folder", data_folder="data/sneaky")
    assert len(at.error) == 1 and "link" in at.error[0].value
    assert str(outside) not in at.error[0].value and not at.metric


def test_an_unknown_root_names_the_allowed_ones(no_runs, data_dir):
    at = data_page(["no data folder named"], data_dataset="folder", data_folder="etc/passwd")
    assert len(at.error) == 1 and "no data folder named 'etc'" in at.error[0].value
    assert "data" in at.error[0].value


def test_a_file_is_not_a_folder(no_runs, data_dir):
    (data_dir / "notes.txt").write_text("hello")
    at = data_page(["is a file, not a folder"], data_dataset="folder", data_folder="data/notes.txt")
    assert len(at.error) == 1 and "is a file, not a folder" in at.error[0].value
    assert "does not exist" not in at.error[0].value


def test_the_datasets_found_in_the_data_folders_are_offered(no_runs, data_dir, tmp_path, monkeypatch):
    write_image_folder(data_dir / "images", classes=("red", "blue"), per_class=4, size=12)
    write_image_folder(data_dir / "deeper" / "art", classes=("a", "b"), per_class=3, size=12)
    extra = tmp_path / "extra"
    write_image_folder(extra / "shapes", classes=("x", "y"), per_class=3, size=12)
    monkeypatch.setenv("AE_LAB_DATA_DIRS", str(extra))
    at = data_page(data_dataset="folder")
    found = at.selectbox(key="data_folder_found")
    assert list(found.options) == ["data/deeper/art", "data/images", "extra/shapes"]
    found.set_value("extra/shapes").run()
    assert not at.error
    assert at.text_input(key="data_folder").value == "extra/shapes"
    chosen = at.session_state[DATA_CONFIG_KEY]
    assert (chosen.folder_root, chosen.folder) == ("extra", "shapes")  # a URL-safe value, no server path
    assert metrics(at)["Images"] == "6"
    assert str(extra) not in " ".join(c.value for c in at.caption)


def test_no_image_size_above_the_limit_is_offered_or_loaded(no_runs, data_dir, monkeypatch):
    write_image_folder(data_dir / "images", classes=("red", "blue"), per_class=4, size=12)
    monkeypatch.setenv("AE_LAB_MAX_IMAGE_SIZE", "64")
    at = data_page(data_dataset="folder", data_folder="data/images", data_image_size=128)
    assert at.number_input(key="data_image_size").max == 64
    assert not at.error and metrics(at)["Image shape (C×H×W)"] != "3×128×128"
    linked = open_app_page("views/data.py", query={"dataset": "folder", "root": "data", "folder": "images",
                                                    "size": "128"})
    assert not linked.error and metrics(linked)["Image shape (C×H×W)"] == "3×64×64"


def test_a_torchvision_folder_outside_the_data_folders_is_refused(no_runs, data_dir, tmp_path):
    at = data_page(["not inside this server's data folders"], data_dataset="mnist",
                   data_root=str(tmp_path / "elsewhere"), data_download=True)
    assert len(at.error) == 1 and "not inside this server's data folders" in at.error[0].value
    assert not (tmp_path / "elsewhere").exists()  # nothing was downloaded there


def test_a_torchvision_folder_is_named_from_the_data_folders(no_runs, data_dir):
    from idx_helpers import write_mnist

    write_mnist(data_dir / "digits-idx", n_train=40, n_test=10)
    at = data_page(data_dataset="mnist", data_root="data/digits-idx", data_download=False)
    assert not at.error and metrics(at)["Images"] == "50"
    assert "source: data/digits-idx/MNIST/raw" in " ".join(c.value for c in at.caption)
    missing = data_page(["was not found"], data_dataset="mnist", data_root="data/nothing-here", data_download=False)
    assert len(missing.error) == 1 and "data/nothing-here/MNIST/raw" in missing.error[0].value
    assert str(data_dir) not in missing.error[0].value


def test_the_folder_choice_travels_in_the_url_as_root_and_relative_path(no_runs, data_dir):
    write_image_folder(data_dir / "images", classes=("red", "blue"), per_class=4, size=12)
    at = data_page(data_dataset="folder", data_folder="data/images", data_image_size=16)
    assert not at.error
    params = {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    assert (params["dataset"], params["root"], params["folder"]) == ("folder", "data", "images")
    assert str(data_dir) not in " ".join(params.values())
    # A link that names a folder outside the roots is refused where the data is loaded.
    for root, folder in (("data", "../../.."), ("", "/usr/share/doc"), ("data", "images/../../..")):
        linked = open_app_page("views/train.py", query={"dataset": "folder", "root": root, "folder": folder},
                               errors=["not allowed", "data folders"])
        assert any("not allowed" in e.value or "data folders" in e.value for e in linked.error), \
            [e.value for e in linked.error]
        assert not [m for m in linked.metric if m.label == "Parameters"]  # no model built on that data


def test_the_teacher_can_delete_any_upload_and_a_student_only_their_own(no_runs, data_dir):
    from core.serving.access import owner_key
    from core.serving.uploads import UPLOADER_FILE
    from ui.owners import OWNER_KEY, TEACHER_KEY

    for name, uploader in (("old", None), ("mine", "student-owner-id-0001")):
        write_image_folder(data_dir / "uploads" / name, classes=("red", "blue"), per_class=3, size=12)
        if uploader:
            (data_dir / "uploads" / name / UPLOADER_FILE).write_text(owner_key(uploader))
    # A student sees no delete button on an upload of someone else, and one on their own.
    student = open_app_page("views/data.py", {"data_dataset": "folder", "data_folder": "data/uploads/old",
                                              OWNER_KEY: "student-owner-id-0001"})
    assert not [b for b in student.button if b.key == "data_upload_delete"]
    student.text_input(key="data_folder").set_value("data/uploads/mine").run()
    assert [b.label for b in student.button if b.key == "data_upload_delete"] == ["Delete mine"]
    # The teacher may delete any upload; the page then offers neither it nor its preview.
    teacher = open_app_page("views/data.py", {"data_dataset": "folder", "data_folder": "data/uploads/old",
                                              TEACHER_KEY: True})
    assert teacher.metric and not teacher.error
    teacher.button(key="data_upload_delete").click().run()
    assert not teacher.exception
    assert [s.value for s in teacher.success] == ["Deleted the uploaded dataset data/uploads/old."]
    assert not (data_dir / "uploads" / "old").exists() and (data_dir / "uploads" / "mine").is_dir()
    assert teacher.text_input(key="data_folder").value == ""
    assert list(teacher.selectbox(key="data_folder_found").options) == ["data/uploads/mine"]


def test_the_folder_box_keeps_its_text_across_a_dataset_switch(no_runs, data_dir):
    """Issue 21: the folder field reset on every dataset switch."""
    write_image_folder(data_dir / "images", classes=("a", "b"), per_class=4, size=12)
    at = data_page(data_dataset="folder", data_image_size=16)
    at.text_input(key="data_folder").set_value("data/images").run()  # typed by the student
    at.selectbox(key="data_dataset").set_value("digits").run()
    at.selectbox(key="data_dataset").set_value("folder").run()
    assert at.text_input(key="data_folder").value == "data/images"
    assert not at.error and metrics(at)["Images"] == "8"


def test_the_help_names_folders_that_work_here_and_each_data_folder_is_explained(no_runs, data_dir, tmp_path,
                                                                                 monkeypatch):
    """Issue 21: the help's own example "data/MNIST-10k" failed, and a second folder named data showed
    up as "data-2" with no explanation."""
    from idx_helpers import write_mnist

    shared = tmp_path / "shared" / "data"
    write_mnist(shared / "MNIST-10k", n_train=40, n_test=10)
    monkeypatch.setenv("AE_LAB_DATA_DIRS", str(shared))
    at = data_page(data_dataset="mnist", data_root="data", data_download=False, errors=["MNIST was not found"])
    help_text = at.text_input(key="data_root").help
    assert "shared-data/MNIST-10k" in help_text and "data/MNIST-10k" not in help_text.replace("shared-data/", "")
    works = data_page(data_dataset="mnist", data_root="shared-data/MNIST-10k", data_download=False)
    assert not works.error and metrics(works)["Images"] == "50"  # the example is real
    write_image_folder(data_dir / "pets", classes=("cats", "dogs"), per_class=2, size=8)
    folder = data_page(data_dataset="folder")
    said = " ".join(c.value for c in folder.caption)
    assert "data (this app's own; uploads go into data/uploads), shared-data (added by the teacher)" in said
    assert folder.text_input(key="data_folder").placeholder == "data/pets"
    assert str(shared) not in said


def test_a_folder_with_its_own_split_says_so(no_runs, data_dir):
    write_image_folder(data_dir / "bees" / "train", classes=("ants", "bees"), per_class=10, size=12)
    write_image_folder(data_dir / "bees" / "val", classes=("ants", "bees"), per_class=3, size=12, seed=1)
    at = data_page(data_dataset="folder", data_folder="data/bees", data_image_size=16)
    assert list(at.selectbox(key="data_folder_found").options) == ["data/bees"]  # one dataset, not two
    assert metrics(at)["Validation"] == "6"
    assert "its own split: train/, val/" in " ".join(shown_text(c.value) for c in at.caption)  # names as text
