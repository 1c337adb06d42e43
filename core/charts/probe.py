"""Altair charts of the Classifier page: confusion matrix, per-class accuracy, training curves.

Pure functions from results to charts: no Streamlit here, so they can be tested and reused.
"""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd


def confusion_table(confusion: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    """One row per (true, predicted) pair: count and share of the true class."""
    confusion = np.asarray(confusion)
    rows = []
    for t, true_name in enumerate(class_names):
        total = int(confusion[t].sum())
        for p, pred_name in enumerate(class_names):
            count = int(confusion[t, p])
            rows.append({"true": true_name, "predicted": pred_name, "count": count,
                         "share": count / total if total else 0.0})
    return pd.DataFrame(rows)


def confusion_chart(confusion: np.ndarray, class_names: list[str]) -> alt.LayerChart:
    """A heatmap of counts (rows: true class, columns: predicted class) with the counts written in."""
    table = confusion_table(confusion, class_names)
    names = list(class_names)
    # The class names fix both axes, in the dataset's order (not alphabetical).
    x = alt.X("predicted:N", title="Predicted class", sort=names, scale=alt.Scale(domain=names),
              axis=alt.Axis(labelAngle=0 if max(map(len, names)) <= 3 else -45, orient="top",
                            labelOverlap=False))
    y = alt.Y("true:N", title="True class", sort=names, scale=alt.Scale(domain=names),
              axis=alt.Axis(labelOverlap=False))
    base = alt.Chart(table).encode(x=x, y=y)
    tooltip = [alt.Tooltip("true:N", title="True"), alt.Tooltip("predicted:N", title="Predicted"),
               alt.Tooltip("count:Q", title="Images"),
               alt.Tooltip("share:Q", title="Share of the true class", format=".1%")]
    cells = base.mark_rect().encode(
        # Colour by the share of the row, so a rare class's mistakes show as clearly as a common one's.
        color=alt.Color("share:Q", title="Share of true class", scale=alt.Scale(scheme="blues"),
                        legend=alt.Legend(format="%")),
        tooltip=tooltip,
    )
    text = base.mark_text(baseline="middle").encode(
        text=alt.Text("count:Q"),
        # Dark cells get white text so the numbers stay readable.
        color=alt.condition(alt.datum.share > 0.5, alt.value("white"), alt.value("black")),
        tooltip=tooltip,
    )
    side = min(720, max(260, 36 * len(names)))
    return alt.layer(cells, text).properties(width=side, height=side)


def per_class_accuracy_chart(per_class: dict[str, float], overall: float | None = None) -> alt.LayerChart:
    """Accuracy of each class as a bar, with the overall accuracy as a dashed rule."""
    names = list(per_class)
    table = pd.DataFrame({"class": names, "accuracy": [float(per_class[n]) for n in names]})
    bars = (
        alt.Chart(table)
        .mark_bar()
        .encode(
            # Every class labelled (labelOverlap off), however many there are.
            x=alt.X("class:N", title="Class", sort=names,
                    axis=alt.Axis(labelOverlap=False, labelAngle=0 if max(map(len, names), default=0) <= 3
                                  else -45)),
            y=alt.Y("accuracy:Q", title="Accuracy", scale=alt.Scale(domain=[0, 1]),
                    axis=alt.Axis(format="%")),
            color=alt.Color("accuracy:Q", scale=alt.Scale(scheme="redyellowgreen", domain=[0, 1]),
                            legend=None),
            tooltip=[alt.Tooltip("class:N", title="Class"),
                     alt.Tooltip("accuracy:Q", title="Accuracy", format=".1%")],
        )
    )
    layers = [bars]
    if overall is not None:
        layers.append(
            alt.Chart(pd.DataFrame({"overall": [float(overall)]}))
            .mark_rule(strokeDash=[4, 4], color="#444444")
            .encode(y="overall:Q",
                    tooltip=[alt.Tooltip("overall:Q", title="Overall accuracy", format=".1%")])
        )
    return alt.layer(*layers).properties(height=280)


def _curve_panel(long: pd.DataFrame, title: str, percent: bool) -> alt.Chart:
    y = alt.Y("value:Q", title=title,
              scale=alt.Scale(domain=[0, 1]) if percent else alt.Undefined,
              axis=alt.Axis(format="%") if percent else alt.Undefined)
    return (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", title="Epoch", axis=alt.Axis(tickMinStep=1)),
            y=y,
            # Legends below the plot: the chart often sits in half a page's width.
            color=alt.Color("curve:N", title=None, legend=alt.Legend(orient="bottom")),
            tooltip=[alt.Tooltip("epoch:Q", title="Epoch"), alt.Tooltip("curve:N", title="Curve"),
                     alt.Tooltip("value:Q", title=title, format=".1%" if percent else ".4f")],
        )
        .properties(width=360, height=180)
    )


def probe_history_chart(history: list[dict]) -> alt.VConcatChart | alt.Chart:
    """Per-epoch curves of the classifier: accuracies (columns whose name holds "acc") on a
    0-100 % axis, and everything else (losses) on its own axis below them."""
    table = pd.DataFrame(history)
    if "epoch" not in table:
        table["epoch"] = np.arange(1, len(table) + 1)
    numeric = [c for c in table.columns
               if c != "epoch" and pd.api.types.is_numeric_dtype(table[c])]
    accuracy = [c for c in numeric if "acc" in c.lower()]
    other = [c for c in numeric if c not in accuracy]
    panels = []
    for columns, title, percent in ((accuracy, "Accuracy", True), (other, "Loss", False)):
        if columns:
            long = table.melt(id_vars=["epoch"], value_vars=columns, var_name="curve",
                              value_name="value")
            long["curve"] = long["curve"].str.replace("_", " ")
            panels.append(_curve_panel(long, title, percent))
    if len(panels) == 1:
        return panels[0]
    # One colour legend per panel.
    return alt.vconcat(*panels).resolve_scale(color="independent")
