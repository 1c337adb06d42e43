"""Projector mode in a real browser at 1400 px (the teacher's walk): images drawn at their own
enlarged size and inside their columns, chart text not cut, and captions larger and in the full
text colour while the mode is on, back to normal when it is off.

One small VAE trained in the browser serves every page: its live loss-parts chart (four legend
entries), the classifier trained on its encoder and the noise sweep.
"""
from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from lab import keyed
from streamlit_ui import (
    RERUN_TIMEOUT_MS,
    TRAINING_TIMEOUT_MS,
    assert_no_traceback,
    expect_images_loaded,
    go_to,
    main,
    open_app,
    pick_radio,
    set_number,
    set_text,
    wait_for_script,
)

RUN = "projector-vae"
# ui/projector.py: PROJECTOR_TEXT_REM of the 16-px root; Streamlit's own captions are 14 px.
PROJECTOR_CAPTION_PX = 19.2
# Where each shown picture sits, its drawn and its own width, and the column it is in.
IMAGE_BOXES = """scope => [...scope.querySelectorAll('[data-testid=stImage] img')].map(img => {
    const box = img.getBoundingClientRect();
    const column = img.closest('[data-testid=stColumn]');
    const col = column ? column.getBoundingClientRect() : null;
    return {natural: img.naturalWidth, shown: box.width, left: box.left, right: box.right, top: box.top,
            colLeft: col ? col.left : null, colRight: col ? col.right : null};
})"""
# Every text Vega drew in the charts in scope (SVG), with its box and its chart's box.
CHART_TEXTS = """scope => [...scope.querySelectorAll('svg.marks')].flatMap(svg => {
    const chart = svg.getBoundingClientRect();
    return [...svg.querySelectorAll('text')].map(t => {
        const box = t.getBoundingClientRect();
        return {text: t.textContent, role: t.closest('g[class*=role-]')?.getAttribute('class') || '',
                left: box.left, right: box.right, top: box.top, bottom: box.bottom,
                chartLeft: chart.left, chartRight: chart.right, chartTop: chart.top, chartBottom: chart.bottom};
    });
})"""
CAPTION_STYLE = """el => { const s = getComputedStyle(el);
    return {size: parseFloat(s.fontSize), opacity: parseFloat(s.opacity), color: s.color,
            body: getComputedStyle(document.querySelector('[data-testid=stMain]')).color}; }"""


def image_boxes(scope: Locator) -> list[dict]:
    expect_images_loaded(scope)
    return scope.evaluate(IMAGE_BOXES)


def assert_images_fit(boxes: list[dict], at_least_px: int) -> None:
    """Every picture at its own size (not shrunk or stretched), at least `at_least_px` wide, inside
    its column, and no two pictures of one row overlapping."""
    assert boxes, "no pictures"
    for box in boxes:
        assert box["natural"] >= at_least_px, box
        assert abs(box["shown"] - box["natural"]) <= 1, f"drawn {box['shown']} px wide, not its own {box['natural']}"
        assert box["colLeft"] is not None, "a picture outside st.columns"
        assert box["left"] >= box["colLeft"] - 0.5 and box["right"] <= box["colRight"] + 0.5, \
            f"a {box['shown']} px picture runs out of its column {box['colLeft']}..{box['colRight']}"
    rows: dict[int, list[dict]] = {}
    for box in boxes:
        rows.setdefault(round(box["top"]), []).append(box)
    for row in rows.values():
        row.sort(key=lambda b: b["left"])
        for before, after in zip(row, row[1:]):
            assert before["right"] <= after["left"], f"pictures overlap: {before} {after}"


# A rotated axis title's box pokes a pixel or two past the SVG; a cut legend ran far past it.
# Up and down only for the y axis's title (turned on its side: a title longer than the axis ran
# past the chart's top and bottom and was cut, "...vs clean imag"); other texts' boxes hold their
# font's whole line height, above the letters too.
EDGE_SLACK_PX = 4


def assert_chart_text_whole(scope: Locator) -> None:
    """No axis title, label or legend entry Vega cut short ("…") or drew past its chart's edge."""
    texts = scope.evaluate(CHART_TEXTS)
    assert texts, "no chart text"
    for text in texts:
        assert not text["text"].endswith("…"), f"cut short: {text['text']!r} ({text['role']})"
        slack = EDGE_SLACK_PX
        assert text["left"] >= text["chartLeft"] - slack and text["right"] <= text["chartRight"] + slack, \
            f"past the chart's edge: {text['text']!r} ({text['role']})"
        if "role-axis-title" in text["role"] and text["bottom"] - text["top"] > text["right"] - text["left"]:
            assert text["top"] >= text["chartTop"] - slack and text["bottom"] <= text["chartBottom"] + slack, \
                f"past the chart's top or bottom: {text['text']!r}"


