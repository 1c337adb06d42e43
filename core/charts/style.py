"""The shared look of every chart: the palette and this screen's font sizes, as a chart's
top-level config (a laptop screen, or a projector at the back of a room)."""
from __future__ import annotations

import altair as alt

from core.charts.palette import PALETTE

# (axis labels, axis titles, legend, chart title) font sizes in px.
SCREEN_FONTS = (12, 13, 12, 15)
PROJECTOR_FONTS = (18, 20, 18, 24)


def styled(chart: alt.TopLevelMixin, projector: bool = False) -> alt.TopLevelMixin:
    """The chart with the shared palette and the screen's (or a projector's) font sizes."""
    labels, titles, legend, title = PROJECTOR_FONTS if projector else SCREEN_FONTS
    return (chart.configure_range(category=list(PALETTE))
            .configure_axis(labelFontSize=labels, titleFontSize=titles, labelLimit=400)
            .configure_legend(labelFontSize=legend, titleFontSize=legend, symbolSize=150 if projector else 80,
                              labelLimit=400)
            .configure_title(fontSize=title, subtitleFontSize=labels)
            .configure_text(fontSize=labels))
