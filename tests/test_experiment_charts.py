"""The Experiments page's charts drawn for real (vl-convert renders the Vega-Lite spec to SVG): their
tick labels read as plain, distinct numbers (issue 21: the time axis read "1e+1", a loss axis
"0.01, 0.01"), and a factor's values are evenly spaced labels in order."""
from __future__ import annotations

import re

import pandas as pd
import pytest
import vl_convert as vlc

from core.experiments import format_value

from core.charts.experiments import axis_format, gap_chart, gap_frame, metric_vs_factor_chart, small_multiples_chart


def axis_labels(chart) -> dict[str, list[str]]:
    """axis title -> its tick labels, as the rendered SVG shows them."""
    svg = vlc.vegalite_to_svg(chart.to_dict())
    axes = {}
    for part in svg.split('aria-roledescription="axis"')[1:]:
        title = re.search(r"titled '([^']*)'", part).group(1)
        labels = re.search(r'role-axis-label"[^>]*>(.*?)</g>', part, flags=re.S).group(1)
        axes[title] = re.findall(r"<text[^>]*>([^<]*)</text>", labels)
    return axes


def plain_and_distinct(labels: list[str]) -> bool:
    return len(set(labels)) == len(labels) and not any(re.search(r"\de[+-]?\d", t) for t in labels)


@pytest.mark.parametrize("metric", [[8.0, 48.0, 88.0], [9.5, 10.2, 10.9], [0.1003, 0.1004, 0.1006],
                                    [0.0112, 0.0118, 0.0121], [120.0, 1900.0, 4400.0]])
@pytest.mark.parametrize("factor", [[5, 10, 20], [0.0, 0.3, 0.6], [0.0001, 0.001, 0.01], [32, 128, 256]])
def test_metric_axes_read_as_plain_distinct_numbers(factor, metric):
    frame = pd.DataFrame({"variant": ["a", "b", "c"], "x": factor, "seconds": metric})
    axes = axis_labels(metric_vs_factor_chart(frame, "x", "seconds", "Training time (s)"))
    assert plain_and_distinct(axes["Training time (s)"]), axes
    # The factor's own values, in order, as the plan table writes them (no log scale's 1e-4)
    assert axes["x"] == [format_value(v) for v in factor]


@pytest.mark.parametrize("top", [0.012, 0.03, 0.15, 1.4, 37.0])
def test_the_gap_charts_loss_axis_has_no_repeated_labels(top):
    variants = [{"label": f"v{i}", "train_loss": top * (0.5 + 0.1 * i), "val_loss": top * (0.6 + 0.1 * i)}
                for i in range(4)]
    axes = axis_labels(gap_chart(gap_frame(variants), [f"v{i}" for i in range(4)]))
    assert plain_and_distinct(axes["loss"]), axes


def test_the_small_multiples_loss_axis_is_plain():
    frame = pd.DataFrame([{"variant": v, "epoch": e, "split": s, "loss": 0.0105 + 0.0002 * e + (s == "train") * 1e-4}
                          for v in ("a", "b") for e in (1, 2, 3) for s in ("train", "validation")])
    svg = vlc.vegalite_to_svg(small_multiples_chart(frame, ["a", "b"], 3).to_dict())
    labels = re.findall(r'<text[^>]*>([^<]*)</text>', svg)
    assert not any(re.search(r"\de[+-]?\d", t) for t in labels)


def test_axis_format_gives_enough_places_for_the_span():
    assert axis_format([8, 48, 88], zero=True) == ",.0~f"
    assert axis_format([0.1003, 0.1006]) == ",.5~f"
    assert axis_format([]) == ",.4~f"


def test_a_lesson_steps_test_mse_bars_get_a_band_per_run(tmp_path):
    """Walk of issue 21: the step's "Test MSE of every run" chart had a fixed 120 px that the page
    shares with its title, subtitle and axis: two runs were drawn as hairlines, labels overlapping.
    A band per run cannot be squeezed (as on the Runs page)."""
    from types import SimpleNamespace

    from core.reports.figures import runs_figures

    rows = [{"run": f"dense-mnist-s1-0{i}-activation{a}", "label": f"activation {a}", "test_mse": m}
            for i, (a, m) in enumerate([("relu", 0.043), ("sigmoid", 0.052)], 1)]
    runs = SimpleNamespace(root=tmp_path, rows=rows, colors={r["label"]: c for r, c in zip(rows, ["#000", "#111"])})
    figure = next(f for f in runs_figures(runs) if f.title == "Test MSE of every run")
    assert figure.chart.to_dict()["height"] == {"step": 32}