def caption_style(page: Page) -> dict:
    caption = main(page).get_by_test_id("stCaptionContainer").first
    expect(caption).to_be_visible()
    return caption.evaluate(CAPTION_STYLE)


def set_projector(page: Page, on: bool) -> None:
    toggle = page.get_by_test_id("stSidebar").get_by_role("switch", name="Projector mode")
    if toggle.is_checked() != on:
        page.get_by_test_id("stSidebar").get_by_text("Projector mode", exact=True).click()
        wait_for_script(page)
    expect(toggle).to_be_checked(checked=on)


def train_small_vae(page: Page) -> Locator:
    go_to(page, "Train")
    pick_radio(page, "Architecture", "Dense (fully connected)")
    page.get_by_text("Variational (VAE)", exact=True).click()
    wait_for_script(page)
    set_number(page, "Latent size", 2)
    set_number(page, "Epochs", 2)
    set_text(page, "Run name (optional)", RUN)
    page.get_by_role("button", name="Start training").click()
    wait_for_script(page)
    live = keyed(page, "live_training")
    expect(live).to_contain_text(f"Saved as run {RUN}", timeout=TRAINING_TIMEOUT_MS)
    wait_for_script(page)
    return live


def test_projector_mode_draws_images_whole_and_text_legible(start_app, new_page, shot):
    server = start_app()
    page = new_page()
    open_app(page, server.url)
    normal_caption = caption_style(page)

    # Issue 4: a VAE's four loss parts: every legend entry whole, on a laptop and a projector.
    live = train_small_vae(page)
    parts = keyed(live, "live_loss_chart")
    expect(parts.locator("svg.marks")).to_have_count(2, timeout=RERUN_TIMEOUT_MS)
    expect(parts.locator("svg.marks").nth(1)).to_contain_text("validation reconstruction")
    assert_chart_text_whole(parts)
    parts.scroll_into_view_if_needed()
    shot(page, "train-vae-parts")
    set_projector(page, True)
    expect(parts.locator("svg.marks").nth(1)).to_contain_text("validation reconstruction")
    assert_chart_text_whole(parts)
    parts.scroll_into_view_if_needed()
    shot(page, "projector-train-vae-parts")

    # Issue 2: the samples per class at their projector size (8×8 digits at 128 px, 2 a row).
    go_to(page, "Data")
    preview_images = image_boxes(main(page))
    assert len(preview_images) == 10
    assert_images_fit(preview_images, at_least_px=2 * 128)
    # Issue 3: captions larger, in the page's text colour rather than faded (Streamlit's are at 60 %).
    projector_caption = caption_style(page)
    assert projector_caption["size"] >= PROJECTOR_CAPTION_PX > normal_caption["size"] + 3, (normal_caption,
                                                                                             projector_caption)
    assert projector_caption["color"] == projector_caption["body"]
    assert projector_caption["opacity"] == 1 > normal_caption["opacity"]
    shot(page, "projector-data")

    # Issue 1: the classifier's most confused examples, each whole in its own column.
    go_to(page, "Classifier")
    page.get_by_role("button", name="Train classifier").click()
    wait_for_script(page)
    expect(main(page)).to_contain_text("Most confused examples", timeout=TRAINING_TIMEOUT_MS)
    wait_for_script(page)
    confused = image_boxes(main(page))
    assert len(confused) >= 6
    assert_images_fit(confused, at_least_px=128)
    shot(page, "projector-classifier")

    # Issue 3: the noise sweep's axis title whole at the projector's font size.
    go_to(page, "Noise")
    sweep = main(page)  # the page's one chart
    expect(sweep.locator("svg.marks")).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    expect(sweep.locator("svg.marks")).to_contain_text(re.compile("MSE"))
    assert_chart_text_whole(sweep)
    sweep.locator("svg.marks").scroll_into_view_if_needed()
    shot(page, "projector-noise")

    # Off again: Streamlit's own caption style is back.
    set_projector(page, False)
    assert caption_style(page) == normal_caption
    assert_no_traceback(page)
