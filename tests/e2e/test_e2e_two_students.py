"""Two students in two browsers share one server that trains one run at a time: the second
run waits in the queue, then runs; each tab keeps following the run it started."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from lab import (
    choose_digits,
    configure_conv,
    start_training,
    stop_training,
    wait_for_epoch_points,
)
from streamlit_ui import RERUN_TIMEOUT_MS, TRAINING_TIMEOUT_MS, assert_no_traceback, go_to, main, open_app

# Long enough that the first run is still going when the second student presses Start.
FIRST_EPOCHS = 300  # she stops it (25 could end before Bob pressed Start on a fast machine)
# The queued run is short, so it is seen to finish on its own.
SECOND_EPOCHS = 3


def followed_heading(live, run_name: str):
    """The heading the live area shows over the job this tab follows (after its status icon)."""
    return live.get_by_role("heading", name=re.compile(rf"(^|\s){re.escape(run_name)}$"))


def test_two_students(start_app, new_page, shot):
    server = start_app(max_jobs=1)
    alice, bob = new_page(), new_page()
    for page in (alice, bob):
        open_app(page, server.url)
        choose_digits(page)

    configure_conv(alice, epochs=FIRST_EPOCHS, run_name="alice-conv")
    configure_conv(bob, epochs=SECOND_EPOCHS, run_name="bob-conv")

    alice_live = start_training(alice)
    expect(followed_heading(alice_live, "alice-conv")).to_be_visible()
    expect(alice_live.get_by_role("progressbar")).to_be_visible(timeout=RERUN_TIMEOUT_MS * 4)

    # Only one run at a time: Bob's waits, and his tab says so.
    bob_live = start_training(bob)
    expect(followed_heading(bob_live, "bob-conv")).to_be_visible()
    expect(bob_live).to_contain_text("Queued", timeout=RERUN_TIMEOUT_MS)
    expect(bob_live.get_by_role("progressbar")).to_have_count(0)
    shot(bob, "bob-queued")
    # Alice's tab still follows her own run, which trains meanwhile.
    wait_for_epoch_points(alice_live, series=2, epochs=1)
    expect(followed_heading(alice_live, "alice-conv")).to_be_visible()
    expect(alice_live).not_to_contain_text("Queued")
    shot(alice, "alice-running")

    stop_training(alice, alice_live)
    expect(alice_live).to_contain_text("Saved as run alice-conv")

    # Bob's run leaves the queue, trains and finishes on its own.
    expect(bob_live.get_by_role("progressbar")).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    expect(followed_heading(bob_live, "bob-conv")).to_be_visible()
    expect(bob_live).to_contain_text("Saved as run bob-conv", timeout=TRAINING_TIMEOUT_MS)
    expect(bob_live).to_contain_text(re.compile(rf"Finished {SECOND_EPOCHS} epochs", re.I))
    wait_for_epoch_points(bob_live, series=2, epochs=SECOND_EPOCHS)
    shot(bob, "bob-finished")
    # And Alice's tab still shows her (stopped) run, not Bob's.
    expect(followed_heading(alice_live, "alice-conv")).to_be_visible()
    expect(alice_live).to_contain_text("Saved as run alice-conv")
    shot(alice, "alice-stopped")

    for page in (alice, bob):
        go_to(page, "Runs")
        expect(main(page)).to_contain_text("alice-conv")
        expect(main(page)).to_contain_text("bob-conv")
        assert_no_traceback(page)
    shot(alice, "runs")
