"""Coming back to Train (the teacher's walk): a run typed with a name that is not a folder name shows
the name it is saved under everywhere; the form keeps its settings across a page switch and a
reload; after a reload elsewhere the job list's selected job is drawn under it; and the server log
has no Session State warning."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from lab import choose_digits, configure_conv, keyed, start_training, stop_training, wait_for_epoch_points
from streamlit_ui import (RERUN_TIMEOUT_MS, TRAINING_TIMEOUT_MS, assert_no_traceback, go_to, main, set_number,
                          wait_for_script)

TYPED = "../../class 3/conv z2"
SAVED = "class-3-conv-z2"
# Start empties the name box: the next run is named by the settings that differ from the data's defaults.
SECOND = "digits-conv-small-z2-lr0.003-e1"


def form_values(page: Page) -> tuple[str, str, str]:
    area = main(page)
    expect(area.get_by_label("Latent size", exact=True)).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    return (area.get_by_label("Latent size", exact=True).input_value(),
            area.get_by_label("Epochs", exact=True).input_value(),
            area.get_by_label("Learning rate", exact=True).input_value())


def test_coming_back_to_train(start_app, new_page, shot):
    server = start_app(max_jobs=1)
    page = new_page()
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(server.url)
    choose_digits(page)
    configure_conv(page, epochs=300, latent=2, run_name=TYPED, learning_rate=0.003)
    chosen = form_values(page)
    assert chosen == ("2", "300", "0.003")

    live = start_training(page)
    heading = live.get_by_role("heading", name=re.compile(rf"{SAVED}$"))
    expect(heading).to_be_visible()
    expect(page.get_by_test_id("stSidebar")).to_contain_text(f"{SAVED}: running", timeout=RERUN_TIMEOUT_MS)
    wait_for_epoch_points(live, series=2, epochs=1)
    heading.scroll_into_view_if_needed()
    shot(page, "cleaned-name-while-running")
    stop_training(page, live)
    expect(live).to_contain_text(f"Saved as run {SAVED}.")
    assert TYPED not in page.inner_text("body").replace(f"'{TYPED}' is not a valid run name", "")

    set_number(page, "Epochs", 1)  # a second, short job: two finished jobs on the list
    live = start_training(page)
    expect(live).to_contain_text(f"Saved as run {SECOND}.", timeout=TRAINING_TIMEOUT_MS)
    chosen = form_values(page)
    assert chosen == ("2", "1", "0.003")

    # A page switch and back: same settings, the same job with its content.
    go_to(page, "Runs")
    go_to(page, "Train")
    assert form_values(page) == chosen
    expect(keyed(page, "live_training")).to_contain_text(f"Saved as run {SECOND}.", timeout=RERUN_TIMEOUT_MS)
    expect(page).to_have_url(re.compile(r"[?&]job=[0-9a-f]+"))  # back in the URL, for the reload below
    # A reload on Train: a new session, the settings come back from the URL.
    page.reload()
    wait_for_script(page)
    assert form_values(page) == chosen
    shot(page, "train-after-reload")

    # The teacher's case: a reload on another page, then Train: nothing tells this session which job
    # to follow, and the list's selected job (the newest) is drawn under it.
    go_to(page, "Data")
    page.reload()
    wait_for_script(page)
    go_to(page, "Train")
    live = keyed(page, "live_training")
    follow = live.get_by_role("radiogroup")
    expect(follow.get_by_role("radio").first).to_be_checked()
    expect(follow).to_contain_text(f"{SECOND} · job")
    expect(live).to_contain_text(f"Saved as run {SECOND}.", timeout=RERUN_TIMEOUT_MS)
    expect(keyed(live, "live_loss_chart").locator("canvas, svg").first).to_be_visible()
    live.scroll_into_view_if_needed()
    shot(page, "train-after-reload-elsewhere")
    assert_no_traceback(page)
    assert "Session State API" not in server.log_tail(400)
