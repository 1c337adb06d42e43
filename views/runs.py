"""Runs: every saved run with its settings and final metrics; compare several runs' curves in one
chart (e.g. large / small × dropout 0 / 0.5) and their final metrics; delete a run."""
from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from core.checkpoints import CheckpointError, delete_run
from core.serving.access import OwnerError
from core.config import RunConfig
from core.defaults import steps_per_epoch
from core.reports.report import run_report
from core.charts.training import COMPARE_QUANTITIES, TIME_QUANTITIES, compare_chart, compare_frame, final_metric_chart
from ui.state import (SELECTED_RUN_KEY, checkpoints_root, dataset_for, get_registry, run_color_map, run_history,
                      run_mtime, saved_runs)
from ui.owners import is_teacher, owner_id
from ui.report_downloads import report_downloads
from ui.run_filters import filtered_runs
from ui.run_transfer import export_section, import_section, may_change_run, resume_section
from ui.widgets import need_a_run
from ui.projector import chart_height, projector_on, show_chart
from ui.url_state import url_widget
from ui.text import md_message, md_text

COMPARE_KEY = "compare_runs"
DELETE_ERROR_KEY = "delete_run_error"
DEFAULT_COMPARED = 4
# list_runs key -> column title, in the order the table shows them.
TABLE_COLUMNS = {
    "name": "Run", "dataset": "Dataset", "test_mse": "Test MSE", "val_loss": "Validation loss",
    "best_epoch": "Best epoch", "stopped_at": "Stopped at", "status": "Status", "train_loss": "Train loss",
    "test_mae": "Test MAE", "model": "Model", "latent": "Latent", "vae": "VAE", "conditional": "Conditional",
    "dropout": "Dropout", "noise": "Noise", "optimizer": "Optimiser", "lr": "Learning rate",
    "batch_size": "Batch", "epochs_run": "Epochs", "seconds": "Seconds", "experiment": "Experiment",
    "created": "Created",
}
# Runs that ended before their last epoch: early stopping, a Stop, a diverging loss.
STOPPED_STATUSES = ("early_stopped", "stopped", "diverged")
X_LABELS = {"epoch": "Epoch", "step": "Optimiser step", "elapsed": "Seconds of training"}
# Projector mode: the table a room can read without scrolling sideways: the results, then at most
# PROJECTOR_SETTINGS of these settings, those that differ between the runs (the rest under "Every column").
PROJECTOR_RESULTS = ["Run", "Test MSE", "Validation loss", "Best epoch"]
PROJECTOR_SETTING_CHOICES = ["Dataset", "Model", "Latent", "VAE", "Conditional", "Dropout", "Noise", "Optimiser",
                             "Learning rate", "Batch", "Epochs", "Status"]
PROJECTOR_SETTINGS = 4
FINAL_METRICS = {"test_mse": "Test MSE", "test_mae": "Test MAE", "val_loss": "Validation loss (best epoch)",
                 "train_loss": "Train loss (best epoch)", "seconds": "Training time (s)"}


def differing_columns(table: pd.DataFrame, columns: list[str]) -> list[str]:
    """Those of `columns` whose values are not the same for every run (an empty cell counts)."""
    return [c for c in columns if table[c].astype(str).nunique(dropna=False) > 1]


def projector_columns(table: pd.DataFrame) -> list[str]:
    """The columns projector mode shows: the results, then the first few settings that differ."""
    return PROJECTOR_RESULTS + differing_columns(table, PROJECTOR_SETTING_CHOICES)[:PROJECTOR_SETTINGS]


def runs_table(runs: list[dict]) -> None:
    """Names and results first, the settings after them; on a projector only the results and
    the settings that tell the runs apart (a wide table scrolled sideways is unreadable in a room),
    every column in an expander below."""
    rows = [{**r, "stopped_at": r.get("epochs_run") if r.get("status") in STOPPED_STATUSES else None}
            for r in runs]
    table = pd.DataFrame(rows).reindex(columns=list(TABLE_COLUMNS)).rename(columns=TABLE_COLUMNS)
    if projector_on():
        show_runs_table(table, "runs_table", projector_columns(table))
        with st.expander("Every column"):
            show_runs_table(table, "runs_table_every_column")
    else:
        show_runs_table(table, "runs_table")
    damaged = [r for r in runs if r.get("status") == "damaged"]
    for row in damaged:
        st.warning(md_message(row.get("message") or f"Run {row['name']} is damaged; delete it."))


