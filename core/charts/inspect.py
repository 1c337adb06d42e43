"""Altair charts of the Inspect pages (reconstruction errors, noise sweep, latent scatter).

Pure functions from tables to charts: no Streamlit here, so they can be tested and
reused on their own.
"""
from __future__ import annotations

import altair as alt
import pandas as pd

from core.charts.palette import REFERENCE_COLOR, category_scale, run_scale

# The names of the latent scatter's click selections; the page reads them back from the chart
# event: PICKED a test image (a point), PLANE any spot of the plane (nearest cell of a grid).
PICKED = "picked"
PLANE = "plane"
PLANE_STEPS = 40  # grid cells per side: a click lands within 1/40 of the view of where it was
SVG_MAX_POINTS = 4000  # visible points up to which the scatter stays SVG (more: a faster canvas)
POINT_SIZE = 40  # a test point's area in px²
# Opaque: a point shows its palette colour itself (at 0.75 the white behind washed the ten class
# colours together on a projector; tests/test_palette.py).
POINT_OPACITY = 1.0
LEGEND_SHORT_LABEL = 3  # characters: up to this long, ten legend entries fit in one row


def legend_columns(values) -> int:
    """Legend entries per row below the scatter: ten short ones ("0".."9"), five longer ones
    ("Ankle boot"), so the legend is no wider than the plot."""
    longest = max((len(str(v)) for v in pd.unique(values)), default=0)
    return 10 if longest <= LEGEND_SHORT_LABEL else 5


def plane_grid(x, y, steps: int = PLANE_STEPS, margin: float = 0.08) -> pd.DataFrame:
    """An invisible steps×steps grid (columns gx, gy) over the points' extent plus a margin: the
    latent scatter's PLANE selection snaps a click in empty space to its nearest cell."""
    import numpy as np

    def axis(values):
        low, high = float(np.min(values)), float(np.max(values))
        pad = (high - low) * margin or 1.0
        return np.linspace(low - pad, high + pad, steps)

    gx, gy = np.meshgrid(axis(x), axis(y))
    return pd.DataFrame({"gx": gx.ravel().round(5), "gy": gy.ravel().round(5)})


