"""Altair charts of the Experiments page: the live small multiples, a final metric against each
factor, the train-vs-validation gap, the noise sweep, anomaly histograms and ROC, and a search's
history, importances and parallel coordinates. Builders take plain data and return charts; the
page shows them with ui.projector.show_chart (shared palette and fonts). Variants are coloured
with their run's colour (core.charts.palette), so a run looks the same here and on every other page."""
from __future__ import annotations

import math
from collections.abc import Sequence

import altair as alt
import pandas as pd

from core.charts.palette import PALETTE, REFERENCE_COLOR, category_scale, run_scale
from core.experiments.config import format_value

SPLIT_ORDER = ["train", "validation"]
# Train and validation take the palette's first two colours (as on the Train and Data pages); the
# values of an experiment's factors take the colours after them, each factor its own.
SPLIT_SCALE = category_scale(SPLIT_ORDER)
FACTOR_PALETTE = PALETTE[len(SPLIT_ORDER):]


TICKS = 6  # tick count asked of Vega on a number axis (a hint: it may make up to twice as many)


def axis_format(values, zero: bool = False) -> str:
    """A d3 number format for an axis over `values` whose tick labels are plain decimals with just
    enough places to tell every tick apart: Vega's own precision for "~g" wrote 10 as "1e+1" and the
    ticks 0.010 and 0.011 both as "0.01"."""
    numbers = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not numbers:
        return ",.4~f"
    low, high = (min(0.0, *numbers) if zero else min(numbers)), max(0.0 if zero else -math.inf, *numbers)
    span = (high - low) or abs(high) or 1.0
    finest_step = span / (2 * TICKS)  # the smallest tick step Vega's nice ticks make for this span
    places = max(0, math.ceil(-math.log10(finest_step)))
    return f",.{min(places, 12)}~f"


def number_axis(values, zero: bool = False, **kwargs) -> alt.Axis:
    return alt.Axis(format=axis_format(values, zero), tickCount=TICKS, **kwargs)


def factor_value_colors(frame: pd.DataFrame, factors: Sequence[str]) -> dict[str, dict[str, str]]:
    """factor -> {value (as text) -> colour}: no colour stands for two factors' values, nor for
    train or validation, so on a two-factor experiment's results a colour means one thing on every
    chart (dropout 0.5 is never the colour of preset small). Values in order of first appearance;
    the colours cycle only past the palette's 8 free ones."""
    colors, used = {}, 0
    for factor in factors:
        values = list(dict.fromkeys(format_value(v) for v in frame[factor].tolist())) if factor in frame else []
        colors[factor] = {value: FACTOR_PALETTE[(used + i) % len(FACTOR_PALETTE)] for i, value in enumerate(values)}
        used += len(values)
    return colors


def _variant_color(frame: pd.DataFrame, colors: dict[str, str] | None, field: str = "variant",
                   title: str | None = "variant", legend: bool = True) -> alt.Color:
    shown = list(dict.fromkeys(frame[field].tolist()))
    return alt.Color(f"{field}:N", title=title, scale=run_scale(shown, colors or {}), sort=shown,
                     legend=alt.Legend(orient="bottom", columns=3, labelLimit=400) if legend else None)


# ---------------------------------------------------------------- live

def curves_frame(histories: dict[str, Sequence[dict]]) -> pd.DataFrame:
    """Long table (variant, epoch, split, loss) of each variant's per-epoch losses."""
    rows = []
    for variant, history in histories.items():
        for record in history:
            record = record if isinstance(record, dict) else vars(record)
            for split, key in (("train", "train_loss"), ("validation", "val_loss")):
                value = record.get(key)
                if value is not None and math.isfinite(value):
                    rows.append({"variant": variant, "epoch": int(record["epoch"]), "split": split,
                                 "loss": float(value)})
    return pd.DataFrame(rows, columns=["variant", "epoch", "split", "loss"])


