"""The Data page's image-folder choice in a served app: a folder inside the allowed data roots,
named "<root>/<relative path>" (a value that can live in the URL, never a server path), picked
from the datasets found there or typed; and a .zip upload that becomes such a dataset.

Widget keys: data_folder (the text box, the source of truth), data_folder_found (the list of
datasets found), data_upload (the file uploader), data_upload_delete (deleting the chosen upload:
shown only to the student who uploaded it and to the teacher). The box's text is kept while another
dataset is chosen (Streamlit forgets a widget that is not drawn): switching back shows it again.
"""
from __future__ import annotations

import logging

import streamlit as st

from core.config import DataConfig
from core.logs import short_owner
from core.serving.limits import WorkLimits
from core.serving.roots import (FolderError, allowed_roots, find_datasets, find_torchvision_folders, folder_value,
                                split_value)
from core.serving.uploads import (UploadError, dataset_name_from, delete_upload, unpack_zip, upload_name,
                                  uploaded_by)
from ui.owners import is_teacher, owner_id
from ui.state import forget_folder_dataset
from ui.text import md_message, md_text

log = logging.getLogger(__name__)

FOLDER_KEY = "data_folder"
FOUND_KEY = "data_folder_found"
UPLOAD_KEY = "data_upload"
UPLOAD_MESSAGE_KEY = "data_upload_message"  # (kind, text) from the upload callback, shown once
DELETE_KEY = "data_upload_delete"
KEPT_KEY = "data_folder_kept"  # the box's text, kept while the box is not drawn (another dataset chosen)
FOUND_SECONDS = 15  # how long the list of datasets found is reused before the roots are walked again


@st.cache_data(ttl=FOUND_SECONDS, show_spinner=False)
def torchvision_folders(dataset: str) -> list[str]:
    """Folder values that hold `dataset` in torchvision's layout here (the Data page's examples)."""
    return find_torchvision_folders(dataset)


def torchvision_folder_help(dataset: str) -> str:
    """The data-folder box's help, with examples that work on this server."""
    found = torchvision_folders(dataset)
    names = md_text(", ".join(r.name for r in allowed_roots()))  # the teacher's names: text, never Markdown
    where = (f"on this server: {md_text(', '.join(found[:3]))}" if found
             else f"none holds it yet (put its files under one of {names}, or turn on download)")
    return ("A folder in torchvision's layout (it holds e.g. MNIST/raw/...), used as is when the files are "
            f"there, inside this server's data folders ({names}). Folders that hold this dataset {where}.")


def describe_roots() -> str:
    """One sentence naming the data folders and what each is (never a server path)."""
    parts = [f"{md_text(r.name)} (this app's own; uploads go into {md_text(r.name + '/uploads')})" if r.app
             else f"{md_text(r.name)} (added by the teacher)" for r in allowed_roots()]
    return "Data folders on this server: " + ", ".join(parts) + "."


@st.cache_data(ttl=FOUND_SECONDS, show_spinner="Looking for datasets...")
def datasets_found() -> tuple[list[str], str | None]:
    """Folder values of the class-folder datasets in the allowed roots (shared by every session:
    one walk serves the class), and a sentence when the search stopped at a limit."""
    return find_datasets()


def _choose_found() -> None:
    chosen = st.session_state.get(FOUND_KEY)
    if chosen:
        st.session_state[FOLDER_KEY] = chosen


def _unpack_upload() -> None:
    """Uploader callback: it runs before the page, so it may fill the folder box with the new dataset."""
    uploaded = st.session_state.get(UPLOAD_KEY)
    if uploaded is None:
        return
    try:
        result = unpack_zip(uploaded, dataset_name_from(uploaded.name), on_taken="next", uploader=owner_id(),
                            teacher=is_teacher())
    except UploadError as exc:
        log.info("upload refused for %s: %s", short_owner(owner_id()), exc)
        st.session_state[UPLOAD_MESSAGE_KEY] = ("error", str(exc))
        return
    log.info("upload by %s: %s", short_owner(owner_id()), result.summary())
    datasets_found.clear()
    st.session_state[FOLDER_KEY] = result.value
    st.session_state[UPLOAD_MESSAGE_KEY] = ("success", result.summary())