def noise_sweep_chart(rows: pd.DataFrame, current_noise: float,
                      run_colors: dict[str, str] | None = None) -> alt.LayerChart:
    """Reconstruction MSE against noise factor, one line per run, with a rule at the slider.

    `rows` has the columns run, noise, mse, mae (one row per run and noise level)."""
    highlight = alt.selection_point(name="run_highlight", fields=["run"], bind="legend")
    base = alt.Chart(rows).encode(
        x=alt.X("noise:Q", title="Noise factor", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("mse:Q", title="MSE vs clean image"),  # longer titles were cut to the axis length
        color=alt.Color("run:N", title="Run", scale=run_scale(list(rows["run"]), run_colors)
                        if run_colors is not None else alt.Undefined),
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
        .mark_rule(strokeDash=[4, 4], color=REFERENCE_COLOR)
        .encode(x="noise:Q", tooltip=[alt.Tooltip("noise:Q", title="Slider", format=".2f")])
    )
    return alt.layer(lines, points, rule).properties(height=320)


def _colour_scale(points: pd.DataFrame, colour: str, quantitative: bool, class_order) -> alt.Scale:
    """viridis for a number; the palette in class order for classes (class 3 keeps its colour
    whichever classes the shown points hold); the palette in sorted order otherwise."""
    if quantitative:
        return alt.Scale(scheme="viridis")
    if colour == "class" and class_order is not None:
        return category_scale(list(class_order))
    return category_scale(sorted(pd.unique(points[colour]), key=lambda v: (str(type(v)), v)))


def latent_scatter(points: pd.DataFrame, colour: str, colour_title: str,
                   quantitative: bool = False, x_title: str = "x", y_title: str = "y",
                   class_order=None, grid: pd.DataFrame | None = None,
                   train_points: pd.DataFrame | None = None, marker=None,
                   point_size: int = POINT_SIZE) -> alt.LayerChart:
    """The encoded test set as points; click one to pick it (selection named PICKED).

    `points` has the columns index (position in the test split), x, y, class, error and the
    `colour` column; `point_size` is a test point's area in px² (larger on a projector)."""
    # empty=False: with nothing picked every point is drawn plain, not all highlighted.
    picked = alt.selection_point(name=PICKED, fields=["index"], on="click", clear="dblclick", empty=False)
    tooltips = [alt.Tooltip("index:Q", title="Test image"), alt.Tooltip("class:N", title="Class"),
                alt.Tooltip("error:Q", title="Reconstruction MSE", format=".4f")]
    if colour not in ("class", "index", "error"):
        tooltips.append(alt.Tooltip(f"{colour}:{'Q' if quantitative else 'N'}", title=colour_title))
    scatter = (
        alt.Chart(points)
        .mark_circle(size=45)
        .encode(
            x=alt.X("x:Q", title=x_title, scale=alt.Scale(zero=False)),
            y=alt.Y("y:Q", title=y_title, scale=alt.Scale(zero=False)),
            color=alt.Color(f"{colour}:{'Q' if quantitative else 'N'}", title=colour_title,
                            scale=_colour_scale(points, colour, quantitative, class_order),
                            # Above the plot: beside it a narrow column would cut it off, and below a
                            # 600-px plot it was out of sight in a 900-px window (on a projector too).
                            legend=alt.Legend(orient="top", columns=legend_columns(points[colour]),
                                              symbolLimit=0)),
            opacity=alt.condition(picked, alt.value(1.0), alt.value(POINT_OPACITY)),
            size=alt.condition(picked, alt.value(point_size * 4), alt.value(point_size)),
            tooltip=tooltips,
        )
        .add_params(picked)
    )
    layers = []
    if grid is not None and len(grid):
        # Click anywhere: an invisible grid under the points with a `nearest` selection, whose
        # Voronoi cells cover the whole plane, so a click in empty space picks the closest cell.
        plane = alt.selection_point(name=PLANE, fields=["gx", "gy"], on="click", nearest=True,
                                    clear="dblclick", empty=False)
        layers.append(alt.Chart(grid).mark_point(opacity=0, size=1)
                      .encode(x="gx:Q", y="gy:Q", tooltip=alt.value(None)).add_params(plane))
    if train_points is not None and len(train_points):
        # Training images (small test sets): faint rings, not clickable, same colours.
        # No `legend=None`: Vega-Lite merges the legends of every layer (and channel) coloured by
        # the same field, and one layer's None took the class legend off the whole chart. Faint
        # by strokeOpacity, not opacity, which the merged legend's symbols would take on.
        layers.append(alt.Chart(train_points)
                      .mark_point(size=point_size * 0.75, opacity=1, strokeOpacity=0.45, filled=False)
                      .encode(x="x:Q", y="y:Q",
                              color=alt.Color("class:N", scale=_colour_scale(points, "class", False, class_order))
                              if colour == "class" else alt.value(REFERENCE_COLOR),
                              tooltip=[alt.Tooltip("class:N", title="Training image of class")]))
    if marker is not None:
        layers.append(alt.Chart(pd.DataFrame([{"x": marker[0], "y": marker[1]}]))
                      .mark_point(shape="cross", size=500, strokeWidth=4, color=REFERENCE_COLOR)
                      .encode(x="x:Q", y="y:Q"))
    chart = alt.layer(*layers, scatter).properties(height=480)
    if len(points) + (len(train_points) if train_points is not None else 0) <= SVG_MAX_POINTS:
        # SVG, as for any small chart: Streamlit would switch to a canvas because of the grid's
        # invisible points, and a canvas has no elements a browser test (or screen reader) finds.
        chart = chart.properties(usermeta={"embedOptions": {"renderer": "svg"}})
    return chart


def error_histogram(errors, mean_error: float) -> alt.LayerChart:
    """How the per-image reconstruction errors spread, with a rule at their mean."""
    table = pd.DataFrame({"error": [float(e) for e in errors]})
    bars = (
        alt.Chart(table)
        .mark_bar()
        .encode(
            x=alt.X("error:Q", bin=alt.Bin(maxbins=40), title="Reconstruction MSE of one image"),
            y=alt.Y("count():Q", title="Test images"),
            tooltip=[alt.Tooltip("error:Q", bin=alt.Bin(maxbins=40), title="MSE", format=".4f"),
                     alt.Tooltip("count():Q", title="Images")],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"error": [float(mean_error)]}))
        .mark_rule(strokeDash=[4, 4], color=REFERENCE_COLOR)
        .encode(x="error:Q", tooltip=[alt.Tooltip("error:Q", title="Mean MSE", format=".4f")])
    )
    return alt.layer(bars, rule).properties(height=240)