def small_multiples_chart(frame: pd.DataFrame, order: Sequence[str], epochs: int, columns: int = 3) -> alt.FacetChart:
    """One panel per variant, the same axes in every panel (the x axis spans every epoch planned,
    so a panel fills in as its run trains)."""
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", title="epoch", scale=alt.Scale(domain=[1, max(epochs, 2)]),
                    axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("loss:Q", title="loss", scale=alt.Scale(zero=False), axis=number_axis(frame["loss"])),
            color=alt.Color("split:N", title=None, sort=SPLIT_ORDER, scale=SPLIT_SCALE,
                            legend=alt.Legend(orient="bottom")),
            tooltip=["variant:N", "split:N", "epoch:Q", alt.Tooltip("loss:Q", format=".5f")],
        )
        .properties(width=180, height=130)
        .facet(facet=alt.Facet("variant:N", title=None, sort=list(order), header=alt.Header(labelLimit=260)),
               columns=columns)
        .properties(title="Loss per epoch of every variant (same axes)")
    )


# ---------------------------------------------------------------- results

def factor_text_order(values) -> list[str]:
    """A factor's values as the axis shows them (core.experiments.format_value), numbers in numeric
    order, others in order of appearance."""
    unique = list(dict.fromkeys(values))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in unique)
    return [format_value(v) for v in (sorted(unique) if numeric else unique)]


def metric_vs_factor_chart(frame: pd.DataFrame, factor: str, metric: str, metric_title: str,
                           others: Sequence[str] = (), other_colors: dict[str, str] | None = None) -> alt.Chart:
    """`metric` against one factor, one mark per variant: the factor's values along x, in order and
    evenly spaced (a student's values, e.g. latent 2, 4, 6, or learning rates 0.0001 to 0.01, are
    read as labels: no log scale's "1e+1"); a line over a numeric factor, bars otherwise. The other
    factors together colour the marks (a line or a bar beside the others each), with their legend:
    three factors never stack two variants into one bar. `other_colors` (value as text -> colour,
    see factor_value_colors) colours a single other factor as on every other chart."""
    data = frame.dropna(subset=[metric]).copy()
    order = factor_text_order(data[factor].tolist())
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data[factor].tolist())
    data[factor] = [format_value(v) for v in data[factor].tolist()]
    title = f"{metric_title} against {factor}"
    tooltip = ["variant:N", alt.Tooltip(f"{metric}:Q", title=metric_title, format=".5f")]
    x = alt.X(f"{factor}:O" if numeric else f"{factor}:N", title=factor, sort=order,
              axis=alt.Axis(labelAngle=0, labelOverlap=False))
    y = alt.Y(f"{metric}:Q", title=metric_title, scale=alt.Scale(zero=not numeric),
              axis=number_axis(data[metric], zero=not numeric))
    encoding = {"x": x, "y": y, "tooltip": tooltip}
    if others:
        rest = " · ".join(others)
        columns = [data[o].tolist() for o in others]
        data[rest] = [" · ".join(format_value(v) if len(others) == 1 else f"{o} {format_value(v)}"
                                 for o, v in zip(others, values)) for values in zip(*columns)]
        shown = list(dict.fromkeys(data[rest]))
        scale = (alt.Scale(domain=shown, range=[other_colors[v] for v in shown])
                 if other_colors and all(v in other_colors for v in shown) else alt.Undefined)
        encoding["color"] = alt.Color(f"{rest}:N", title=f"colour: {rest}", sort=shown, scale=scale,
                                      legend=alt.Legend(orient="bottom", columns=min(len(shown), 4), labelLimit=400))
        if not numeric:
            encoding["xOffset"] = alt.XOffset(f"{rest}:N", sort=shown)
    if not numeric:
        return alt.Chart(data, title=title).mark_bar().encode(**encoding)
    if not others:
        encoding["color"] = alt.value(PALETTE[0])
    return alt.Chart(data, title=title).mark_line(point=alt.OverlayMarkDef(size=110, filled=True)).encode(**encoding)


