"""The Runs page's sections that move runs: continue one for more epochs, export runs as one
.zip, import a .zip (core.bundles checks it like any run)."""
from __future__ import annotations

import streamlit as st

from core.bundles import BundleError, export_bytes, import_runs, max_bundle_bytes
from core.checkpoints import CheckpointError
from ui.owners import owner_id
from ui.state import checkpoints_root, get_registry

RESUMABLE = ("finished", "stopped", "early_stopped")
IMPORT_RESULT_KEY = "import_result"
TRAIN_PAGE = "views/train.py"


def resume_section(runs: list[dict]) -> None:
    names = [r["name"] for r in runs if r.get("status") in RESUMABLE]
    with st.expander("Continue training a run", icon=":material/resume:"):
        if not names:
            st.caption("No stopped or finished run to continue yet.")
            return
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        name = left.selectbox("Run to continue", names, key="resume_run_name")
        epochs = right.number_input("More epochs", min_value=1, max_value=10_000, value=5, step=1,
                                    key="resume_epochs")
        st.caption("Training goes on from the run's last weights and optimiser state; its curves continue "
                   "and it is saved again under its name (the best epoch's weights are kept).")
        if st.button("Resume training", key="resume_run", icon=":material/play_arrow:", type="primary"):
            try:
                job_id = get_registry().resume(name, int(epochs), owner=owner_id())
            except (ValueError, CheckpointError) as exc:
                st.error(str(exc))
                return
            st.switch_page(TRAIN_PAGE, query_params={"job": job_id, "owner": owner_id()})


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
                imported = import_runs(checkpoints_root(), upload)
            except (BundleError, CheckpointError, ValueError) as exc:
                st.session_state[IMPORT_RESULT_KEY] = ("error", [str(exc)])
            else:
                st.session_state[IMPORT_RESULT_KEY] = ("success", [r.sentence() for r in imported])
            st.rerun()
        if IMPORT_RESULT_KEY in st.session_state:
            kind, lines = st.session_state.pop(IMPORT_RESULT_KEY)
            (st.success if kind == "success" else st.error)(" ".join(lines))
