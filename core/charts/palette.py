"""The one categorical palette every chart uses, and a stable colour for each run.

Okabe & Ito's colour-blind-safe set (without its yellow, which vanishes on white) plus three
darker hues of their own (wine, brown, indigo); no two entries are a light and a dark shade of one
hue, and no light grey. The order matters: the first colours go to the first categories (two
runs are blue and orange, four runs blue, orange, black and brown, far apart also for a deuteranope
or protanope), and runs take colours by age (run_colors), so the runs a comparison shows are
usually next to each other in the palette: any four neighbours, wrapping round, stay apart on a
washed-out projector too, and the dark pairs a room cannot tell apart there (black and indigo,
wine and brown) are never among four neighbours.
tests/test_palette.py asserts the minimum CIEDE2000 distance between any two entries, also as a
deuteranope and a protanope see them, and between neighbours as a projector shows them.

Pure module (Altair only, no Streamlit): pages and chart builders import it.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import altair as alt

# name -> hex; the names are for people reading the code and the tests' messages.
NAMED_COLORS = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "black": "#000000",
    "brown": "#8C564B",
    "reddish purple": "#CC79A7",
    "sky blue": "#56B4E9",
    "indigo": "#332288",
    "vermillion": "#D55E00",
    "bluish green": "#009E73",
    "wine": "#882255",
}
PALETTE: tuple[str, ...] = tuple(NAMED_COLORS.values())
# Lines that are not a category (a mean, the current slider value, a best-epoch mark).
REFERENCE_COLOR = "#444444"


def colors_for(count: int) -> list[str]:
    """The first `count` palette colours, cycling when there are more categories than colours."""
    return [PALETTE[i % len(PALETTE)] for i in range(count)]


def category_scale(domain: Sequence) -> alt.Scale:
    """An Altair colour scale giving the palette, in order, to `domain` (e.g. class names in class
    order, so class 3 has the same colour on every chart)."""
    domain = list(domain)
    return alt.Scale(domain=domain, range=colors_for(len(domain)))


def run_colors(all_runs_oldest_first: Iterable[str]) -> dict[str, str]:
    """run name -> colour, by the run's place among all saved runs, oldest first: a run keeps its
    colour on every page and when newer runs are added (deleting a run shifts the later ones)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(all_runs_oldest_first)}


def run_scale(shown: Sequence[str], colors: dict[str, str]) -> alt.Scale:
    """A colour scale for the runs in `shown` with each run's stable colour from `colors`
    (a run missing from it, e.g. one still training, takes a palette colour by its position)."""
    shown = list(dict.fromkeys(shown))
    return alt.Scale(domain=shown, range=[colors.get(name, PALETTE[i % len(PALETTE)])
                                          for i, name in enumerate(shown)])
