"""Runs: every saved run with its settings and final metrics; compare several runs' curves in one
chart (e.g. large / small × dropout 0 / 0.5) and their final metrics; delete a run."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.checkpoints import CheckpointError, delete_run
from ui.charts import COMPARE_QUANTITIES, TIME_QUANTITIES, compare_chart, compare_frame, final_metric_chart
from ui.state import SELECTED_RUN_KEY, checkpoints_root, run_color_map, run_history, run_mtime, saved_runs
from ui.run_transfer import export_section, import_section, resume_section
from ui.widgets import need_a_run
from ui.projector import show_chart

COMPARE_KEY = "compare_runs"
DELETE_ERROR_KEY = "delete_run_error"
DEFAULT_COMPARED = 4
# list_runs key -> column title, in the order the table shows them.
TABLE_COLUMNS = {
    "name": "Run", "dataset": "Dataset", "model": "Model", "latent": "Latent", "vae": "VAE",
    "conditional": "Conditional", "dropout": "Dropout", "noise": "Noise", "optimizer": "Optimiser",
    "lr": "Learning rate", "batch_size": "Batch", "epochs_run": "Epochs", "train_loss": "Train loss",
    "val_loss": "Validation loss", "test_mse": "Test MSE", "test_mae": "Test MAE", "seconds": "Seconds",
    "status": "Status", "created": "Created",
}
FINAL_METRICS = {"test_mse": "Test MSE", "test_mae": "Test MAE", "val_loss": "Validation loss (best epoch)",
                 "train_loss": "Train loss (best epoch)", "seconds": "Training time (s)"}


def runs_table(runs: list[dict]) -> None:
    table = pd.DataFrame(runs).reindex(columns=list(TABLE_COLUMNS)).rename(columns=TABLE_COLUMNS)
    loss_format = st.column_config.NumberColumn(format="%.5f")
    st.dataframe(
        table, hide_index=True, key="runs_table",
        column_config={"Learning rate": st.column_config.NumberColumn(format="%g"),
                       "Train loss": loss_format, "Validation loss": loss_format,
                       "Test MSE": loss_format, "Test MAE": loss_format,
                       "Seconds": st.column_config.NumberColumn(format="%.1f")},
    )
    damaged = [r for r in runs if r.get("status") == "damaged"]
    for row in damaged:
        st.warning(row.get("message") or f"Run {row['name']} is damaged; delete it.")


def histories(names: list[str]) -> dict[str, list[dict]]:
    """Per-epoch records of each named run; a run that cannot be loaded is said and left out."""
    loaded = {}
    for name in names:
        try:
            loaded[name] = run_history(name, run_mtime(name))
        except CheckpointError as exc:
            st.warning(str(exc))
    return loaded


def compare_section(runs: list[dict]) -> None:
    st.subheader("Compare runs")
    names = [r["name"] for r in runs if r.get("status") != "damaged"]
    if not names:
        return
    chosen = st.multiselect("Runs to compare", names, default=names[:DEFAULT_COMPARED], key=COMPARE_KEY,
                            help="E.g. large / small conv × dropout 0 / 0.5.")
    if not chosen:
        st.caption("Choose one or more runs to see their curves side by side.")
        return
    loaded = histories(chosen)
    is_vae = {r["name"]: bool(r.get("vae")) for r in runs}
    quantities = ["loss"]
    if any(is_vae.get(name) for name in loaded):
        quantities += ["reconstruction part", "KL part"]
    quantities += list(TIME_QUANTITIES)
    left, right = st.columns([3, 2], gap="large")
    with left:
        quantity = st.radio("Curve", quantities, horizontal=True, key="compare_quantity")
        frame = compare_frame(loaded, quantity)
        if frame.empty:
            st.caption("These runs recorded no epochs to draw.")
        else:
            show_chart(compare_chart(frame, quantity, run_color_map()).properties(height=440), key="compare_chart")
    with right:
        metric = st.selectbox("Final metric", list(FINAL_METRICS), key="compare_metric",
                              format_func=FINAL_METRICS.get)
        rows = [{"run": r["name"], metric: r.get(metric)} for r in runs if r["name"] in loaded]
        values = pd.DataFrame(rows).dropna()
        if values.empty:
            st.caption(f"No {FINAL_METRICS[metric].lower()} recorded for these runs.")
        else:
            # One band of fixed height per run, so one run is not one hair-thin bar.
            show_chart(final_metric_chart(values, metric, FINAL_METRICS[metric], run_color_map())
                            .properties(height=alt.Step(32)), key="final_metric_chart")


def delete_chosen_run() -> None:
    """Button callback (it runs before the page, so it may reset the widgets that named the run)."""
    name = st.session_state["delete_run_name"]
    try:
        delete_run(checkpoints_root(), name)
    except CheckpointError as exc:
        st.session_state[DELETE_ERROR_KEY] = str(exc)
        return
    if st.session_state.get(SELECTED_RUN_KEY) == name:
        del st.session_state[SELECTED_RUN_KEY]
    compared = st.session_state.get(COMPARE_KEY)
    if compared and name in compared:
        st.session_state[COMPARE_KEY] = [n for n in compared if n != name]
    st.session_state["delete_confirm"] = False
    st.toast(f"Deleted run {name}.")


def delete_section(runs: list[dict]) -> None:
    with st.expander("Delete a run", icon=":material/delete:"):
        st.selectbox("Run to delete", [r["name"] for r in runs], key="delete_run_name")
        sure = st.checkbox("Yes, delete this run and its files for good", key="delete_confirm")
        st.button("Delete run", key="delete_run", type="primary", disabled=not sure, on_click=delete_chosen_run)
        if DELETE_ERROR_KEY in st.session_state:
            st.error(st.session_state.pop(DELETE_ERROR_KEY))


def main() -> None:
    st.title("Runs")
    runs = saved_runs()
    if not runs:
        need_a_run("the Runs page")
        import_section()
        return
    st.caption(f"{len(runs)} saved run(s) in {checkpoints_root()}; the losses are those of the best "
               "epoch, whose weights were kept.")
    runs_table(runs)
    compare_section(runs)
    resume_section(runs)
    export_section(runs)
    delete_section(runs)
    import_section()


main()
