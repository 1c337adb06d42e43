"""Failures a student can cause from the browser read as one plain sentence, and the app keeps
working afterwards."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from lab import (
    POINT_MARKS,
    choose_digits,
    configure_conv,
    expect_sidebar_idle,
    keyed,
    saved_run_name,
    start_training,
)
from streamlit_ui import (
    RERUN_TIMEOUT_MS,
    TRAINING_TIMEOUT_MS,
    assert_no_traceback,
    choose,
    go_to,
    main,
    open_app,
    set_text,
)


def assert_one_plain_sentence(text: str, *, ignoring: str = "") -> None:
    """One line, one sentence ending in a full stop, no Python internals."""
    text = text.strip()
    assert "\n" not in text, f"more than one line: {text!r}"
    assert text.endswith("."), f"not a sentence: {text!r}"
    # A sentence ends at a full stop before a capital letter or at the end; the dots of a path,
    # a number ("0.001") or "e.g. 0.001" do not end one.
    prose = text.replace(ignoring, "PATH") if ignoring else text
    assert len(re.findall(r"[.!?](\s+[A-Z]|$)", prose)) == 1, f"more than one sentence: {text!r}"
    for internal in ("Traceback", "Error:", "Exception", "File \""):
        assert internal not in text, f"{internal!r} in the message: {text!r}"


def alert_message(alert) -> str:
    """The alert's own text, without its icon (a Material icon renders as its name)."""
    return alert.get_by_test_id("stMarkdownContainer").inner_text()


def test_failures_are_plain(start_app, new_page, tmp_path, shot):
    server = start_app(max_jobs=1)
    page = new_page()
    open_app(page, server.url)

    # An image folder that does not exist (named inside the server's data folders, as students do).
    missing = "data/no-such-folder"
    go_to(page, "Data")
    choose(page, "Dataset", "Image folder")
    set_text(page, "Image folder", missing)
    error = main(page).get_by_test_id("stAlertContentError")
    expect(error).to_have_count(1, timeout=RERUN_TIMEOUT_MS)
    expect(error).to_contain_text("does not exist")
    assert_one_plain_sentence(alert_message(error), ignoring=missing)
    assert_no_traceback(page)
    shot(page, "data-missing-folder")

    # The app keeps working: the digits load and preview as before.
    choose_digits(page)
    expect(main(page).get_by_test_id("stAlertContentError")).to_have_count(0)
    shot(page, "data-digits-again")

    # A learning rate that makes the loss diverge. Without the sigmoid on the output nothing
    # bounds the reconstructions, so plain SGD at this rate reaches NaN within a few batches.
    configure_conv(page, epochs=5, run_name="too-fast", optimiser="SGD", learning_rate=1000,
                   output_activation="none")
    live = start_training(page)
    diverged = live.get_by_test_id("stAlertContentError")
    expect(diverged).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    expect(diverged).to_contain_text(re.compile(r"NaN|infinite"))
    expect(diverged).to_contain_text("lower learning rate")
    assert_one_plain_sentence(alert_message(diverged))
    assert_no_traceback(page)
    shot(page, "train-diverged")

    # ... and a sensible learning rate trains normally afterwards.
    configure_conv(page, epochs=2, run_name="after-the-nan", optimiser="Adam", learning_rate=0.001,
                   output_activation="sigmoid")
    live = start_training(page)
    expect(live).to_contain_text("Saved as run after-the-nan", timeout=TRAINING_TIMEOUT_MS)
    expect(live.get_by_test_id("stAlertContentSuccess")).to_contain_text("Finished 2 epochs")
    assert saved_run_name(live) == "after-the-nan"
    expect(keyed(live, "live_loss_chart").locator(POINT_MARKS)).to_have_count(4)
    expect_sidebar_idle(page, "after-the-nan")
    assert_no_traceback(page)
    shot(page, "train-after-divergence")
