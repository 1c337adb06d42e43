"""Projector mode: a sidebar toggle (kept in the URL as ?projector=1) that makes the app legible
from the back of a classroom — small images enlarged with nearest-neighbour pixels to at least
PROJECTOR_MIN_PIXELS per image, larger chart fonts and taller charts, and captions, image captions,
help text and labels larger and in the full text colour (PROJECTOR_CSS).

Every chart goes through `show_chart` (or `show_live_chart` for a chart a live view redraws on every
poll), which also gives it the shared palette (core.charts.palette); every image size goes through `upscale_for`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import streamlit as st

if TYPE_CHECKING:  # Altair and pandas load with the first chart: the toggle, on every page, needs neither
    import altair as alt
    import pandas as pd

PROJECTOR_KEY = "projector_mode"  # a plain session key (not the widget's), so it outlives pages
PROJECTOR_WIDGET_KEY = "projector_toggle"
PROJECTOR_PARAM = "projector"
SCREEN_MIN_PIXELS = 64  # on a laptop: 8×8 digits drawn at 64 px
PROJECTOR_MIN_PIXELS = 128  # on a projector: every small image at least 128 px
PROJECTOR_HEIGHT_FACTOR = 1.35
# The page width at a 1400-px window with the sidebar open (the classroom laptop): what fits in
# one row of images (images_per_row) without Streamlit shrinking them.
PAGE_WIDTH_PIXELS = 940
COLUMN_GAP_PIXELS = 16  # st.columns' default gap ("small", 1rem)
# Streamlit draws captions, image captions and help text at 14 px in a faded grey, and labels at
# 14 px: from the back of a room they vanish. Only sent while projector mode is on (st.html with
# nothing but a <style> goes to Streamlit's event container: no space on the page), so turning
# the mode off removes it. Colours inherit the theme's text colour rather than naming one.
PROJECTOR_TEXT_REM = 1.2
PROJECTOR_LABEL_REM = 1.1
PROJECTOR_CSS = f"""<style>
[data-testid="stCaptionContainer"], [data-testid="stImageCaption"], [data-testid="stTooltipContent"] {{
  font-size: {PROJECTOR_TEXT_REM}rem; color: inherit; opacity: 1;
}}
[data-testid="stCaptionContainer"] p, [data-testid="stTooltipContent"] p {{ font-size: inherit; }}
[data-testid="stWidgetLabel"] p, [data-testid="stMetricLabel"] p {{ font-size: {PROJECTOR_LABEL_REM}rem; }}
</style>"""


def projector_on() -> bool:
    """Whether this session shows the app for a projector (first from the URL, then the toggle)."""
    if PROJECTOR_KEY not in st.session_state:
        st.session_state[PROJECTOR_KEY] = st.query_params.get(PROJECTOR_PARAM) == "1"
    return bool(st.session_state[PROJECTOR_KEY])


def _toggled() -> None:
    st.session_state[PROJECTOR_KEY] = bool(st.session_state[PROJECTOR_WIDGET_KEY])


def projector_toggle() -> None:
    """The sidebar toggle; the URL keeps the mode (ui.url_state writes it) so a reload keeps it."""
    st.session_state[PROJECTOR_WIDGET_KEY] = projector_on()
    st.toggle("Projector mode", key=PROJECTOR_WIDGET_KEY, on_change=_toggled,
              help="Bigger images, fonts and charts for a room.")
    if projector_on():
        st.html(PROJECTOR_CSS)


def upscale_for(image_size: int) -> int:
    """Integer nearest-neighbour upscaling for an image of this side: 8×8 digits become 64 px on a
    screen; in projector mode every image becomes at least PROJECTOR_MIN_PIXELS."""
    size = max(image_size, 1)
    if projector_on():
        return max(1, -(-PROJECTOR_MIN_PIXELS // size))  # rounded up: never below the minimum
    return max(1, SCREEN_MIN_PIXELS // size)


def images_per_row(image_width: int, most: int) -> int:
    """How many images `image_width` px wide fit side by side in one row of st.columns across the
    page (at most `most`, at least one): more would make Streamlit shrink them (or, at a fixed
    width, run into the next column)."""
    return max(1, min(most, (PAGE_WIDTH_PIXELS + COLUMN_GAP_PIXELS) // (image_width + COLUMN_GAP_PIXELS)))


def chart_height(height: int) -> int:
    """A chart's height on this screen (taller on a projector)."""
    return int(height * PROJECTOR_HEIGHT_FACTOR) if projector_on() else height


def styled(chart: alt.TopLevelMixin, projector: bool | None = None) -> alt.TopLevelMixin:
    """The chart with the shared palette and this screen's font sizes (core.charts.style)."""
    from core.charts.style import styled as _styled

    return _styled(chart, projector_on() if projector is None else projector)


def show_chart(chart: alt.TopLevelMixin, **kwargs):
    """st.altair_chart for every page: the palette, this screen's fonts; returns its event."""
    return st.altair_chart(styled(chart), **kwargs)


# The name of a live chart's one dataset: every poll sends the same spec and new data under it.
LIVE_DATASET = "live"


@st.cache_data(max_entries=64, show_spinner=False)
def _live_spec(kind: str, _build: Callable[[alt.Data], alt.TopLevelMixin], height: int, projector: bool) -> dict:
    """The Vega-Lite spec of a live chart without its data, built once per server for each kind,
    height and screen (st.cache_data hands every caller its own copy)."""
    import altair as alt

    spec = styled(_build(alt.Data(name=LIVE_DATASET)).properties(height=height), projector).to_dict()
    # What st.altair_chart leaves out too: Altair's default theme's 300×300 view (Streamlit
    # converts with the "none" theme; the chart's own height and the page's width apply).
    view = spec.get("config", {}).get("view", {})
    view.pop("continuousWidth", None)
    view.pop("continuousHeight", None)
    if "view" in spec.get("config", {}) and not view:
        del spec["config"]["view"]
    return spec


def show_live_chart(kind: str, build: Callable[[alt.Data], alt.TopLevelMixin], frame: pd.DataFrame,
                    height: int, **kwargs):
    """Draw `build(data)` with `frame` as its data, for a live view that redraws it on every poll.

    The same chart as show_chart(build(frame)), but Altair runs once per `kind` (a name unique to
    `build`) instead of once per poll: building a chart (encoding inference, schema validation,
    JSON) was most of a poll's server time while a class followed its jobs (BENCHMARKS.md, "A
    class polling the Train page"); a poll now only turns its table into Arrow."""
    spec = _live_spec(kind, build, chart_height(height), projector_on())
    spec["datasets"] = {LIVE_DATASET: frame}
    return st.vega_lite_chart(spec, **kwargs)
