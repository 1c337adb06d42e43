"""The served app with AE_LAB_RAY_ADDRESS=local: the sidebar says jobs run on Ray, a run trains
there with the same live view, Stop reaches it, and the run is saved by the server."""
from __future__ import annotations

from playwright.sync_api import expect

from ci_requirements import require_module
from lab import choose_digits, configure_conv, keyed, saved_run_name, start_training, stop_training, \
    wait_for_epoch_points
from streamlit_ui import RERUN_TIMEOUT_MS, assert_no_traceback, open_app

require_module("ray")  # a requirement: skipped locally when missing, a failure under CI


def test_a_run_trains_on_ray_with_the_live_view_and_stop(start_app, new_page, shot, monkeypatch):
    monkeypatch.setenv("AE_LAB_RAY_ADDRESS", "local")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    server = start_app(max_jobs=1)
    page = new_page()
    open_app(page, server.url)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_contain_text("Jobs run on: Ray: 1 node, 0 GPUs", timeout=RERUN_TIMEOUT_MS * 4)

    choose_digits(page)
    configure_conv(page, epochs=500, latent=2, run_name="browser-on-ray")
    live = start_training(page)
    # The first job on Ray starts a worker process (it imports torch): more time than locally.
    expect(live.get_by_role("progressbar")).to_be_visible(timeout=RERUN_TIMEOUT_MS * 8)
    wait_for_epoch_points(live, series=2, epochs=2)
    shot(page, "train-live-on-ray")
    stop_training(page, live)
    name = saved_run_name(live)
    assert (server.checkpoints / name / "info.json").is_file()
    expect(keyed(live, "stop_job")).to_have_count(0)
    assert_no_traceback(page)
    shot(page, "train-stopped-on-ray")
