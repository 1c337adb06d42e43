"""The shared palette: clearly distinct colours, also for colour-blind viewers; stable run colours;
the projector's image scale."""
from __future__ import annotations

import itertools
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from coloraide import Color

from core.charts.inspect import POINT_OPACITY, _colour_scale
from core.charts.palette import NAMED_COLORS, PALETTE, REFERENCE_COLOR, category_scale, colors_for, run_colors, run_scale

ROOT = Path(__file__).resolve().parents[1]
# CIEDE2000 distances: ~2 is a just-noticeable difference; 20+ reads as another colour at a glance.
MIN_DISTANCE = 20
# As a deuteranope / protanope sees them (Brettel-style simulation): 10 palette entries cannot
# all be far apart for a dichromat, but none may collapse into the same colour.
MIN_DISTANCE_DICHROMAT = 12
# The colours 2-4-run comparisons use must stay well apart even for a dichromat.
MIN_DISTANCE_FIRST_FOUR_DICHROMAT = 25
# A projector in a lit room lifts black and washes colours out: modelled as white light added in
# linear RGB (12 %: a contrast of about 8:1). The latent scatter's ten class colours, as its points
# draw them over white, must not collapse there (at opacity 0.75 blue and sky blue were 10.9 apart).
PROJECTOR_WASH = 0.12
MIN_DISTANCE_PROJECTED = 12
# Runs take colours by age, so a comparison of a few runs made one after the other (a week's
# 2×2 grid) shows palette neighbours: any NEIGHBOURS consecutive entries, wrapping round.
NEIGHBOURS = 4
MIN_DISTANCE_NEIGHBOURS = 23
MIN_DISTANCE_NEIGHBOURS_DICHROMAT = 13
# On a projector (PROJECTOR_WASH) dark colours wash towards one another: the palette's order as
# it was (black, brown, indigo, wine side by side) had neighbours only 12.6 apart there (wine and
# brown), which a teacher could not tell apart; the order now keeps them 18.3 apart.
MIN_DISTANCE_NEIGHBOURS_PROJECTED = 16
# Pairs a teacher could not tell apart on a projector: never among NEIGHBOURS neighbours.
CONFUSED_ON_A_PROJECTOR = [("black", "indigo"), ("wine", "brown")]


def min_pair(colors: list[str], simulate: str | None = None) -> tuple[float, tuple[str, str]]:
    shown = [Color(c) if simulate is None else on_a_projector(c, 1.0) if simulate == "projector"
             else Color(c).filter(simulate) for c in colors]
    return min((a.delta_e(b, method="2000"), (ca, cb))
               for (ca, a), (cb, b) in itertools.combinations(zip(colors, shown), 2))


def test_palette_colours_are_distinct():
    assert len(set(PALETTE)) == len(PALETTE) >= 10
    distance, pair = min_pair(list(PALETTE))
    assert distance >= MIN_DISTANCE, f"{pair} are only {distance:.1f} apart"


@pytest.mark.parametrize("deficiency", ["deutan", "protan"])
def test_palette_survives_colour_blindness(deficiency):
    distance, pair = min_pair(list(PALETTE), deficiency)
    assert distance >= MIN_DISTANCE_DICHROMAT, f"{deficiency}: {pair} are only {distance:.1f} apart"
    distance, pair = min_pair(list(PALETTE[:4]), deficiency)
    assert distance >= MIN_DISTANCE_FIRST_FOUR_DICHROMAT, f"{deficiency}: {pair} ({distance:.1f})"


def on_a_projector(color: str, opacity: float) -> Color:
    drawn = Color.mix(Color("white"), Color(color), opacity, space="srgb")  # browsers blend in sRGB
    return Color.mix(drawn, Color("white"), PROJECTOR_WASH, space="srgb-linear")


def test_latent_scatter_class_colours_stay_apart_on_a_projector():
    scale = _colour_scale(pd.DataFrame({"class": []}), "class", False, [str(d) for d in range(10)])
    shown = [on_a_projector(c, POINT_OPACITY) for c in scale.range]
    distance, pair = min((a.delta_e(b, method="2000"), (ca, cb)) for (ca, a), (cb, b)
                         in itertools.combinations(zip(scale.range, shown), 2))
    assert distance >= MIN_DISTANCE_PROJECTED, f"{pair} are only {distance:.1f} apart on a projector"


def neighbours() -> list[list[str]]:
    """Every run of NEIGHBOURS consecutive palette entries, wrapping round (run_colors cycles)."""
    return [[PALETTE[(start + i) % len(PALETTE)] for i in range(NEIGHBOURS)] for start in range(len(PALETTE))]


@pytest.mark.parametrize("simulate, least", [(None, MIN_DISTANCE_NEIGHBOURS),
                                             ("deutan", MIN_DISTANCE_NEIGHBOURS_DICHROMAT),
                                             ("protan", MIN_DISTANCE_NEIGHBOURS_DICHROMAT),
                                             ("projector", MIN_DISTANCE_NEIGHBOURS_PROJECTED)])
def test_runs_made_one_after_another_get_colours_far_apart(simulate, least):
    for group in neighbours():
        distance, pair = min_pair(group, simulate)
        assert distance >= least, f"{simulate or 'normal vision'}: neighbours {pair} are only {distance:.1f} apart"


def test_dark_pairs_a_projector_merges_are_never_neighbours():
    names = {color: name for name, color in NAMED_COLORS.items()}
    for group in neighbours():
        shown = {names[c] for c in group}
        for pair in CONFUSED_ON_A_PROJECTOR:
            assert not set(pair) <= shown, f"{pair} are neighbours in the palette: {sorted(shown)}"


def test_no_colour_is_faint_on_white():
    # WCAG's 3:1 for graphics would rule out orange; 2:1 rules out yellow and light greys.
    white = Color("white")
    for color in (*PALETTE, REFERENCE_COLOR):
        assert Color(color).contrast(white) >= 2.0, color


def test_streamlit_theme_uses_the_same_palette():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert [c.upper() for c in config["theme"]["chartCategoricalColors"]] == [c.upper() for c in PALETTE]
    assert config["client"]["toolbarMode"] in ("viewer", "minimal")


def test_run_colours_are_stable_when_runs_are_added():
    before = run_colors(["a", "b", "c"])
    after = run_colors(["a", "b", "c", "d"])
    assert {k: after[k] for k in before} == before
    assert len(set(after.values())) == 4
    scale = run_scale(["c", "a"], after)
    assert scale.domain == ["c", "a"] and scale.range == [after["c"], after["a"]]


def test_category_scale_cycles_in_order():
    assert colors_for(3) == list(PALETTE[:3])
    assert colors_for(len(PALETTE) + 1)[-1] == PALETTE[0]
    assert category_scale(["x", "y"]).range == list(PALETTE[:2])