def factor_frame(record: dict, metrics: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """One row per saved run of an experiment record (variant, run, each metric, each factor's
    value), and the factors' column names: an experiment of explicit variants (e.g. a plain AE and
    VAEs with three betas) has one factor, "variant setting". Only the factors that vary among the
    saved runs are named: a factor with one value has nothing to compare (it got an empty chart)."""
    from core.experiments import ExperimentConfig, factor_label

    exp = ExperimentConfig.from_dict(record["config"])
    rows = []
    for v in record["variants"]:
        if not v.get("run"):
            continue
        row = {"variant": v["label"], "run": v["run"], **{m: v.get(m) for m in metrics}}
        if exp.variants:
            row["variant setting"] = v["label"]
        else:
            row.update({factor_label(p): (format_value(val) if isinstance(val, list) else val)
                        for p, val in v["factors"].items()})
        rows.append(row)
    factors = ["variant setting"] if exp.variants else [factor_label(p) for p in exp.grid]
    frame = pd.DataFrame(rows)
    return frame, [f for f in factors if f in frame and frame[f].astype(str).nunique() > 1]


def gap_frame(variants: Sequence[dict]) -> pd.DataFrame:
    rows = []
    for v in variants:
        if v.get("train_loss") is None or v.get("val_loss") is None:
            continue
        for split, key in (("train", "train_loss"), ("validation", "val_loss")):
            rows.append({"variant": v["label"], "split": split, "loss": float(v[key]),
                         "gap": float(v["val_loss"]) - float(v["train_loss"])})
    return pd.DataFrame(rows, columns=["variant", "split", "loss", "gap"])


def gap_chart(frame: pd.DataFrame, order: Sequence[str]) -> alt.Chart:
    """Train and validation loss of each variant's kept (best) epoch side by side; the tooltip
    gives the gap (validation minus train: over-fitting when it grows)."""
    return (
        alt.Chart(frame, title="Train vs validation loss (best epoch): the gap shows over-fitting")
        .mark_bar()
        .encode(
            y=alt.Y("variant:N", title=None, sort=list(order), axis=alt.Axis(labelLimit=300)),
            yOffset=alt.YOffset("split:N", sort=SPLIT_ORDER),
            x=alt.X("loss:Q", title="loss", axis=number_axis(frame["loss"], zero=True)),
            color=alt.Color("split:N", title="colour: split", sort=SPLIT_ORDER, scale=SPLIT_SCALE,
                            legend=alt.Legend(orient="bottom")),
            tooltip=["variant:N", "split:N", alt.Tooltip("loss:Q", format=".5f"),
                     alt.Tooltip("gap:Q", title="validation - train", format="+.5f")],
        )
        .properties(height=alt.Step(14))
    )


def noise_sweep_chart(frame: pd.DataFrame, colors: dict[str, str] | None = None) -> alt.Chart:
    """Reconstruction MSE against the clean images as the input noise rises, one line per variant."""
    return (
        alt.Chart(frame, title="Reconstruction error as the input noise rises")
        .mark_line(point=True)
        .encode(
            x=alt.X("noise:Q", title="noise factor of the input"),
            y=alt.Y("mse:Q", title="MSE against the clean image", axis=number_axis(frame["mse"], zero=True)),
            color=_variant_color(frame, colors),
            tooltip=["variant:N", "noise:Q", alt.Tooltip("mse:Q", format=".5f")],
        )
    )


def anomaly_histogram(frame: pd.DataFrame, title: str) -> alt.Chart:
    """Per-image reconstruction error of normal and held-out test images, overlaid."""
    return (
        alt.Chart(frame, title=title)
        .mark_bar(opacity=0.6, binSpacing=0)
        .encode(
            x=alt.X("error:Q", bin=alt.Bin(maxbins=40), title="reconstruction MSE of one test image"),
            y=alt.Y("count():Q", title="images", stack=None),
            color=alt.Color("group:N", title=None, sort=["normal", "held out"], legend=alt.Legend(orient="bottom")),
            tooltip=["group:N", alt.Tooltip("count():Q", title="images")],
        )
    )


def roc_chart(frame: pd.DataFrame, colors: dict[str, str] | None = None) -> alt.LayerChart:
    """ROC curve per variant (legend: variant and AUC) over the chance diagonal."""
    diagonal = alt.Chart(pd.DataFrame({"fpr": [0.0, 1.0], "tpr": [0.0, 1.0]})).mark_line(
        strokeDash=[4, 4], color=REFERENCE_COLOR).encode(x="fpr:Q", y="tpr:Q")
    curves = alt.Chart(frame).mark_line(interpolate="step-after").encode(
        x=alt.X("fpr:Q", title="false positive rate (normal images flagged)", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("tpr:Q", title="true positive rate (held-out images found)", scale=alt.Scale(domain=[0, 1])),
        color=_variant_color(frame, colors, title="held-out class (AUC)"),
        tooltip=["variant:N", alt.Tooltip("fpr:Q", format=".3f"), alt.Tooltip("tpr:Q", format=".3f")],
    )
    return alt.layer(diagonal, curves, title="ROC: the held-out class against the rest").properties(height=380)


# ---------------------------------------------------------------- search

def history_chart(frame: pd.DataFrame, objective_title: str, maximize: bool) -> alt.LayerChart:
    """Each trial's objective (points, by state) and the best so far (a step line)."""
    complete = frame[frame["state"] == "complete"].sort_values("trial").copy()
    complete["best"] = complete["value"].cummax() if maximize else complete["value"].cummin()
    points = alt.Chart(frame.dropna(subset=["value"])).mark_point(filled=True, size=80).encode(
        x=alt.X("trial:Q", title="trial", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("value:Q", title=objective_title, scale=alt.Scale(zero=False),
                axis=number_axis(frame["value"].dropna())),
        color=alt.Color("state:N", title="trial", sort=["complete", "pruned", "failed"],
                        legend=alt.Legend(orient="bottom")),
        tooltip=["trial:Q", "state:N", alt.Tooltip("value:Q", format=".5f"), "settings:N"],
    )
    best = alt.Chart(complete).mark_line(interpolate="step-after", color=REFERENCE_COLOR).encode(
        x="trial:Q", y="best:Q", tooltip=[alt.Tooltip("best:Q", title="best so far", format=".5f")])
    return alt.layer(best, points, title="Optimisation history (line: best so far)")


def importance_chart(importances: dict[str, float]) -> alt.Chart:
    frame = pd.DataFrame({"setting": list(importances), "importance": list(importances.values())})
    return alt.Chart(frame, title="Parameter importances (Optuna, fANOVA)").mark_bar().encode(
        x=alt.X("importance:Q", title="share of the objective's variation", axis=alt.Axis(format="%")),
        y=alt.Y("setting:N", title=None, sort="-x"),
        tooltip=["setting:N", alt.Tooltip("importance:Q", format=".1%")],
    )


def parallel_coordinates_chart(frame: pd.DataFrame, params: Sequence[str], objective_title: str) -> alt.Chart:
    """One line per completed trial across every searched setting (each axis scaled to its own
    range, 0 = lowest, 1 = highest), coloured by the objective."""
    long = []
    for _, row in frame.iterrows():
        for name in params:
            long.append({"trial": int(row["trial"]), "setting": name, "raw": row[name], "value": row["value"]})
    data = pd.DataFrame(long)
    scaled = []
    for name in params:
        column = data[data["setting"] == name].copy()
        numeric = pd.to_numeric(column["raw"], errors="coerce")
        if numeric.notna().all():
            low, high = numeric.min(), numeric.max()
            column["position"] = 0.5 if high == low else (numeric - low) / (high - low)
        else:  # categorical: evenly spaced in the order of first appearance
            order = list(dict.fromkeys(column["raw"].astype(str)))
            column["position"] = column["raw"].astype(str).map(
                lambda v: order.index(v) / max(len(order) - 1, 1))
        column["raw"] = column["raw"].astype(str)
        scaled.append(column)
    data = pd.concat(scaled, ignore_index=True)
    return alt.Chart(data, title="Parallel coordinates of the completed trials").mark_line(point=True).encode(
        x=alt.X("setting:N", title=None, sort=list(params)),
        y=alt.Y("position:Q", title="low ← setting → high", axis=alt.Axis(format=".1f")),
        detail="trial:N",
        color=alt.Color("value:Q", title=objective_title, scale=alt.Scale(scheme="viridis")),
        tooltip=["trial:N", "setting:N", alt.Tooltip("raw:N", title="value"),
                 alt.Tooltip("value:Q", title=objective_title, format=".5f")],
    )
