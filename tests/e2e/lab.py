"""The lesson's steps in Autoencoder Lab, as a student does them in the browser.

Labels and container keys come from the pages (views/*.py, ui/config_form.py); Streamlit renders
`st.container(key=K)` and every keyed widget with the CSS class `st-key-K`.
"""
from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from streamlit_ui import (
    RERUN_TIMEOUT_MS,
    TRAINING_TIMEOUT_MS,
    choose,
    expect_images_loaded,
    go_to,
    main,
    pick_radio,
    set_number,
    set_text,
    wait_for_script,
)

DIGITS = "Digits (8×8, built in)"
# Vega draws one SVG path per data point of a point mark (a scatter, or a `mark_line(point=True)`
# chart's points) in a `g.mark-symbol.role-mark` group (legend symbols are role-legend-symbol,
# not counted).
POINT_MARKS = "g.mark-symbol.role-mark path"
EPOCH_TEXT = re.compile(r"epoch (\d+)/(\d+)")


def keyed(scope: Page | Locator, key: str) -> Locator:
    """The element Streamlit rendered for `st.container(key=key)` or a widget with that key."""
    return scope.locator(f".st-key-{key}")


def choose_digits(page: Page) -> None:
    """Data page: the built-in digits, and their preview grid renders."""
    go_to(page, "Data")
    choose(page, "Dataset", DIGITS)
    expect_images_loaded(main(page), at_least=10)
    expect(main(page)).to_contain_text("10 classes")


def configure_conv(page: Page, *, epochs: int, latent: int = 2, run_name: str = "",
                   optimiser: str | None = None, learning_rate: float | None = None,
                   output_activation: str | None = None) -> None:
    """Train page: a small convolutional autoencoder with these settings."""
    go_to(page, "Train")
    pick_radio(page, "Architecture", "Convolutional")
    pick_radio(page, "Size preset", "small")
    set_number(page, "Latent size", latent)
    set_number(page, "Epochs", epochs)
    if optimiser is not None:
        choose(page, "Optimiser", optimiser)
    if learning_rate is not None:
        set_number(page, "Learning rate", learning_rate)
    if output_activation is not None:
        choose(page, "Output activation", output_activation)
    if run_name:
        set_text(page, "Run name (optional)", run_name)
    # The layer table follows the settings: the model was built for the digits.
    expect(main(page)).to_contain_text("input 1×8×8")


def start_training(page: Page) -> Locator:
    """Press Start training; returns the live training area."""
    start = page.get_by_role("button", name="Start training")
    expect(start).to_be_enabled()
    start.click()
    wait_for_script(page)
    live = keyed(page, "live_training")
    expect(live).to_be_visible()
    return live


def live_epoch(live: Locator) -> tuple[int, int]:
    """(epoch in progress, total epochs) from the progress bar's text."""
    text = live.get_by_test_id("stProgress").inner_text()
    match = EPOCH_TEXT.search(text)
    assert match, f"no 'epoch e/E' in the progress text {text!r}"
    return int(match.group(1)), int(match.group(2))


def progress_percent(live: Locator) -> float:
    return float(live.get_by_role("progressbar").first.get_attribute("aria-valuenow") or 0)


def wait_for_epoch_points(live: Locator, series: int, epochs: int, timeout: int = TRAINING_TIMEOUT_MS) -> None:
    """Until the live loss chart shows at least `epochs` points on each of its `series` lines."""
    points = keyed(live, "live_loss_chart").locator(POINT_MARKS)
    expect(points.nth(series * epochs - 1)).to_be_attached(timeout=timeout)


def stop_training(page: Page, live: Locator) -> None:
    stop = keyed(live, "stop_job").get_by_role("button", name="Stop")
    stop.click()
    expect(live).to_contain_text(re.compile("stopped", re.I), timeout=RERUN_TIMEOUT_MS * 2)
    expect(live).to_contain_text("Saved as run", timeout=RERUN_TIMEOUT_MS * 2)
    # Once the job has ended the page stops polling and offers no Stop any more.
    expect(keyed(live, "stop_job")).to_have_count(0, timeout=RERUN_TIMEOUT_MS)
    wait_for_script(page)


def expect_sidebar_idle(page: Page, current_run: str) -> None:
    """Once the last job has ended, the sidebar says so and names the run just saved."""
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_contain_text("No training job running.", timeout=RERUN_TIMEOUT_MS)
    expect(sidebar).to_contain_text(f"Current run: {current_run}")


def saved_run_name(live: Locator) -> str:
    match = re.search(r"Saved as run (\S+)\.", live.inner_text())
    assert match, f"no 'Saved as run NAME.' in the live area:\n{live.inner_text()}"
    return match.group(1)


def slider(scope: Locator, label: str) -> Locator:
    """A Streamlit slider's thumb: react-aria renders it as a visually hidden range input whose
    aria-label is the slider's label (its accessible name repeats the label, so no get_by_role)."""
    return scope.locator(f'input[type=range][aria-label="{label}"]')


def wait_for_new_source(page: Page, images: Locator, before: str, timeout: int = RERUN_TIMEOUT_MS) -> str:
    """Until the first image in `images` has a src other than `before`; returns it."""
    expect(images.first).not_to_have_attribute("src", before, timeout=timeout)
    after = images.first.get_attribute("src") or ""
    page.wait_for_function("i => i.complete && i.naturalWidth > 0",
                           arg=images.first.element_handle(), timeout=timeout)
    return after


def slider_text(scope: Locator, label: str) -> str:
    """The value a slider shows (its thumb's text, e.g. "-0.731")."""
    return slider(scope, label).get_attribute("aria-valuetext") or ""


def legend_labels(chart: Locator) -> list[str]:
    """The entries of the legends Vega drew in a chart (the SVG renderer's legend label texts)."""
    return chart.locator("g.role-legend-label text").all_text_contents()
