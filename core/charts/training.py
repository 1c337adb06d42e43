"""Altair chart builders for the Data, Train, Runs and Reconstructions pages.

Every builder takes plain Python data and returns an `alt.Chart`; the pages hand it to
`st.altair_chart`. Charts with several lines get a legend selection: clicking a legend entry
highlights that line and fades the others.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import altair as alt
import numpy as np
import pandas as pd

from core.charts.palette import category_scale, run_scale

# Axis numbers: 4 significant digits, trailing zeros dropped. A bare "~g" lets Vega pick the
# precision from the tick step, which writes 70 as "7e+1"; a diverging run's 1e34 still reads 1e+34.
NUMBER_FORMAT = ".4~g"
# Per-epoch quantities of an EpochRecord, with the names the charts show.
EPOCH_SERIES = {
    "train_loss": "train loss",
    "val_loss": "validation loss",
    "train_recon": "train reconstruction",
    "val_recon": "validation reconstruction",
    "train_kl": "train KL part",
    "val_kl": "validation KL part",
}


def _as_dict(record) -> dict:
    return record if isinstance(record, dict) else vars(record)


def _legend_highlight(field: str):
    """A point selection bound to the legend of `field`: click to highlight, shift-click for more."""
    return alt.selection_point(fields=[field], bind="legend")


def epoch_frame(history: Iterable, keys: Sequence[str]) -> pd.DataFrame:
    """Long table (epoch, series, value) of the given EpochRecord fields."""
    rows = []
    for record in history:
        record = _as_dict(record)
        for key in keys:
            value = record.get(key)
            if value is not None:
                rows.append({"epoch": int(record["epoch"]), "series": EPOCH_SERIES.get(key, key),
                             "value": float(value)})
    return pd.DataFrame(rows, columns=["epoch", "series", "value"])


def epoch_lines(data, title: str | alt.Title, y_title: str = "loss", legend_columns: int = 2) -> alt.Chart:
    """One line per series over epochs, with points, tooltips and a legend selection, for an
    epoch_frame table (or a named alt.Data standing for one). legend_columns: entries a row."""
    pick = _legend_highlight("series")
    return (
        alt.Chart(data, title=title)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("value:Q", title=y_title, scale=alt.Scale(zero=False), axis=alt.Axis(format=NUMBER_FORMAT)),
            # A few entries a row, not all in one: a VAE's four parts in one row ran past a
            # half-width chart's edge and were cut ("validation reco").
            color=alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom", columns=legend_columns)),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.15)),
            tooltip=["series:N", "epoch:Q", alt.Tooltip("value:Q", format=".5f")],
        )
        .add_params(pick)
        .interactive(bind_y=False)
    )


LOSS_KEYS = ["train_loss", "val_loss"]
VAE_PART_KEYS = ["train_recon", "val_recon", "train_kl", "val_kl"]
LOSS_TITLE = "Loss per epoch"
# loss = reconstruction + β × KL part; the KL part is the KL of an image per pixel value (per 784 at
# least: core.models.Autoencoder.loss_parts), so both parts read on one axis.
# The formula as a subtitle: in one title line it ran past a half-width chart in projector mode.
VAE_PARTS_TITLE = alt.Title("VAE loss parts", subtitle="loss = reconstruction + β × KL part")
# One entry a row: two of "validation reconstruction" side by side do not fit a half-width chart
# in projector mode's larger font.
VAE_PARTS_LEGEND_COLUMNS = 1


def loss_lines(data) -> alt.Chart:
    """loss_chart's chart for an epoch_frame of LOSS_KEYS (or a named alt.Data standing for one)."""
    return epoch_lines(data, LOSS_TITLE)


def vae_parts_lines(data) -> alt.Chart:
    """vae_parts_chart's chart for an epoch_frame of VAE_PART_KEYS (or a named alt.Data)."""
    return epoch_lines(data, VAE_PARTS_TITLE, "value", legend_columns=VAE_PARTS_LEGEND_COLUMNS)


def loss_chart(history: Iterable) -> alt.Chart:
    """Train and validation loss per epoch."""
    return loss_lines(epoch_frame(history, LOSS_KEYS))


def vae_parts_chart(history: Iterable) -> alt.Chart:
    """Reconstruction and KL parts of a VAE's loss per epoch."""
    return vae_parts_lines(epoch_frame(history, VAE_PART_KEYS))


def batch_frame(batch_losses: Sequence[float], window: int, stride: int = 1) -> pd.DataFrame:
    """Long table (batch, series, loss): the raw per-batch loss and its rolling mean. A long run
    keeps one value per `stride` batches (their mean); it is drawn at the last of them. The series
    column is categorical: a live view sends this table on every poll, and a category code per
    row turns into Arrow far faster than a string per row."""
    raw = np.asarray(batch_losses, dtype=float)
    smooth = pd.Series(raw).rolling(window=max(1, window), min_periods=1).mean().to_numpy()
    index = np.arange(1, len(raw) + 1) * stride
    series = pd.Categorical.from_codes(np.repeat([0, 1], len(raw)),
                                       categories=["per batch", f"rolling mean ({window})"])
    return pd.DataFrame({"batch": np.tile(index, 2), "series": series, "loss": np.concatenate([raw, smooth])})


