"""Altair charts of the Inspect pages (noise sweep, latent scatter, probe results).

Pure functions from tables to charts: no Streamlit here, so they can be tested and
reused on their own.
"""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

# The name of the latent scatter's click selection; the page reads it back from the chart event.
PICKED = "picked"


def noise_sweep_chart(rows: pd.DataFrame, current_noise: float) -> alt.LayerChart:
    """Reconstruction MSE against noise factor, one line per run, with a rule at the slider.

    `rows` has the columns run, noise, mse, mae (one row per run and noise level)."""
    highlight = alt.selection_point(name="run_highlight", fields=["run"], bind="legend")
    base = alt.Chart(rows).encode(
        x=alt.X("noise:Q", title="Noise factor", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("mse:Q", title="Reconstruction MSE (vs clean image)"),
        color=alt.Color("run:N", title="Run"),
    )
    lines = base.mark_line().encode(
        opacity=alt.condition(highlight, alt.value(1.0), alt.value(0.2))
    ).add_params(highlight)
    points = base.mark_point(filled=True, size=50).encode(
        tooltip=[
            alt.Tooltip("run:N", title="Run"),
            alt.Tooltip("noise:Q", title="Noise factor", format=".2f"),
            alt.Tooltip("mse:Q", title="MSE", format=".4f"),
            alt.Tooltip("mae:Q", title="MAE", format=".4f"),
        ]
    )
    rule = (
        alt.Chart(pd.DataFrame({"noise": [float(current_noise)]}))
        .mark_rule(strokeDash=[4, 4], color="gray")
        .encode(x="noise:Q", tooltip=[alt.Tooltip("noise:Q", title="Slider", format=".2f")])
    )
    return alt.layer(lines, points, rule).properties(height=320)


def latent_scatter(points: pd.DataFrame, colour: str, colour_title: str,
                   quantitative: bool = False, x_title: str = "x", y_title: str = "y",
                   extra_tooltips: list[str] | None = None) -> alt.Chart:
    """The encoded test set as points; click one to pick it (selection named PICKED).

    `points` has the columns index, x, y, class, cluster and the `colour` column."""
    picked = alt.selection_point(name=PICKED, fields=["index"], on="click", clear="dblclick")
    colour_type = "Q" if quantitative else "N"
    tooltips = [alt.Tooltip("index:Q", title="Test image"), alt.Tooltip("class:N", title="Class"),
                alt.Tooltip("cluster:N", title="Cluster")]
    tooltips += [alt.Tooltip(f"{name}:N" if not pd.api.types.is_numeric_dtype(points[name])
                             else f"{name}:Q", title=name) for name in (extra_tooltips or [])]
    return (
        alt.Chart(points)
        .mark_circle(size=45)
        .encode(
            x=alt.X("x:Q", title=x_title, scale=alt.Scale(zero=False)),
            y=alt.Y("y:Q", title=y_title, scale=alt.Scale(zero=False)),
            color=alt.Color(f"{colour}:{colour_type}", title=colour_title,
                            scale=alt.Scale(scheme="viridis") if quantitative else alt.Undefined),
            opacity=alt.condition(picked, alt.value(0.9), alt.value(0.25)),
            size=alt.condition(picked, alt.value(120), alt.value(45)),
            tooltip=tooltips,
        )
        .add_params(picked)
        .properties(height=480)
    )


def confusion_chart(confusion: np.ndarray, class_names: list[str]) -> alt.LayerChart:
    """A heatmap of counts (rows: true class, columns: predicted class) with the counts written in."""
    confusion = np.asarray(confusion)
    rows = []
    for t, true_name in enumerate(class_names):
        total = int(confusion[t].sum())
        for p, pred_name in enumerate(class_names):
            count = int(confusion[t, p])
            rows.append({"true": true_name, "predicted": pred_name, "count": count,
                         "share": count / total if total else 0.0})
    table = pd.DataFrame(rows)
    # The class names fix both axes, in the dataset's order (not alphabetical).
    x = alt.X("predicted:N", title="Predicted", sort=class_names,
              scale=alt.Scale(domain=list(class_names)))
    y = alt.Y("true:N", title="True", sort=class_names, scale=alt.Scale(domain=list(class_names)))
    base = alt.Chart(table).encode(x=x, y=y)
    cells = base.mark_rect().encode(
        color=alt.Color("share:Q", title="Share of true class", scale=alt.Scale(scheme="blues")),
        tooltip=[alt.Tooltip("true:N", title="True"), alt.Tooltip("predicted:N", title="Predicted"),
                 alt.Tooltip("count:Q", title="Images"),
                 alt.Tooltip("share:Q", title="Share of true class", format=".1%")],
    )
    text = base.mark_text(baseline="middle").encode(
        text=alt.Text("count:Q"),
        # Dark cells get white text so the numbers stay readable.
        color=alt.condition(alt.datum.share > 0.5, alt.value("white"), alt.value("black")),
    )
    side = max(240, 36 * len(class_names))
    return alt.layer(cells, text).properties(width=side, height=side)


def per_class_accuracy_chart(per_class: dict[str, float]) -> alt.Chart:
    names = list(per_class)
    table = pd.DataFrame({"class": names, "accuracy": [float(per_class[n]) for n in names]})
    return (
        alt.Chart(table)
        .mark_bar()
        .encode(
            x=alt.X("class:N", title="Class", sort=names),
            y=alt.Y("accuracy:Q", title="Accuracy", scale=alt.Scale(domain=[0, 1]),
                    axis=alt.Axis(format="%")),
            tooltip=[alt.Tooltip("class:N", title="Class"),
                     alt.Tooltip("accuracy:Q", title="Accuracy", format=".1%")],
        )
        .properties(height=260)
    )


def probe_history_chart(history: list[dict]) -> alt.Chart:
    """Per-epoch curves of the probe: every numeric column except the epoch, one line each."""
    table = pd.DataFrame(history)
    if "epoch" not in table:
        table["epoch"] = np.arange(1, len(table) + 1)
    value_columns = [c for c in table.columns
                     if c != "epoch" and pd.api.types.is_numeric_dtype(table[c])]
    long = table.melt(id_vars=["epoch"], value_vars=value_columns, var_name="curve",
                      value_name="value")
    return (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", title="Epoch", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("value:Q", title="Value"),
            color=alt.Color("curve:N", title="Curve"),
            tooltip=[alt.Tooltip("epoch:Q", title="Epoch"), alt.Tooltip("curve:N", title="Curve"),
                     alt.Tooltip("value:Q", title="Value", format=".4f")],
        )
        .properties(height=260)
    )
