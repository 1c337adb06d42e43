"""The Experiments page's delete control: the owner of an experiment (or the teacher) deletes its
record and study once it has ended; its runs stay on the Runs page. Everyone else sees why not."""
from __future__ import annotations

import streamlit as st

from core.experiments import ExperimentError
from core.serving.access import OwnerError, is_owner_key, may_change, owner_key
from ui.owners import is_teacher, owner_id
from ui.state import get_experiments
from ui.text import md_message, md_text

CONFIRM_KEY = "exp_delete_confirm"
ERROR_KEY = "exp_delete_error"


def delete_section(record: dict, shown_key: str) -> None:
    """Under an ended experiment; `shown_key`: the page's widget naming the experiment shown."""
    name = record["name"]
    with st.expander("Delete this experiment", icon=":material/delete:"):
        owner = record.get("owner")  # the id it was started with here, or its key once read from disk
        if not may_change(owner if owner is None or is_owner_key(owner) else owner_key(owner), owner_id(),
                          is_teacher()):
            st.caption("Only the student who started this experiment (or the teacher) can delete it.")
            return
        st.caption(f"Deletes experiment {md_text(name)} and its views; its runs stay on the Runs page.")
        confirmed = st.checkbox("Yes, delete it", key=CONFIRM_KEY)
        st.button("Delete experiment", key="exp_delete", icon=":material/delete:", disabled=not confirmed,
                  on_click=_delete, args=(name, shown_key))
    if ERROR_KEY in st.session_state:
        st.error(md_message(st.session_state.pop(ERROR_KEY)))


def _delete(name: str, shown_key: str) -> None:
    """Button callback (it runs before the page, so it may change which experiment is shown)."""
    try:
        get_experiments().delete(name, by=owner_id(), teacher=is_teacher())
    except (ExperimentError, OwnerError) as exc:
        st.session_state[ERROR_KEY] = str(exc)
        return
    st.session_state.pop(shown_key, None)
    st.session_state[CONFIRM_KEY] = False
    st.toast(f"Deleted experiment {md_text(name)}; its runs are still on the Runs page.")