def batch_window(batch_losses: Sequence[float]) -> int:
    """The rolling mean's window: about a fiftieth of the run, at least 5 batches."""
    return max(5, len(batch_losses) // 50)


def batch_loss_chart(batch_losses: Sequence[float], window: int | None = None, stride: int = 1) -> alt.Chart:
    """The training loss of every batch, faint, with a smoothed line on top."""
    window = batch_window(batch_losses) if window is None else window
    return batch_lines(batch_frame(batch_losses, window, stride))


def batch_lines(data) -> alt.Chart:
    """The chart of batch_loss_chart for a batch_frame table (or a named alt.Data standing for one)."""
    pick = _legend_highlight("series")
    return (
        alt.Chart(data, title="Training loss per batch")
        .mark_line()
        .encode(
            x=alt.X("batch:Q", title="batch (all epochs)", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("loss:Q", title="loss", scale=alt.Scale(zero=False), axis=alt.Axis(format=NUMBER_FORMAT)),
            color=alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom")),
            strokeWidth=alt.condition("datum.series == 'per batch'", alt.value(1), alt.value(2.5)),
            opacity=alt.condition(pick, alt.value(0.9), alt.value(0.1)),
            tooltip=["series:N", "batch:Q", alt.Tooltip("loss:Q", format=".5f")],
        )
        .add_params(pick)
        .interactive(bind_y=False)
    )


def class_counts_frame(counts_by_split: dict[str, dict[str, int]]) -> pd.DataFrame:
    """Long table (class, split, count) from {split: {class name: count}}."""
    rows = [{"class": name, "split": split, "count": int(n)}
            for split, counts in counts_by_split.items() for name, n in counts.items()]
    return pd.DataFrame(rows, columns=["class", "split", "count"])


def class_counts_chart(frame: pd.DataFrame, class_order: Sequence[str]) -> alt.Chart:
    """Images per class, stacked by split."""
    pick = _legend_highlight("split")
    return (
        alt.Chart(frame, title="Images per class")
        .mark_bar()
        .encode(
            # Every class labelled (labelOverlap off), however many there are.
            x=alt.X("class:N", title="class", sort=list(class_order),
                    axis=alt.Axis(labelOverlap=False, labelAngle=0 if max(map(len, class_order), default=0) <= 3
                                  else -45)),
            y=alt.Y("count:Q", title="images", stack="zero"),
            color=alt.Color("split:N", title="split", sort=["train", "validation", "test"],
                            scale=category_scale(["train", "validation", "test"])),
            order=alt.Order("split:N"),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.25)),
            tooltip=["class:N", "split:N", "count:Q"],
        )
        .add_params(pick)
    )


# Per-epoch quantities that can be compared across runs, with their axis titles.
COMPARE_QUANTITIES = {
    "loss": ("train_loss", "val_loss", "loss"),
    "reconstruction part": ("train_recon", "val_recon", "reconstruction loss"),
    "KL part": ("train_kl", "val_kl", "KL part"),
}
TIME_QUANTITIES = {"seconds per epoch": "seconds", "images per second": "images_per_s"}
# What the compare chart's x axis can be: field -> axis title. "step" (optimiser steps so far)
# and "elapsed" (training seconds so far) answer the batch-size lesson: a small batch makes more
# steps per epoch, and each epoch takes longer.
COMPARE_X = {"epoch": "epoch", "step": "optimiser steps", "elapsed": "seconds of training"}


def compare_frame(histories: dict[str, Sequence], quantity: str,
                  steps_per_epoch: dict[str, int] | None = None) -> pd.DataFrame:
    """Long table (run, split, epoch, step, elapsed, value) of one quantity for several runs;
    step is epoch × the run's steps per epoch (when known), elapsed the seconds up to that epoch."""
    rows = []
    for run, history in histories.items():
        elapsed = 0.0
        per_epoch = (steps_per_epoch or {}).get(run)
        for record in history:
            record = _as_dict(record)
            elapsed += float(record.get("seconds") or 0.0)
            if quantity in COMPARE_QUANTITIES:
                train_key, val_key, _ = COMPARE_QUANTITIES[quantity]
                pairs = (("train", train_key), ("validation", val_key))
            else:
                pairs = (("train", TIME_QUANTITIES[quantity]),)
            for split, key in pairs:
                value = record.get(key)
                if value is not None:
                    epoch = int(record["epoch"])
                    rows.append({"run": run, "split": split, "epoch": epoch,
                                 "step": epoch * per_epoch if per_epoch else None,
                                 "elapsed": round(elapsed, 3), "value": float(value)})
    return pd.DataFrame(rows, columns=["run", "split", "epoch", "step", "elapsed", "value"])


def _run_color(frame: pd.DataFrame, run_colors: dict[str, str] | None, **kwargs) -> alt.Color:
    """Colour by run: each run's stable colour (core.charts.palette.run_colors) when given."""
    scale = run_scale(list(frame["run"]), run_colors) if run_colors is not None else alt.Undefined
    return alt.Color("run:N", scale=scale, **kwargs)


