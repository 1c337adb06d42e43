"""Jobs have owners (issue 9), in two real browsers: Bob opens Alice's running job by its link
(?job=, no owner), sees it but finds Stop disabled with the reason; after a reload Alice still owns
it (her ?owner= survives) and stops it. Then the teacher, with AE_LAB_TEACHER_TOKEN entered in Bob's
sidebar, stops a job that is not Bob's."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect

from lab import choose_digits, configure_conv, keyed, start_training
from streamlit_ui import RERUN_TIMEOUT_MS, assert_no_traceback, main, open_app, wait_for_script

TOKEN = "teacher-secret-for-the-walk"
NOT_YOURS = "Only the student who started this job (or the teacher) can stop it."


def stop_button(live):
    return keyed(live, "stop_job").get_by_role("button", name="Stop")


def test_only_the_owner_or_the_teacher_stops_a_job(start_app, new_page, shot, monkeypatch):
    monkeypatch.setenv("AE_LAB_TEACHER_TOKEN", TOKEN)
    server = start_app(max_jobs=2)
    alice, bob = new_page(), new_page()
    open_app(alice, server.url)
    choose_digits(alice)
    configure_conv(alice, epochs=500, run_name="alice-conv")
    alice_live = start_training(alice)
    expect(stop_button(alice_live)).to_be_enabled()
    job = parse_qs(urlparse(alice.url).query)["job"][0]

    bob.goto(f"{server.url}/")  # the root first: it sets up the app's navigation
    open_app(bob, server.url)
    bob.goto(f"{server.url}/train?job={job}")  # the link Alice shared, without her owner id
    wait_for_script(bob)
    bob_live = keyed(bob, "live_training")
    expect(bob_live).to_contain_text("alice-conv")
    expect(stop_button(bob_live)).to_be_disabled()
    expect(bob_live).to_contain_text(NOT_YOURS)
    assert parse_qs(urlparse(bob.url).query)["owner"][0] != parse_qs(urlparse(alice.url).query)["owner"][0]
    shot(bob, "bob-sees-alices-job-without-stop")

    alice.reload()  # a new session; the URL keeps her owner id
    wait_for_script(alice)
    alice_live = keyed(alice, "live_training")
    stop_button(alice_live).click()
    expect(alice_live).to_contain_text(re.compile("stopped", re.I), timeout=RERUN_TIMEOUT_MS * 2)

    # A second job of Alice's; the teacher stops it from Bob's browser.
    start_training(alice)
    job = parse_qs(urlparse(alice.url).query)["job"][0]
    bob.goto(f"{server.url}/train?job={job}")
    wait_for_script(bob)
    bob_live = keyed(bob, "live_training")
    expect(stop_button(bob_live)).to_be_disabled()
    token = bob.get_by_test_id("stSidebar").get_by_label("Teacher token", exact=True)
    token.fill("wrong guess")
    token.press("Enter")
    wait_for_script(bob)
    expect(bob.get_by_test_id("stSidebar")).to_contain_text("That is not the teacher token")
    token = bob.get_by_test_id("stSidebar").get_by_label("Teacher token", exact=True)
    token.fill(TOKEN)
    token.press("Enter")
    wait_for_script(bob)
    expect(bob.get_by_test_id("stSidebar")).to_contain_text("Teacher: you can stop any job.")
    bob_live = keyed(bob, "live_training")
    expect(stop_button(bob_live)).to_be_enabled(timeout=RERUN_TIMEOUT_MS)
    stop_button(bob_live).click()
    expect(bob_live).to_contain_text(re.compile("stopped", re.I), timeout=RERUN_TIMEOUT_MS * 2)
    shot(bob, "teacher-stopped-alices-second-job")
    assert TOKEN not in bob.url and TOKEN not in main(bob).inner_text()
    assert_no_traceback(bob)
