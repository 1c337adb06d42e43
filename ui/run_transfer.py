"""The Runs page's sections that move runs: continue one for more epochs (its owner or the
teacher continues the run itself, anyone else a copy under a new name of their own), export runs
as one .zip, import a .zip (core.bundles checks it like any run; the copies are the importer's)."""
from __future__ import annotations


import streamlit as st

from core.bundles import BundleError, export_bytes, import_runs, max_bundle_bytes
from core.checkpoints import CheckpointError, valid_run_name
from core.serving.access import may_change
from ui.owners import is_teacher, owner_id, owner_params
from ui.state import checkpoints_root, get_registry
from ui.text import md_message, md_text

RESUMABLE = ("finished", "stopped", "early_stopped")
IMPORT_RESULT_KEY = "import_result"
TRAIN_PAGE = "views/train.py"
EPOCHS_KEY = "resume_epochs"
MOST_EPOCHS_WITHOUT_LIMITS = 100_000  # a run's epochs on a server started without limits


def may_change_run(row: dict) -> bool:
    """Whether this browser may delete, continue or overwrite the run of this list_runs row."""
    return may_change(row.get("owner"), owner_id(), is_teacher())


def resume_section(runs: list[dict]) -> None:
    rows = {r["name"]: r for r in runs if r.get("status") in RESUMABLE}
    with st.expander("Continue training a run", icon=":material/resume:"):
        if not rows:
            st.caption("No stopped or finished run to continue yet.")
            return
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        name = left.selectbox("Run to continue", list(rows), key="resume_run_name")
        room = epochs_left(rows[name])
        if room < 1:
            st.caption(f"Run {md_text(name)} has trained {rows[name].get('epochs_run') or 0} epochs, this server's "
                       "limit for one run; start a new run on the Train page instead.")
            return
        if st.session_state.get(EPOCHS_KEY, 0) > room:  # chosen for a run with more room left
            del st.session_state[EPOCHS_KEY]
        epochs = right.number_input("More epochs", min_value=1, max_value=room, value=min(5, room), step=1,
                                    key=EPOCHS_KEY, help=f"At most {room} more: this server trains at most "
                                    f"{rows[name].get('epochs_run', 0) + room} epochs in one run.")
        copy_name = None
        if may_change_run(rows[name]):
            st.caption("Training goes on from the run's last weights and optimiser state; its curves continue "
                       "and it is saved again under its name (the best epoch's weights are kept).")
        else:
            st.caption(f"`{name}` is not yours (another student's or the teacher's), so it stays as it is: "
                       "training goes on from its last weights in a copy of your own, under the name below.")
            copy_name = st.text_input("Name of your copy", value=valid_run_name(f"{name}-copy"),
                                      key=f"resume_copy_name_{name}", max_chars=100)
        if st.button("Resume training", key="resume_run", icon=":material/play_arrow:", type="primary"):
            start_resume(name, int(epochs), copy_name)


def epochs_left(row: dict) -> int:
    """How many more epochs the server's epoch limit leaves the run of this list_runs row."""
    limits = get_registry().limits
    most = limits.max_epochs if limits is not None else MOST_EPOCHS_WITHOUT_LIMITS
    return max(most - int(row.get("epochs_run") or 0), 0)


def start_resume(name: str, epochs: int, copy_name: str | None) -> None:
    """Queue the resume job and follow it on the Train page; one sentence when it is refused."""
    try:
        job_id = get_registry().resume(name, epochs, owner=owner_id(), teacher=is_teacher(),
                                       as_name=copy_name.strip() if copy_name is not None else None)
    except (ValueError, CheckpointError, PermissionError) as exc:
        st.error(md_message(exc))
        return
    st.switch_page(TRAIN_PAGE, query_params={"job": job_id, **owner_params()})


def export_section(runs: list[dict]) -> None:
    names = [r["name"] for r in runs if r.get("status") != "damaged"]
    with st.expander("Export runs as a .zip", icon=":material/download:"):
        chosen = st.multiselect("Runs to export", names, key="export_runs",
                                help="E.g. every run of one experiment, to hand to the class.")
        if not chosen:
            st.caption("Choose the runs to put into one .zip; another lab imports it below.")
            return
        file_name = (chosen[0] if len(chosen) == 1 else f"{len(chosen)}-runs") + ".zip"
        root = checkpoints_root()
        # A callable: the zip is made when the button is pressed, not on every rerun of the page.
        st.download_button(f"Download {len(chosen)} run(s)", data=lambda: export_bytes(root, chosen),
                           file_name=file_name, mime="application/zip", key="export_download",
                           icon=":material/download:", on_click="ignore")


def import_section() -> None:
    with st.expander("Import runs from a .zip", icon=":material/upload:",
                     expanded=IMPORT_RESULT_KEY in st.session_state):
        upload = st.file_uploader("A .zip exported from the Runs page (or `python -m core.cli export`)",
                                  type=["zip"], key="import_upload", max_upload_size=max(1, max_bundle_bytes() >> 20))
        if upload is not None and st.button("Import", key="import_runs", icon=":material/upload:"):
            try:
                imported = import_runs(checkpoints_root(), upload, owner=owner_id(), teacher=is_teacher())
            except (BundleError, CheckpointError, ValueError) as exc:
                st.session_state[IMPORT_RESULT_KEY] = ("error", [str(exc)])
            else:
                st.session_state[IMPORT_RESULT_KEY] = ("success", [r.sentence() for r in imported])
            st.rerun()
        if IMPORT_RESULT_KEY in st.session_state:
            kind, lines = st.session_state.pop(IMPORT_RESULT_KEY)
            (st.success if kind == "success" else st.error)(md_message(" ".join(lines)))
