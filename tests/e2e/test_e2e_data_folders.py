"""Issue 9 in the browser: a student cannot list or preview a folder outside the server's data
folders through the image-folder box, sees the datasets that are there, and can upload a .zip of
class folders that then previews like any dataset — and that only this student (or the teacher)
can delete again."""
from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from streamlit_ui import (
    RERUN_TIMEOUT_MS,
    assert_no_traceback,
    choose,
    expect_images_loaded,
    go_to,
    main,
    open_app,
    set_text,
    wait_for_script,
)

FOLDER_BOX = "Image folder"
FOUND_BOX = "Datasets on this server"


def _png(value: int, side: int = 16) -> bytes:
    buffer = io.BytesIO()
    picture = np.full((side, side, 3), 20, np.uint8)
    picture[4:12, 4:12] = value
    Image.fromarray(picture).save(buffer, "PNG")
    return buffer.getvalue()


def _class_folders(root, classes=("red", "blue"), per_class=4) -> None:
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            (root / name / f"{i}.png").write_bytes(_png(80 + 60 * k + i))


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """The server's data folder (the allowed root "data"), holding one class-folder dataset."""
    root = tmp_path / "data"
    _class_folders(root / "classroom")
    monkeypatch.setenv("AE_LAB_DATA_DIR", str(root))  # start_app passes the environment on
    monkeypatch.delenv("AE_LAB_DATA_DIRS", raising=False)
    return root


def errors(page):
    return main(page).get_by_test_id("stAlertContentError")


def test_the_folder_box_reads_only_the_data_folders_and_a_zip_upload_works(start_app, new_page, data_dir,
                                                                            tmp_path, shot):
    server = start_app(max_jobs=1)
    page = new_page()
    open_app(page, server.url)
    go_to(page, "Data")
    choose(page, "Dataset", "Image folder")

    # Outside the data folders: refused in one sentence, nothing listed, nothing previewed, and an
    # existing server folder reads exactly like a missing one.
    said = {}
    for typed in ("/usr/share/doc", "/nonexistent", "data/../../..", "usr/share/doc"):
        set_text(page, FOLDER_BOX, typed)
        expect(errors(page)).to_have_count(1, timeout=RERUN_TIMEOUT_MS)
        said[typed] = errors(page).inner_text()
        text = main(page).inner_text()
        assert "/usr/share/doc/" not in text and str(tmp_path) not in text
        expect(main(page).locator("[data-testid=stImage]")).to_have_count(0)
        expect(main(page).get_by_test_id("stDataFrame")).to_have_count(0)
        assert_no_traceback(page)
        if typed == "/usr/share/doc":
            shot(page, "outside-the-data-folders")
    assert "absolute paths are not allowed" in said["/usr/share/doc"]
    assert said["/usr/share/doc"] == said["/nonexistent"]
    assert "'..'" in said["data/../../.."] and "no data folder named 'usr'" in said["usr/share/doc"]

    # The datasets that are there are offered; choosing one previews it.
    choose(page, FOUND_BOX, "data/classroom")
    expect(page.get_by_label(FOLDER_BOX, exact=True)).to_have_value("data/classroom")
    expect_images_loaded(main(page), at_least=2)
    expect(main(page)).to_contain_text("2 classes · source: data/classroom")
    shot(page, "a-listed-dataset")

    # A zip of class folders (inside one top folder, as zipping a folder makes it) is unpacked
    # under the data folder and previews like any dataset.
    upload = tmp_path / "pets.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        for k, name in enumerate(("cats", "dogs", "fish")):
            for i in range(3):
                archive.writestr(f"pets/{name}/{i}.png", _png(60 + 70 * k + i))
        archive.writestr("pets/notes.txt", "not an image")
    main(page).get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(upload))
    wait_for_script(page)
    success = main(page).get_by_test_id("stAlertContentSuccess")
    expect(success).to_contain_text("Unpacked 9 images in 3 classes into data/uploads/pets", timeout=RERUN_TIMEOUT_MS)
    expect(success).to_contain_text("1 file that is not an image was left out")
    expect(page.get_by_label(FOLDER_BOX, exact=True)).to_have_value("data/uploads/pets")
    # the list of datasets now holds the upload too, and shows it as the one chosen
    expect(page.get_by_role("combobox", name=FOUND_BOX, exact=True)).to_have_value("data/uploads/pets")
    expect(main(page)).to_contain_text("3 classes · source: data/uploads/pets", timeout=RERUN_TIMEOUT_MS)
    expect_images_loaded(main(page), at_least=3)
    assert sorted(p.name for p in (data_dir / "uploads" / "pets").iterdir() if not p.name.startswith(".")) \
        == ["cats", "dogs", "fish"]
    assert str(tmp_path) not in main(page).inner_text()
    assert_no_traceback(page)
    shot(page, "uploaded-zip-previewed")

    # The choice lives in the URL as the data folder's name and the path inside it, and a reload
    # shows the same dataset again.
    expect(page).to_have_url(re.compile(r"[?&]folder=uploads(%2F|/)pets(&|$)"), timeout=RERUN_TIMEOUT_MS)
    assert re.search(r"[?&]root=data(&|$)", page.url) and str(tmp_path) not in page.url
    page.reload()
    wait_for_script(page)
    expect(page.get_by_label(FOLDER_BOX, exact=True)).to_have_value("data/uploads/pets", timeout=RERUN_TIMEOUT_MS)
    expect(main(page)).to_contain_text("3 classes · source: data/uploads/pets", timeout=RERUN_TIMEOUT_MS)

    # Another student sees the upload but is offered no way to delete it.
    other = new_page()
    open_app(other, server.url)
    go_to(other, "Data")
    choose(other, "Dataset", "Image folder")
    choose(other, FOUND_BOX, "data/uploads/pets")
    expect(main(other)).to_contain_text("3 classes · source: data/uploads/pets", timeout=RERUN_TIMEOUT_MS)
    expect(main(other).get_by_text("Delete this uploaded dataset")).to_have_count(0)

    # The student who uploaded it deletes it, after a second click that says what it does.
    main(page).get_by_text("Delete this uploaded dataset").click()
    expect(page.get_by_text("for every student")).to_be_visible()
    shot(page, "delete-upload-asked")
    page.get_by_role("button", name="Delete pets").click()
    wait_for_script(page)
    expect(main(page).get_by_test_id("stAlertContentSuccess")).to_contain_text(
        "Deleted the uploaded dataset data/uploads/pets.", timeout=RERUN_TIMEOUT_MS)
    expect(page.get_by_label(FOLDER_BOX, exact=True)).to_have_value("")
    assert not (data_dir / "uploads" / "pets").exists()
    assert not [p for p in (data_dir / "uploads").iterdir()]  # nothing half-deleted left behind
    page.get_by_role("combobox", name=FOUND_BOX, exact=True).click()
    expect(page.get_by_role("option", name="data/uploads/pets")).to_have_count(0)
    expect(page.get_by_role("option", name="data/classroom")).to_have_count(1)
    page.keyboard.press("Escape")
    assert_no_traceback(page)
    shot(page, "upload-deleted")

    # The other student's choice (kept in the URL) now reads as a missing folder, in one sentence.
    other.reload()
    wait_for_script(other)
    expect(errors(other)).to_have_count(1, timeout=RERUN_TIMEOUT_MS)
    assert_no_traceback(other)