def show_runs_table(table: pd.DataFrame, key: str, columns: list[str] | None = None) -> None:
    loss_format = st.column_config.NumberColumn(format="%.5f")
    st.dataframe(
        table, hide_index=True, key=key, column_order=columns,
        column_config={"Run": st.column_config.TextColumn(pinned=True),
                       "Best epoch": st.column_config.NumberColumn(format="%d"),
                       "Stopped at": st.column_config.NumberColumn(format="%d", help="The epoch the run ended at, "
                                                                   "before its last (early stopping or Stop)."),
                       "Learning rate": st.column_config.NumberColumn(format="%g"),
                       "Train loss": loss_format, "Validation loss": loss_format,
                       "Test MSE": loss_format, "Test MAE": loss_format,
                       "Seconds": st.column_config.NumberColumn(format="%.1f")},
    )


def histories(names: list[str]) -> dict[str, list[dict]]:
    """Per-epoch records of each named run; a run that cannot be loaded is said and left out."""
    loaded = {}
    for name in names:
        try:
            loaded[name] = run_history(name, run_mtime(name))
        except CheckpointError as exc:
            st.warning(md_message(exc))
    return loaded


def steps_per_epoch_of(names: list[str]) -> dict[str, int]:
    """Optimiser steps per epoch of each run (training images / batch), for the step axis."""
    steps = {}
    for name in names:
        try:
            config = RunConfig.from_json((Path(checkpoints_root()) / name / "config.json").read_text(encoding="utf-8"))
            steps[name] = steps_per_epoch(len(dataset_for(config.data).splits["train"]), config.train.batch_size)
        except Exception:  # a run whose data is not here: its curve has no step axis
            continue
    return steps


def default_compared(runs: list[dict], names: list[str]) -> list[str]:
    """The newest few runs of one dataset: the current run's, else the newest run's."""
    current = st.session_state.get(SELECTED_RUN_KEY)
    by_name = {r["name"]: r for r in runs}
    dataset = by_name.get(current, by_name[names[0]]).get("dataset")
    return [n for n in names if by_name[n].get("dataset") == dataset][:DEFAULT_COMPARED]


def compare_section(runs: list[dict]) -> None:
    st.subheader("Compare runs")
    names = [r["name"] for r in runs if r.get("status") != "damaged"]
    if not names:
        return
    url_widget(COMPARE_KEY, "compare", default_compared(runs, names),
               valid=lambda chosen: all(n in names for n in chosen))
    chosen = st.multiselect("Runs to compare", names, key=COMPARE_KEY,
                            help="E.g. large / small conv × dropout 0 / 0.5; they start as the newest runs "
                                 "of one dataset.")
    if not chosen:
        st.caption("Choose one or more runs to see their curves side by side.")
        return
    loaded = histories(chosen)
    is_vae = {r["name"]: bool(r.get("vae")) for r in runs}
    quantities = ["loss"]
    if any(is_vae.get(name) for name in loaded):
        quantities += ["reconstruction part", "KL part"]
    quantities += list(TIME_QUANTITIES)
    curve_col, x_col = st.columns([3, 2])
    url_widget("compare_quantity", "curve", "loss", valid=lambda q: q in quantities)
    quantity = curve_col.radio("Curve", quantities, horizontal=True, key="compare_quantity")
    url_widget("compare_x", "x", "epoch", valid=lambda x: x in X_LABELS)
    x = x_col.radio("Against", list(X_LABELS), format_func=X_LABELS.get, horizontal=True, key="compare_x",
                    help="Optimiser steps and seconds show what a batch size costs: small batches make "
                         "more steps per epoch, each epoch takes longer.")
    frame = compare_frame(loaded, quantity, steps_per_epoch_of(list(loaded)) if x == "step" else None)
    if x == "step":
        frame = frame.dropna(subset=["step"])
    best = {r["name"]: r.get("best_epoch") for r in runs if r["name"] in loaded}
    if frame.empty:
        st.caption("These runs recorded no epochs to draw.")
    else:
        # The full width: a projector shows the curves, not the legend squeezed beside them.
        show_chart(compare_chart(frame, quantity, run_color_map(), x, best).properties(height=chart_height(440)),
                   key="compare_chart")
        if quantity in COMPARE_QUANTITIES:
            st.caption("Solid: train, dashed: validation. The diamond marks each run's best validation "
                       "epoch, whose weights were kept.")
    metric = st.selectbox("Final metric", list(FINAL_METRICS), key="compare_metric",
                          format_func=FINAL_METRICS.get)
    rows = [{"run": r["name"], metric: r.get(metric)} for r in runs if r["name"] in loaded]
    values = pd.DataFrame(rows).dropna()
    if values.empty:
        st.caption(f"No {FINAL_METRICS[metric].lower()} recorded for these runs.")
    else:
        # One band of fixed height per run, so one run is not one hair-thin bar.
        show_chart(final_metric_chart(values, metric, FINAL_METRICS[metric], run_color_map())
                   .properties(height=alt.Step(chart_height(32))), key="final_metric_chart")


