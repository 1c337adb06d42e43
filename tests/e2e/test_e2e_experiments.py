"""An experiment from the browser: the latent-sizes preset on the built-in digits with the page's own
defaults (epochs and batch size fitted to the data, every image), started from the Experiments page,
watched live, its loss-against-latent chart drawn with one point per latent size, and its best run
reconstructing the digits (not the flat grey of a model that learned nothing). Read from the page only."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from lab import POINT_MARKS, keyed
from streamlit_ui import (
    RERUN_TIMEOUT_MS,
    TRAINING_TIMEOUT_MS,
    assert_no_traceback,
    choose,
    expect_images_loaded,
    go_to,
    main,
    open_app,
    wait_for_script,
)

LATENT_SIZES = 5
# A model that learned nothing draws every test digit as the same flat grey: test MSE ~0.14 (the
# walk measured 0.144 after 1 epoch on 300 images); 5 epochs on the digits reach ~0.025.
LEARNED_MSE = 0.08


def test_latent_sizes_preset_from_the_page(start_app, new_page, shot):
    server = start_app(max_jobs=2)
    page = new_page()
    page.set_viewport_size({"width": 1400, "height": 900})  # the classroom laptop: the live view is below the fold
    open_app(page, server.url)
    go_to(page, "Experiments")

    choose(page, "Preset", "Latent sizes")
    expect(main(page)).to_contain_text("bottleneck")  # the question it answers
    expect(main(page)).to_contain_text(f"{LATENT_SIZES} runs")
    # The time estimate, measured in the background once per setting: it follows the page.
    expect(keyed(page, "exp_estimate")).to_contain_text("images/s", timeout=TRAINING_TIMEOUT_MS)
    shot(page, "experiments-preset")

    page.get_by_role("button", name="Start experiment").click()
    wait_for_script(page)
    live = keyed(page, "exp_live")
    expect(live).to_be_visible()
    expect(live).to_be_in_viewport(timeout=RERUN_TIMEOUT_MS)  # Start scrolls to the live view
    expect(live).to_contain_text("latent 32")  # every variant is in the live table at once
    shot(page, "experiments-live")

    expect(live).to_contain_text(re.compile(r"latent-sizes: finished"), timeout=TRAINING_TIMEOUT_MS)
    expect(live).to_contain_text(f"{LATENT_SIZES} runs saved")
    assert "experiment=latent-sizes" in page.url  # the experiment shown is kept in the URL

    # The view that answers the question: test MSE against latent size, one point per run.
    factor_charts = keyed(page, "exp_factor_charts")
    expect(factor_charts).to_contain_text("Test MSE against latent", timeout=RERUN_TIMEOUT_MS)
    expect(factor_charts.locator(POINT_MARKS).nth(LATENT_SIZES - 1)).to_be_attached(timeout=RERUN_TIMEOUT_MS)
    expect(keyed(page, "exp_small_multiples")).to_contain_text("latent 16")
    expect_images_loaded(keyed(page, "exp_reconstructions"), at_least=LATENT_SIZES + 1)
    best = re.search(r"Best run by test MSE: latent \d+ \(test MSE (\d+\.\d+)\)", main(page).inner_text(), re.I)
    assert best and float(best.group(1)) < LEARNED_MSE, best and best.group(0)
    assert_no_traceback(page)
    keyed(page, "exp_factor_charts").scroll_into_view_if_needed()
    shot(page, "experiments-results")
