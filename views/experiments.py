"""Experiments: a whole comparison in one click. Pick a preset (a homework question) or build a
grid on your own settings (ui.experiment_setup), read the time estimate measured in the background
(ui.experiment_estimate), Start queues every variant as an ordinary run, the live table and small
multiples fill in, and the views that answer the question follow (ui.experiment_results).

The experiment shown is kept in the URL (?experiment=<name>), so a reload or a shared link shows it.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.checkpoints import CheckpointError
from core.experiments import PRESETS, ExperimentConfig
from core.jobs import JobPermissionError
from ui.experiment_charts import curves_frame, small_multiples_chart
from ui.experiment_estimate import estimate_section
from ui.experiment_results import results_section
from ui.experiment_setup import new_experiment_form
from ui.owners import is_teacher, owner_id
from ui.projector import show_chart
from ui.state import get_experiments, get_registry, run_history, run_mtime
from ui.url_state import url_widget

SHOWN_KEY = "exp_shown"
POLLING_KEY = "exp_live_polling"
SCROLL_KEY = "exp_scroll_to_live"  # set by Start: the next full run scrolls the live view into sight
EXPERIMENT_PARAM = "experiment"
POLL_SECONDS = 1.0
ACTIVE = ("queued", "loading", "running", "probing")
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
        try:
            name = get_experiments().start(new.exp, owner=owner_id())
        except ValueError as exc:  # the server's limits, in one sentence
            st.error(str(exc))
            return
        st.session_state[SHOWN_KEY] = name  # shown below, and in the URL (ui.url_state)
        st.session_state[SCROLL_KEY] = True
        st.toast(f"Started experiment {name}.")


# ---------------------------------------------------------------- live

def variant_histories(record: dict) -> dict[str, list]:
    """label -> per-epoch records: live from the registry while a job runs, else the saved run's."""
    registry = get_registry()
    histories = {}
    for v in record["variants"]:
        history = []
        if v.get("status") in ACTIVE and v.get("job"):
            try:
                history = registry.snapshot(v["job"]).history
            except KeyError:
                history = []
        elif v.get("run"):
            try:
                history = run_history(v["run"], run_mtime(v["run"]))
            except CheckpointError:
                history = []
        histories[v["label"]] = history
    return histories


def variants_table(record: dict) -> None:
    rows = []
    for v in record["variants"]:
        row = {"#": v["index"] + 1, "variant": v["label"], "status": v["status"],
               "epoch": f"{v.get('epochs_run') or v.get('epoch') or 0}/{v.get('total_epochs') or '-'}",
               "train loss": v.get("train_loss"), "validation loss": v.get("val_loss"),
               "test MSE": v.get("test_mse"), "run": v.get("run")}
        if v.get("trial_state"):
            row["trial"] = v["trial_state"]
        rows.append(row)
    loss = st.column_config.NumberColumn(format="%.5f")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="exp_variants",
                 column_config={"train loss": loss, "validation loss": loss, "test MSE": loss})


def may_stop(record: dict) -> bool:
    """Whether this browser may stop the experiment: the one that started it, or the teacher."""
    return is_teacher() or record.get("owner") in (None, owner_id())


def stop_experiment(name: str) -> None:
    try:
        get_experiments().stop(name, by=None if is_teacher() else owner_id())
    except JobPermissionError as exc:
        st.session_state["exp_stop_error"] = str(exc)
        return
    st.toast(f"Stopping {name}: queued runs are dropped, finished ones kept.")


def live_view(name: str) -> None:
    manager = get_experiments()
    record = manager.record(name)
    icon = STATUS_ICONS.get(record["status"], "")
    running = manager.is_running(name)
    text = record.get("message") or record["status"]
    st.markdown(f"#### {icon} {name}: {record['status']}")
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
            st.error(st.session_state.pop("exp_stop_error"))
    if record["variants"]:
        variants_table(record)
        histories = variant_histories(record)
        frame = curves_frame(histories)
        with st.container(key="exp_small_multiples"):
            if frame.empty:
                st.caption("The loss curves appear here as the runs finish their first epoch.")
            else:
                epochs = max((v.get("total_epochs") or 0) for v in record["variants"])
                show_chart(small_multiples_chart(frame, list(histories), epochs))
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


def main() -> None:
    st.title("Experiments")
    st.caption("A comparison in one click: every variant is an ordinary run (it appears on Runs and every "
               "Inspect page), kept together with the views that answer the question.")
    with st.container(key="exp_new"):
        new_experiment_section()
    st.divider()
    experiment_section()


main()
