"""An experiment while it trains, as the Experiments and Lessons pages show it: a table of its
variants (status, epoch, losses) and the small multiples of their loss curves."""
from __future__ import annotations

import streamlit as st

from core.checkpoints import CheckpointError
from ui.projector import show_chart
from ui.state import get_registry, run_history, run_mtime

ACTIVE = ("queued", "loading", "running", "probing")


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


def variants_table(record: dict, key: str) -> None:
    import pandas as pd  # with the first table: the Lessons page shows none before a step has run

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
    st.dataframe(pd.DataFrame(rows), hide_index=True, key=key,
                 column_config={"train loss": loss, "validation loss": loss, "test MSE": loss})


def loss_multiples(record: dict, key: str) -> None:
    """Every variant's loss curves, one small panel each on the same axes (they fill in live)."""
    from core.charts.experiments import curves_frame, small_multiples_chart  # Altair, pandas: on first use

    histories = variant_histories(record)
    frame = curves_frame(histories)
    with st.container(key=key):
        if frame.empty:
            st.caption("The loss curves appear here as the runs finish their first epoch.")
        else:
            epochs = max((v.get("total_epochs") or 0) for v in record["variants"])
            show_chart(small_multiples_chart(frame, list(histories), epochs))
