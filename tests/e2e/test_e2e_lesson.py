"""The lesson, walked in a real browser: data, a small conv AE trained live, then every page
that inspects the trained run. Everything is read from the page, never from core."""
from __future__ import annotations

from playwright.sync_api import expect

from lab import (
    choose_digits,
    configure_conv,
    expect_sidebar_idle,
    keyed,
    live_epoch,
    progress_percent,
    saved_run_name,
    slider,
    start_training,
    stop_training,
    wait_for_epoch_points,
    wait_for_new_source,
)
from streamlit_ui import (
    RERUN_TIMEOUT_MS,
    TRAINING_TIMEOUT_MS,
    assert_no_traceback,
    expect_images_loaded,
    go_to,
    main,
    nudge_slider,
    open_app,
    set_number,
    wait_for_script,
)

# Enough epochs that the live state is seen long before the run could end on its own.
EPOCHS = 30
# A few epochs at a brisk learning rate, so the inspect pages show digits, not grey blurs.
LEARNING_RATE = 0.01
EPOCHS_BEFORE_STOP = 3
CLASSIFIER_EPOCHS = 5
DIGIT_NAMES = {str(d) for d in range(10)}


def test_lesson_walk(start_app, new_page, shot):
    server = start_app(max_jobs=1)
    page = new_page()
    open_app(page, server.url)

    # Data: the built-in digits with their preview.
    choose_digits(page)
    shot(page, "data-digits")

    # Train: a small conv AE with a 2-D code, started and watched live.
    configure_conv(page, epochs=EPOCHS, latent=2, learning_rate=LEARNING_RATE)
    shot(page, "train-settings")
    live = start_training(page)
    expect(live.get_by_role("progressbar")).to_be_visible(timeout=RERUN_TIMEOUT_MS * 4)
    first_epoch, total = live_epoch(live)
    first_percent = progress_percent(live)
    assert total == EPOCHS
    # Train and validation loss: two lines, at least two epochs of points on each.
    wait_for_epoch_points(live, series=2, epochs=2)
    page.wait_for_function(
        "([el, before]) => Number(el.getAttribute('aria-valuenow')) > before",
        arg=[live.get_by_role("progressbar").first.element_handle(), first_percent],
        timeout=RERUN_TIMEOUT_MS)
    epoch, _ = live_epoch(live)
    assert epoch >= 2 and epoch >= first_epoch
    expect(keyed(live, "live_batch_chart").locator("g.mark-line.role-mark path").first).to_be_attached()
    # The browser puts each poll's new batches into the chart already drawn (so a zoom or a legend
    # pick on it survives the polls) rather than drawing a new one.
    batch_chart = keyed(live, "live_batch_chart").locator("svg.marks").first
    batch_chart.evaluate("el => { el.dataset.drawnAt = 'first'; }")
    batch_line = ".st-key-live_batch_chart g.mark-line.role-mark path"
    before = page.locator(batch_line).first.get_attribute("d")
    page.wait_for_function("([sel, d]) => { const p = document.querySelector(sel); return p && p.getAttribute('d') !== d; }",
                           arg=[batch_line, before], timeout=RERUN_TIMEOUT_MS)
    expect(keyed(live, "live_batch_chart").locator("svg.marks[data-drawn-at='first']")).to_have_count(1)
    expect_images_loaded(keyed(live, "live_recon"), at_least=2)
    shot(page, "train-live")

    wait_for_epoch_points(live, series=2, epochs=EPOCHS_BEFORE_STOP)
    stop_training(page, live)
    run_name = saved_run_name(live)
    expect_sidebar_idle(page, run_name)
    assert_no_traceback(page)
    shot(page, "train-stopped")

    # Runs: the stopped run is saved and listed.
    go_to(page, "Runs")
    expect(main(page)).to_contain_text(run_name, timeout=RERUN_TIMEOUT_MS)
    assert_no_traceback(page)
    shot(page, "runs")

    # Reconstructions: originals, reconstructions and error maps, all decoded by the browser.
    go_to(page, "Reconstructions")
    expect(main(page)).to_contain_text("Test MSE")
    expect_images_loaded(main(page), at_least=3)
    assert_no_traceback(page)
    shot(page, "reconstructions")

    # Latent space: click a point of the scatter, see its image and its decoding.
    go_to(page, "Latent space")
    scatter = keyed(page, "latent_scatter")
    # The test points are the chart's last layer (under them: the click-anywhere grid and, for a
    # small test set, the training images).
    points = scatter.locator("g.mark-symbol.role-mark").last.locator("path")
    expect(points.nth(9)).to_be_attached(timeout=RERUN_TIMEOUT_MS)
    picked = keyed(page, "picked_point")
    expect(picked.get_by_test_id("stImage")).to_have_count(0)
    points.nth(7).click(force=True)
    wait_for_script(page)
    expect_images_loaded(picked, at_least=2)
    expect(picked).to_contain_text("Test image #")
    shot(page, "latent-picked")

    # A latent slider decodes live: the decoded image changes.
    decoded = keyed(page, "latent_decoded").locator("[data-testid=stImage] img")
    expect_images_loaded(keyed(page, "latent_decoded"))
    before = decoded.first.get_attribute("src")
    nudge_slider(page, slider(main(page), "z[0]"), times=15)
    wait_for_new_source(page, decoded, before)
    assert_no_traceback(page)
    shot(page, "latent-slider-moved")

    # Noise: the noise slider changes the noisy inputs and their reconstructions.
    go_to(page, "Noise")
    noise_images = keyed(page, "noise_images").locator("[data-testid=stImage] img")
    expect_images_loaded(keyed(page, "noise_images"), at_least=2)
    before = noise_images.first.get_attribute("src")
    nudge_slider(page, slider(keyed(page, "noise_slider"), "Noise factor"), times=4)
    wait_for_new_source(page, noise_images, before)
    assert_no_traceback(page)
    shot(page, "noise-moved")

    # Generate: samples from a Gaussian fitted to the codes.
    go_to(page, "Generate")
    expect_images_loaded(main(page), at_least=1)
    assert_no_traceback(page)
    shot(page, "generate")

    # Classifier: a linear head on the frozen encoder, trained in the background; its accuracy
    # and a confusion matrix with the digits on both axes.
    go_to(page, "Classifier")
    set_number(page, "Epochs", CLASSIFIER_EPOCHS)
    page.get_by_role("button", name="Train classifier").click()
    expect(main(page).get_by_test_id("stMetric").filter(has_text="Test accuracy")).to_be_visible(
        timeout=TRAINING_TIMEOUT_MS)
    confusion = main(page).get_by_test_id("stVegaLiteChart").filter(has_text="Predicted class")
    expect(confusion.locator("g.mark-rect.role-mark path").first).to_be_attached()
    axis_labels = confusion.locator("g.role-axis-label text").all_text_contents()
    assert set(axis_labels) == DIGIT_NAMES, axis_labels
    assert len(axis_labels) == 2 * len(DIGIT_NAMES)  # predicted (top) and true (left)
    assert_no_traceback(page)
    shot(page, "classifier")
