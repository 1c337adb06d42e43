"""What a live view redraws on every poll: charts whose spec is built once (ui.projector.show_live_chart)
and pictures made once per key (ui.widgets.show_grid's same_as) must show exactly what the uncached
path shows, and a poll with new numbers must send the same spec with new data."""
from __future__ import annotations

import io
import json

import numpy as np
import torch
from PIL import Image
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

import core.analysis
import ui.widgets
from apptest_helpers import checked
from core.analysis import image_grid


def _charts_script():
    import streamlit as st

    from core.charts.training import batch_frame, batch_lines, batch_loss_chart, batch_window, epoch_frame, epoch_lines, loss_chart
    from ui.projector import show_chart, show_live_chart

    losses = st.session_state["losses"]
    history = st.session_state["history"]
    show_chart(batch_loss_chart(losses).properties(height=340))
    show_live_chart("test_batch", batch_lines, batch_frame(losses, batch_window(losses)), height=340)
    show_chart(loss_chart(history).properties(height=340))
    show_live_chart("test_loss", lambda data: epoch_lines(data, "Loss per epoch"),
                    epoch_frame(history, ["train_loss", "val_loss"]), height=340)


def _spec_and_data(chart) -> tuple[dict, list]:
    """The spec with its data references made anonymous, and the datasets' tables in order."""
    spec = json.loads(chart.proto.spec)
    names = [d.name for d in chart.proto.datasets]
    text = json.dumps(spec, sort_keys=True)
    for name in names:
        text = text.replace(json.dumps(name), '"DATA"')
    frames = [convert_arrow_bytes_to_pandas_df(d.data.data) for d in chart.proto.datasets]
    return json.loads(text), frames


def _history(epochs: int) -> list[dict]:
    return [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.1 / e} for e in range(1, epochs + 1)]


def _run_charts(losses, history, projector=False) -> AppTest:
    at = checked(AppTest.from_function(_charts_script, default_timeout=30))
    at.session_state["losses"] = losses
    at.session_state["history"] = history
    at.session_state["projector_mode"] = projector
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_live_chart_is_the_chart_show_chart_draws():
    for projector in (False, True):
        at = _run_charts([1.0, 0.8, 0.6, 0.55, 0.5, 0.45, 0.4], _history(3), projector)
        drawn = at.get("vega_lite_chart")
        assert len(drawn) == 4
        for plain, live in ((drawn[0], drawn[1]), (drawn[2], drawn[3])):
            plain_spec, plain_frames = _spec_and_data(plain)
            live_spec, live_frames = _spec_and_data(live)
            live_spec.pop("height"), plain_spec.pop("height")  # the live chart is taller on a projector
            assert live_spec == plain_spec
            assert len(plain_frames) == len(live_frames) == 1
            assert plain_frames[0].equals(live_frames[0])


def test_a_poll_with_new_numbers_sends_the_same_spec():
    first = _run_charts([1.0, 0.9], _history(1)).get("vega_lite_chart")
    later = _run_charts([1.0, 0.9, 0.7, 0.6, 0.5], _history(4)).get("vega_lite_chart")
    for index in (1, 3):  # the live ones
        assert first[index].proto.spec == later[index].proto.spec
        assert [d.name for d in first[index].proto.datasets] == [d.name for d in later[index].proto.datasets]
        assert first[index].proto.datasets[0].data.data != later[index].proto.datasets[0].data.data


def _grid_script():
    import streamlit as st
    import torch

    from ui.widgets import show_grid

    images = torch.arange(4 * 8 * 8, dtype=torch.float32).reshape(4, 1, 8, 8) / 255
    show_grid(images, nrow=4, scale=st.session_state["scale"], same_as=("job-x", st.session_state["epoch"]))


def test_a_named_grid_is_drawn_once_and_matches_the_plain_grid(monkeypatch):
    made = []

    def counting_grid(*args, **kwargs):
        made.append(kwargs.get("scale"))
        return image_grid(*args, **kwargs)

    monkeypatch.setattr(core.analysis, "image_grid", counting_grid)  # ui.widgets calls analysis.image_grid
    ui.widgets._grid_png.clear()
    for epoch, scale in ((1, 8), (1, 8), (1, 8), (2, 8), (2, 16)):
        at = checked(AppTest.from_function(_grid_script, default_timeout=30))
        at.session_state["scale"], at.session_state["epoch"] = scale, epoch
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert len(at.image) == 1
        assert at.image[0].proto.imgs[0].url.endswith(".png")  # sent as made: no JPEG blur of pixel art
    assert made == [8, 8, 16]  # three polls of one picture: made once; a new epoch or scale: made again
    images = torch.arange(4 * 8 * 8, dtype=torch.float32).reshape(4, 1, 8, 8) / 255
    png = ui.widgets._grid_png(("another job", 1), images, 4, 8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), image_grid(images, nrow=4, scale=8))


def test_the_batch_table_holds_each_loss_and_its_rolling_mean_at_the_right_batch():
    from core.charts.training import batch_frame

    frame = batch_frame([4.0, 2.0, 0.0, 6.0], window=2, stride=3)
    raw = frame[frame["series"] == "per batch"]
    smooth = frame[frame["series"] == "rolling mean (2)"]
    assert raw["batch"].tolist() == smooth["batch"].tolist() == [3, 6, 9, 12]  # the last batch of each stride
    assert raw["loss"].tolist() == [4.0, 2.0, 0.0, 6.0]
    assert smooth["loss"].tolist() == [4.0, 3.0, 1.0, 3.0]
