"""Experiments: a whole comparison in one click. Pick a preset (a homework question) or build a
grid on your own settings (ui.experiment_setup), read the time estimate measured in the background
(ui.experiment_estimate), Start queues every variant as an ordinary run, the live table and small
multiples fill in, and the views that answer the question follow (ui.experiment_results).

The experiment shown is kept in the URL (?experiment=<name>), so a reload or a shared link shows it.
"""
from __future__ import annotations

import streamlit as st

from core.data import DataError
from core.experiments import PRESETS, ExperimentConfig
from core.jobs import JobPermissionError
from core.serving.access import same_owner
from ui.experiment_delete import delete_section
from ui.experiment_estimate import estimate_section
from ui.experiment_live import ACTIVE, loss_multiples, variants_table
from ui.experiment_results import results_section
from ui.experiment_setup import new_experiment_form
from ui.owners import is_teacher, owner_id
from ui.state import get_experiments
from ui.text import md_message, md_text
from ui.url_state import url_widget

SHOWN_KEY = "exp_shown"
POLLING_KEY = "exp_live_polling"
SCROLL_KEY = "exp_scroll_to_live"  # set by Start: the next full run scrolls the live view into sight
EXPERIMENT_PARAM = "experiment"
POLL_SECONDS = 1.0
STATUS_ICONS = {"queued": ":material/schedule:", "running": ":material/play_circle:",
                "stopping": ":material/stop_circle:", "finished": ":material/check_circle:",
                "stopped": ":material/stop_circle:", "failed": ":material/error:",
                "interrupted": ":material/warning:"}
# Brings the live view into sight after Start (it sits below the form, out of a 900-px window).
# A constant script: nothing a user typed goes into it.
SCROLL_SCRIPT = """<script>
(function () {
  let tries = 0;
  const go = () => {
    const live = document.querySelector(".st-key-exp_live");
    if (live) { live.scrollIntoView({behavior: "smooth", block: "start"}); }
    else if (tries++ < 40) { setTimeout(go, 100); }
  };
  go();
})();
</script>"""


# ---------------------------------------------------------------- starting

def new_experiment_section() -> None:
    st.subheader("New experiment")
    new = new_experiment_form()
    if new is None:
        return
    estimate_section(new.exp, new.dataset)
    if st.button("Start experiment", key="exp_start", type="primary", icon=":material/play_arrow:"):
        start_experiment(new.exp)


def start_experiment(exp: ExperimentConfig) -> None:
    try:
        name = get_experiments().start(exp, owner=owner_id(), teacher=is_teacher())
    except (ValueError, DataError) as exc:  # the server's limits or this student's share, or data that does not load
        st.error(md_message(exc))
        return
    st.session_state[SHOWN_KEY] = name  # shown below, and in the URL (ui.url_state)
    st.session_state[SCROLL_KEY] = True
    st.toast(f"Started experiment {md_text(name)}.")


# ---------------------------------------------------------------- live

def may_stop(record: dict) -> bool:
    """Whether this browser may stop the experiment: the one that started it, or the teacher."""
    owner, me = record.get("owner"), owner_id()  # the id it was started with, or its key once read back
    return is_teacher() or owner is None or owner == me or same_owner(owner, me)


def stop_experiment(name: str) -> None:
    try:
        get_experiments().stop(name, by=None if is_teacher() else owner_id())
    except JobPermissionError as exc:
        st.session_state["exp_stop_error"] = str(exc)
        return
    st.toast(f"Stopping {md_text(name)}: queued runs are dropped, finished ones kept.")


def live_view(name: str) -> None:
    manager = get_experiments()
    record = manager.record(name)
    icon = STATUS_ICONS.get(record["status"], "")
    running = manager.is_running(name)
    text = md_message(record.get("message") or record["status"])
    st.markdown(f"#### {icon} {md_text(name)}: {record['status']}")
    if record["status"] in ("finished",):
        st.success(text)
    elif record["status"] in ("failed", "interrupted"):
        st.error(text) if record["status"] == "failed" else st.warning(text)
    elif not running:
        st.info(text)
    if running:
        left, right = st.columns([1, 4], vertical_alignment="center")
        mine = may_stop(record)
        left.button("Stop experiment", key="exp_stop", icon=":material/stop:", on_click=stop_experiment, args=(name,),
                    disabled=not mine)
        done = sum(1 for v in record["variants"] if v["status"] not in ACTIVE)
        right.progress(done / max(len(record["variants"]), 1),
                       text=f"{done} of {len(record['variants'])} variants done")
        if not mine:
            st.caption("Only the student who started this experiment (or the teacher) can stop it.")
        if "exp_stop_error" in st.session_state:
            st.error(md_message(st.session_state.pop("exp_stop_error")))
    if record["variants"]:
        variants_table(record, "exp_variants")
        loss_multiples(record, "exp_small_multiples")
    # A fragment cannot change its own run_every: once the experiment ends, a full rerun draws the
    # results and a fragment that no longer polls.
    if st.session_state.get(POLLING_KEY) and not running:
        st.session_state[POLLING_KEY] = False
        st.rerun()


# ---------------------------------------------------------------- the page

def experiment_section() -> None:
    manager = get_experiments()
    records = manager.records()
    st.subheader("Experiments on this server")
    if not records:
        st.caption("No experiment yet: choose a preset above and press Start experiment.")
        return
    names = [r["name"] for r in records]
    titles = {r["name"]: PRESETS[r["config"]["preset"]].title if r["config"].get("preset") in PRESETS else "custom grid"
              for r in records}
    # The experiment shown travels in the URL (?experiment=): a reload or a shared link shows it.
    url_widget(SHOWN_KEY, EXPERIMENT_PARAM, names[0], parse=str, valid=lambda n: n in names)
    if st.session_state[SHOWN_KEY] not in names:  # e.g. its folder was deleted
        st.session_state[SHOWN_KEY] = names[0]
    st.selectbox("Experiment shown", names, key=SHOWN_KEY, format_func=lambda n: f"{n} · {titles[n]}")
    name = st.session_state[SHOWN_KEY]
    record = manager.record(name)
    question = ExperimentConfig.from_dict(record["config"]).question
    if question:
        st.caption(question)
    running = manager.is_running(name)
    st.session_state[POLLING_KEY] = running
    with st.container(key="exp_live"):
        st.fragment(live_view, run_every=POLL_SECONDS if running else None)(name)
    if st.session_state.pop(SCROLL_KEY, False):
        st.html(SCROLL_SCRIPT, unsafe_allow_javascript=True)
    if not running:
        results_section(manager.record(name))
        delete_section(manager.record(name), SHOWN_KEY)


def main() -> None:
    st.title("Experiments")
    st.caption("A comparison in one click: every variant is an ordinary run (it appears on Runs and every "
               "Inspect page), kept together with the views that answer the question.")
    with st.container(key="exp_new"):
        new_experiment_section()
    st.divider()
    experiment_section()


main()
