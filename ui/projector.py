"""Projector mode: a sidebar toggle (kept in the URL as ?projector=1) that makes the app legible
from the back of a classroom — small images enlarged with nearest-neighbour pixels to at least
PROJECTOR_MIN_PIXELS per image, larger chart fonts and taller charts.

Every chart goes through `show_chart`, which also gives it the shared palette (ui.palette);
every image size goes through `upscale_for`.
"""
from __future__ import annotations

import altair as alt
import streamlit as st

from ui.palette import PALETTE

PROJECTOR_KEY = "projector_mode"  # a plain session key (not the widget's), so it outlives pages
PROJECTOR_WIDGET_KEY = "projector_toggle"
PROJECTOR_PARAM = "projector"
SCREEN_MIN_PIXELS = 64  # on a laptop: 8×8 digits drawn at 64 px
PROJECTOR_MIN_PIXELS = 128  # on a projector: every small image at least 128 px
# (axis labels, axis titles, legend, chart title) font sizes in px.
SCREEN_FONTS = (12, 13, 12, 15)
PROJECTOR_FONTS = (18, 20, 18, 24)
PROJECTOR_HEIGHT_FACTOR = 1.35


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


def upscale_for(image_size: int) -> int:
    """Integer nearest-neighbour upscaling for an image of this side: 8×8 digits become 64 px on a
    screen; in projector mode every image becomes at least PROJECTOR_MIN_PIXELS."""
    size = max(image_size, 1)
    if projector_on():
        return max(1, -(-PROJECTOR_MIN_PIXELS // size))  # rounded up: never below the minimum
    return max(1, SCREEN_MIN_PIXELS // size)


def chart_height(height: int) -> int:
    """A chart's height on this screen (taller on a projector)."""
    return int(height * PROJECTOR_HEIGHT_FACTOR) if projector_on() else height


def styled(chart: alt.TopLevelMixin, projector: bool | None = None) -> alt.TopLevelMixin:
    """The chart with the shared palette and this screen's font sizes (top-level config)."""
    projector = projector_on() if projector is None else projector
    labels, titles, legend, title = PROJECTOR_FONTS if projector else SCREEN_FONTS
    return (chart.configure_range(category=list(PALETTE))
            .configure_axis(labelFontSize=labels, titleFontSize=titles, labelLimit=400)
            .configure_legend(labelFontSize=legend, titleFontSize=legend, symbolSize=150 if projector else 80,
                              labelLimit=400)
            .configure_title(fontSize=title)
            .configure_text(fontSize=labels))


def show_chart(chart: alt.TopLevelMixin, **kwargs):
    """st.altair_chart for every page: the palette, this screen's fonts; returns its event."""
    return st.altair_chart(styled(chart), **kwargs)