def report_section(runs: list[dict]) -> None:
    names = [r["name"] for r in runs if r.get("status") != "damaged"]
    with st.expander("Report of a run", icon=":material/description:"):
        name = st.selectbox("Run", names, key="report_run",
                            help="Its curves, reconstructions, codes and samples, its settings and the command "
                                 "line that trains it again, as one file.")
        root, load = checkpoints_root(), get_registry().load_data
        report_downloads(lambda: run_report(root, name, load), name, "run_report")


def delete_chosen_run() -> None:
    """Button callback (it runs before the page, so it may reset the widgets that named the run)."""
    name = st.session_state["delete_run_name"]
    try:
        delete_run(checkpoints_root(), name, by=owner_id(), teacher=is_teacher())
    except (CheckpointError, OwnerError) as exc:
        st.session_state[DELETE_ERROR_KEY] = str(exc)
        return
    if st.session_state.get(SELECTED_RUN_KEY) == name:
        del st.session_state[SELECTED_RUN_KEY]
    compared = st.session_state.get(COMPARE_KEY)
    if compared and name in compared:
        st.session_state[COMPARE_KEY] = [n for n in compared if n != name]
    st.session_state["delete_confirm"] = False
    st.toast(f"Deleted run {md_text(name)}.")


def delete_section(runs: list[dict]) -> None:
    with st.expander("Delete a run", icon=":material/delete:"):
        name = st.selectbox("Run to delete", [r["name"] for r in runs], key="delete_run_name")
        row = next((r for r in runs if r["name"] == name), None)
        allowed = row is not None and may_change_run(row)
        if not allowed:
            st.caption(f"Only the student who made `{name}` (or the teacher) can delete it; you can still look at it "
                       "and compare it.")
        sure = st.checkbox("Yes, delete this run and its files for good", key="delete_confirm", disabled=not allowed)
        st.button("Delete run", key="delete_run", type="primary", disabled=not (sure and allowed),
                  on_click=delete_chosen_run)
        if DELETE_ERROR_KEY in st.session_state:
            st.error(md_message(st.session_state.pop(DELETE_ERROR_KEY)))


def main() -> None:
    st.title("Runs")
    runs = saved_runs()
    if not runs:
        need_a_run("the Runs page")
        import_section()
        return
    # The count only: where the server keeps its checkpoints is not for students' eyes.
    st.caption(f"{len(runs)} saved run{'s' if len(runs) != 1 else ''} on this server; the losses are those of "
               "the best epoch, whose weights were kept.")
    runs = filtered_runs(runs)
    if not runs:
        st.info("No run matches these filters; loosen them above.")
        import_section()
        return
    runs_table(runs)
    compare_section(runs)
    resume_section(runs)
    export_section(runs)
    report_section(runs)
    delete_section(runs)
    import_section()


main()