def _delete_upload(value: str, name: str) -> None:
    """Delete button callback: before the page runs, so the page draws without the dataset."""
    try:
        delete_upload(name, by=None if is_teacher() else owner_id())
    except UploadError as exc:
        log.info("delete of upload %s refused for %s: %s", name, short_owner(owner_id()), exc)
        st.session_state[UPLOAD_MESSAGE_KEY] = ("error", str(exc))
        return
    datasets_found.clear()
    root, relative = split_value(value)
    forget_folder_dataset(root, relative)
    st.session_state[FOLDER_KEY] = ""
    st.session_state[UPLOAD_MESSAGE_KEY] = ("success", f"Deleted the uploaded dataset {value}.")


def delete_upload_control(value: str) -> None:
    """For the student who uploaded the chosen dataset, and the teacher: delete it, after a
    second click that says what it does."""
    name = upload_name(value) if value else None
    if not name or not (is_teacher() or uploaded_by(name, owner_id())):
        return
    with st.popover("Delete this uploaded dataset", icon=":material/delete:"):
        st.markdown(f"This deletes **{md_text(value)}** from the server, for every student. Runs already trained on it "
                    "keep their weights, but the pages that show its test images will say the data is gone.")
        st.button(f"Delete {md_text(name)}", key=DELETE_KEY, type="primary", icon=":material/delete_forever:",
                  on_click=_delete_upload, args=(value, name))


def folder_choice(current: DataConfig) -> tuple[str, str, str | None]:
    """The folder widgets -> (root name, relative path, a one-sentence problem or None)."""
    roots = allowed_roots()
    found, note = datasets_found()
    if FOLDER_KEY not in st.session_state:  # first drawn, or back from another dataset
        kept = folder_value(current.folder_root, current.folder) if current.folder_root else ""
        st.session_state[FOLDER_KEY] = kept or st.session_state.get(KEPT_KEY, "")
    # The list shows the typed folder when it is one of the datasets found, else nothing chosen.
    typed_now = st.session_state.get(FOLDER_KEY, "")
    st.session_state[FOUND_KEY] = typed_now if typed_now in found else None
    c1, c2 = st.columns(2)
    c1.selectbox("Datasets on this server", found, index=None, key=FOUND_KEY, on_change=_choose_found,
                 placeholder="Choose a dataset" if found else "No dataset found yet: upload one",
                 help="Class-folder datasets found in this server's data folders.")
    example = found[0] if found else f"{roots[0].name}/<your folder>"
    typed = c2.text_input("Image folder", key=FOLDER_KEY, placeholder=example,
                          help=f"A folder inside this server's data folders, e.g. {md_text(example)}: one sub-folder "
                               "per class (or train/ and val/ folders of those, whose split is then used); unreadable "
                               "files are skipped and listed.").strip()
    st.session_state[KEPT_KEY] = st.session_state.get(FOLDER_KEY, "")
    st.caption(describe_roots())
    if note:
        st.caption(md_message(note))
    limits = WorkLimits.from_env()
    st.file_uploader("Or upload a .zip of class folders", type="zip", key=UPLOAD_KEY, on_change=_unpack_upload,
                     max_upload_size=limits.max_upload_mb,
                     help=f"One folder of images per class; at most {limits.max_upload_mb} MB, "
                          f"{limits.max_images:,} files and {limits.max_image_pixels / 1e6:g} megapixels per image.")
    message = st.session_state.pop(UPLOAD_MESSAGE_KEY, None)
    if message:
        (st.error if message[0] == "error" else st.success)(md_message(message[1]))
    if not typed:
        return "", "", None
    delete_upload_control(typed)
    try:
        root, relative = split_value(typed)
    except FolderError as exc:
        return "", "", str(exc)
    return root, relative, None