def best_epoch_frame(frame: pd.DataFrame, best_epochs: dict[str, int]) -> pd.DataFrame:
    """The validation points of each run's best epoch (whose weights were kept)."""
    val = frame[frame["split"] == "validation"]
    marks = [val[(val["run"] == run) & (val["epoch"] == epoch)] for run, epoch in best_epochs.items() if epoch]
    return pd.concat(marks, ignore_index=True) if marks else val.iloc[0:0]


def compare_chart(frame: pd.DataFrame, quantity: str, run_colors: dict[str, str] | None = None,
                  x: str = "epoch", best_epochs: dict[str, int] | None = None) -> alt.Chart | alt.LayerChart:
    """Several runs in one chart: colour = run, dash = train / validation; click the legend.
    x: "epoch", "step" or "elapsed" (COMPARE_X). best_epochs (run -> epoch) adds a large
    diamond on each run's best validation point: where early stopping kept the weights."""
    y_title = COMPARE_QUANTITIES[quantity][2] if quantity in COMPARE_QUANTITIES else quantity
    # "Seconds per epoch" is already per epoch: no "per epoch" twice.
    title = quantity[:1].upper() + quantity[1:]
    if quantity not in TIME_QUANTITIES:
        title += {"epoch": " per epoch", "step": " per optimiser step", "elapsed": " over training time"}[x]
    pick = _legend_highlight("run")
    x_axis = alt.Axis(tickMinStep=1, format="d") if x in ("epoch", "step") else alt.Axis(format=NUMBER_FORMAT)
    color = _run_color(frame, run_colors, title="run", legend=alt.Legend(orient="bottom", columns=2, labelLimit=400))
    lines = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X(f"{x}:Q", title=COMPARE_X[x], axis=x_axis),
            y=alt.Y("value:Q", title=y_title, scale=alt.Scale(zero=False), axis=alt.Axis(format=NUMBER_FORMAT)),
            color=color,
            strokeDash=alt.StrokeDash("split:N", title="split", sort=["train", "validation"]),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
            tooltip=["run:N", "split:N", "epoch:Q", alt.Tooltip("value:Q", format=".5f")],
        )
        .add_params(pick)
    )
    best = best_epoch_frame(frame, best_epochs or {}) if quantity in COMPARE_QUANTITIES else frame.iloc[0:0]
    if best.empty:
        return lines.interactive(bind_y=False).properties(title=title)
    marks = (
        alt.Chart(best)
        .mark_point(shape="diamond", size=260, filled=True, stroke="white", strokeWidth=1.5)
        .encode(x=f"{x}:Q", y="value:Q", color=color,
                tooltip=["run:N", alt.Tooltip("epoch:Q", title="best epoch"),
                         alt.Tooltip("value:Q", title="validation", format=".5f")])
    )
    return alt.layer(lines.interactive(bind_y=False), marks).properties(title=title)


# Where a shared prefix of run names may be cut: after one of these.
NAME_SEPARATORS = "-_ "  # not ".": "…5" and "…25" would hide that they were 0.5 and 0.25


def distinct_labels(names: Sequence[str]) -> tuple[dict[str, str], str]:
    """({name: the part that tells it apart}, the prefix cut off): the start every name shares,
    up to its last separator, gives way to "…" (the runs of one experiment share a long start,
    and an axis label cut to fit would keep the start and lose the part that differs)."""
    names = list(dict.fromkeys(names))
    shared = os.path.commonprefix(names) if len(names) > 1 else ""
    cut = max((shared.rfind(sep) for sep in NAME_SEPARATORS), default=-1) + 1
    if cut <= 1:
        return {name: name for name in names}, ""
    return {name: "…" + name[cut:] for name in names}, shared[:cut]


BAR_STEP = 32  # px per run in the final-metric bar chart


def final_metric_chart(frame: pd.DataFrame, metric: str, title: str,
                       run_colors: dict[str, str] | None = None) -> alt.Chart:
    """One bar per run for a final metric (frame has columns run and `metric`). Each bar is
    labelled with what tells its run apart (distinct_labels); the subtitle names the shared start."""
    labels, shared = distinct_labels(list(frame["run"]))
    frame = frame.assign(label=frame["run"].map(labels))
    pick = _legend_highlight("run")
    return (
        alt.Chart(frame, title=alt.TitleParams(title, subtitle=f"Runs named {shared}…" if shared else alt.Undefined,
                                               anchor="start"))
        .mark_bar()
        .encode(
            x=alt.X(f"{metric}:Q", title=metric),
            y=alt.Y("label:N", title=None, sort="x", axis=alt.Axis(labelLimit=400)),
            color=_run_color(frame, run_colors, legend=None),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.3)),
            tooltip=["run:N", alt.Tooltip(f"{metric}:Q", format=".5f")],
        )
        .add_params(pick)
        # a band per run: a fixed height is shared with the title and axis where a page fits the
        # chart into it (two runs in 120 px were drawn as hairlines with their labels overlapping)
        .properties(height=alt.Step(BAR_STEP))
    )
