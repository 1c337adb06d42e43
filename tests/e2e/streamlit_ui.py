"""How a student's clicks and keys reach Streamlit 1.67 widgets, and what the walks read back.

Streamlit reruns the script asynchronously after every interaction, so every read here is an
auto-waiting Playwright locator or `expect(...)`, never a fixed sleep.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

APP_LOAD_TIMEOUT_MS = 60_000
RERUN_TIMEOUT_MS = 30_000
TRAINING_TIMEOUT_MS = 180_000
SCRIPT_START_MS = 200
NOT_RUNNING = "notRunning"


def open_app(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_test_id("stSidebarNav")).to_be_visible(timeout=APP_LOAD_TIMEOUT_MS)
    wait_for_script(page, timeout=APP_LOAD_TIMEOUT_MS)
    assert_no_traceback(page)


def go_to(page: Page, title: str) -> None:
    """Click a page in the sidebar navigation (a click keeps the session; a URL would not)."""
    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True)
    link.click()
    expect(link).to_have_attribute("aria-current", "page", timeout=RERUN_TIMEOUT_MS)
    wait_for_script(page)


def wait_for_script(page: Page, timeout: int = RERUN_TIMEOUT_MS) -> None:
    """Wait until the script run that an interaction started has finished.

    Streamlit marks its app element with the script's state (data-test-script-state). A rerun
    starts a moment after the interaction reaches the server, so give it that moment (as
    Streamlit's own browser tests do), then wait for the state to leave running. A page with a
    live fragment runs it again twice a second; the wait only needs one idle moment between."""
    page.wait_for_timeout(SCRIPT_START_MS)
    expect(page.get_by_test_id("stApp")).to_have_attribute(
        "data-test-script-state", NOT_RUNNING, timeout=timeout)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=timeout)


def main(page: Page) -> Locator:
    """The page's own content (not the sidebar)."""
    return page.get_by_test_id("stMain")


def assert_no_traceback(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)
    body = page.inner_text("body")
    assert "Traceback" not in body, f"A traceback is on the page:\n{body[-3000:]}"


def choose(page: Page, label: str, option: str, scope: Locator | None = None) -> None:
    """Pick an option of a select box (a combobox named by its label)."""
    box = (scope or page).get_by_role("combobox", name=label, exact=True)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(box).to_have_value(option)
    wait_for_script(page)


def pick_radio(page: Page, label: str, option: str, scope: Locator | None = None) -> None:
    group = (scope or page).get_by_role("radiogroup", name=label, exact=True)
    group.get_by_text(option, exact=True).click()
    wait_for_script(page)


def set_number(page: Page, label: str, value, scope: Locator | None = None) -> None:
    box = (scope or page).get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_for_script(page)


def set_text(page: Page, label: str, value: str, scope: Locator | None = None) -> None:
    box = (scope or page).get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_for_script(page)


def nudge_slider(page: Page, slider: Locator, key: str = "ArrowRight", times: int = 3) -> None:
    """Move a slider with the keyboard, the way an accessible user would (no pixel maths)."""
    slider.scroll_into_view_if_needed()
    slider.focus()
    for _ in range(times):
        slider.press(key)
    # Streamlit sends the new value when the thumb is released; a key press counts as a release.
    wait_for_script(page)


def expect_images_loaded(scope: Locator, at_least: int = 1, timeout: int = RERUN_TIMEOUT_MS) -> None:
    """At least `at_least` st.image pictures, each actually decoded by the browser."""
    images = scope.locator("[data-testid=stImage] img")
    expect(images.nth(at_least - 1)).to_be_visible(timeout=timeout)
    for img in images.all():
        img.scroll_into_view_if_needed()
        img.page.wait_for_function(
            "i => i.complete && i.naturalWidth > 0", arg=img.element_handle(), timeout=timeout)


@contextmanager
def report_offline(browser, report: Path):
    """A downloaded report in a browser with the network off, each figure scrolled to: yields (its
    page, how many figures it has, the indices of those that do not show, every URL it requested)."""
    offline = browser.new_context(viewport={"width": 1200, "height": 1600}, offline=True)
    try:
        reader = offline.new_page()
        requests: list[str] = []
        reader.on("request", lambda request: requests.append(request.url))
        reader.goto(report.as_uri())
        images = reader.locator("figure img")
        broken = []
        for i in range(images.count()):
            images.nth(i).scroll_into_view_if_needed()
            if not images.nth(i).evaluate("i => i.complete && i.naturalWidth > 0"):
                broken.append(i)
        yield reader, images.count(), broken, requests
    finally:
        offline.close()
