"""Issue 8 in the app (AppTest through app.py): the URL keeps dataset, run, projector mode and the
pages' choices; Train defaults fitted to the dataset's size; the sidebar names the run's data."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from apptest_helpers import APP, checked
from core.config import DataConfig
from core.defaults import suggested_training
from ui.projector import PROJECTOR_KEY
from ui.state import DATA_CONFIG_KEY, SELECTED_RUN_KEY
from ui.url_state import data_config_from_params, data_config_params

# The sidebar (dataset, run, projector toggle) as a real server draws it.


def open_with_url(page: str | None, params: dict[str, str]) -> AppTest:
    """A fresh session (a reload, a shared link) opening `page` with these query parameters."""
    at = checked(AppTest.from_file(APP, default_timeout=90))
    for key, value in params.items():
        at.query_params[key] = value
    # The URL is read on the session's first run (AppTest's switch_page before a first run starts
    # a second session, so the link is opened on the first page, then the page is switched to).
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def param(at: AppTest, name: str):
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def sidebar_text(at: AppTest) -> str:
    return " ".join(m.value for m in at.sidebar.markdown) + " " + " ".join(c.value for c in at.sidebar.caption)


def test_data_config_round_trips_through_the_url():
    cfg = DataConfig(dataset="folder", folder="/data/photos", image_size=64, channels=3, limit=300, balanced=True)
    params = data_config_params(cfg)
    assert params == {"dataset": "folder", "folder": "/data/photos", "size": "64", "limit": "300", "balanced": "1"}
    assert data_config_from_params(params) == cfg
    # A value that does not parse is left at its default rather than breaking the page.
    assert data_config_from_params({"dataset": "shapes", "size": "big"}) == DataConfig(dataset="shapes")
    assert data_config_from_params({"run": "x"}) is None


def test_a_reload_keeps_the_dataset_and_train_uses_it(no_runs):
    # A shapes set of 400 at 16 px: another dataset than the default digits.
    at = open_with_url("views/train.py", {"dataset": "shapes", "shapes": "400", "size": "16"})
    assert at.session_state[DATA_CONFIG_KEY] == DataConfig(dataset="shapes", shapes_count=400, image_size=16)
    assert "Shapes" in sidebar_text(at) and "Digits" not in sidebar_text(at)
    assert any("input 3×16×16" in c.value for c in at.caption)  # the layer table is built for it
    # ... and the URL still says so after the run (a second reload finds it again).
    assert param(at, "dataset") == "shapes" and param(at, "shapes") == "400"
    # Defaults fitted to 320 training images.
    expected = suggested_training(320)
    assert at.number_input(key="cfg_batch_size").value == expected.batch_size
    assert at.number_input(key="cfg_epochs").value == expected.epochs
    assert any("optimiser steps per epoch" in c.value for c in at.caption)
    assert at.text_input(key="cfg_name").value == ""
    # A full batch of the 320 images is one step per epoch: the page warns.
    at.number_input(key="cfg_batch_size").set_value(512).run()
    assert any("Only 1 optimiser step per epoch" in w.value for w in at.warning)


def test_a_reload_keeps_the_run_and_projector_mode(app_runs):
    at = open_with_url("views/reconstructions.py", {"run": "tiny-denoise", "projector": "1"})
    assert at.session_state[SELECTED_RUN_KEY] == "tiny-denoise"
    assert at.session_state[PROJECTOR_KEY] is True
    assert at.toggle(key="projector_toggle").value is True
    assert "**Current run:** tiny-denoise" in sidebar_text(at)
    assert "Trained on Digits" in sidebar_text(at)
    assert param(at, "run") == "tiny-denoise" and param(at, "projector") == "1"
    at.toggle(key="projector_toggle").set_value(False).run()
    assert param(at, "projector") is None and at.session_state[PROJECTOR_KEY] is False


def test_an_unknown_run_in_the_url_falls_back_to_a_saved_one(app_runs):
    """A link to a run deleted since: the page says so (once, as text), forgets the name (the URL
    stops naming it) and offers the saved runs; none is this new browser's, so none is chosen."""
    at = open_with_url("views/reconstructions.py", {"run": "no-such-run"})
    assert [w.value for w in at.warning if "no-such-run" in w.value]
    assert SELECTED_RUN_KEY not in at.session_state and param(at, "run") is None
    picker = at.selectbox(key="recon_run")
    assert {"tiny-conv", "tiny-denoise"} <= set(picker.options) and picker.value is None
    at.run()
    assert not [w.value for w in at.warning if "no-such-run" in w.value]


def test_projector_mode_enlarges_the_fonts_and_heights_of_the_charts_a_page_sends(app_runs):
    """The Runs page's charts as the browser gets them (their Vega-Lite specs): larger axis,
    legend and title fonts with ?projector=1, and taller charts, than without it."""
    import json

    from core.charts.style import PROJECTOR_FONTS, SCREEN_FONTS

    def specs(query):
        at = open_with_url("views/runs.py", query)
        assert not at.exception
        return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]

    screen, projector = specs({}), specs({"projector": "1"})
    assert screen and len(screen) == len(projector)
    for plain, big in zip(screen, projector):
        assert plain["config"]["axis"]["labelFontSize"] == SCREEN_FONTS[0]
        assert big["config"]["axis"]["labelFontSize"] == PROJECTOR_FONTS[0] > SCREEN_FONTS[0]
        assert big["config"]["legend"]["labelFontSize"] > plain["config"]["legend"]["labelFontSize"]
    heights = [(p.get("height"), b.get("height")) for p, b in zip(screen, projector)
               if isinstance(p.get("height"), (int, float))]
    assert heights and all(b > p for p, b in heights)


def test_projector_mode_sends_its_text_style_only_while_it_is_on(app_runs):
    """Captions and help text stayed small and faded on a projector: the mode sends a style that
    enlarges them (in the browser: tests/e2e/test_e2e_projector.py), and only while it is on."""
    from ui.projector import PROJECTOR_CSS

    def styles(at):
        return [element.proto.body for element in at.get("html") if "<style>" in element.proto.body]

    at = open_with_url("views/data.py", {"projector": "1"})
    assert styles(at) == [PROJECTOR_CSS]
    assert "stCaptionContainer" in PROJECTOR_CSS and "opacity: 1" in PROJECTOR_CSS
    at.toggle(key="projector_toggle").set_value(False).run()
    assert styles(at) == []
    assert styles(open_with_url("views/data.py", {})) == []
