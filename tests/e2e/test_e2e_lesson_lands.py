"""Issue 8 in a real browser: a reload keeps the dataset and the run, a click on empty latent space
decodes that spot, two runs side by side, projector mode, and nothing fetched from the internet.
The runs are pre-trained with the CLI, as a teacher does before class."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from playwright.sync_api import expect

from lab import keyed, legend_labels, slider, slider_text
from streamlit_ui import APP_LOAD_TIMEOUT_MS, RERUN_TIMEOUT_MS, assert_no_traceback, expect_images_loaded, go_to, \
    main, nudge_slider, wait_for_script

REPO_ROOT = Path(__file__).resolve().parents[2]
SHAPES = "dataset=shapes&shapes=300&size=16"


def pretrain(checkpoints, name: str, *extra: str) -> None:
    subprocess.run([sys.executable, "-m", "core.cli", "train", "--dataset", "digits", "--model", "conv-small",
                    "--latent", "2", "--epochs", "3", "--batch-size", "64", "--device", "cpu",
                    "--out", str(checkpoints), "--name", name, *extra],
                   cwd=REPO_ROOT, check=True, capture_output=True, timeout=300)


def open_url(page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_test_id("stSidebarNav")).to_be_visible(timeout=APP_LOAD_TIMEOUT_MS)
    wait_for_script(page, timeout=APP_LOAD_TIMEOUT_MS)
    assert_no_traceback(page)


def test_reload_latent_click_side_by_side_offline(start_app, new_page, shot, tmp_path):
    checkpoints = tmp_path / "runs"
    pretrain(checkpoints, "z2-a")
    pretrain(checkpoints, "z2-b", "--dropout", "0.2")
    server = start_app(checkpoints=checkpoints)
    page = new_page()
    page.set_viewport_size({"width": 1400, "height": 900})
    # Nothing may come from outside the app's own server (a classroom may be offline).
    outside = []
    page.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith((server.url, "data:", "blob:")) else None)

    # A shared link, the first request to a fresh server (the page files live in views/, so
    # Streamlit never serves them without app.py): dataset (with its options) and run; a reload
    # keeps both.
    open_url(page, f"{server.url}/reconstructions?{SHAPES}&run=z2-b")
    sidebar = page.get_by_test_id("stSidebar")
    expect(main(page).get_by_role("heading", name="Reconstructions", exact=True)).to_be_visible()
    expect(sidebar).to_contain_text("Shapes (generated)")
    expect(sidebar).to_contain_text("Current run: z2-b")
    page.reload()
    expect(page.get_by_test_id("stSidebarNav")).to_be_visible(timeout=APP_LOAD_TIMEOUT_MS)
    wait_for_script(page, timeout=APP_LOAD_TIMEOUT_MS)
    expect(sidebar).to_contain_text("Shapes (generated)")
    expect(sidebar).to_contain_text("Current run: z2-b")
    expect(main(page).get_by_role("combobox", name="Run")).to_have_value("z2-b")
    assert "dataset=shapes" in page.url and "run=z2-b" in page.url
    shot(page, "after-reload")
    # Train trains on what the URL and the sidebar say, not on the default digits.
    go_to(page, "Train")
    expect(main(page)).to_contain_text("input 3×16×16", timeout=RERUN_TIMEOUT_MS)
    expect(main(page)).to_contain_text("Trains on Shapes")
    expect(main(page)).to_contain_text("Suggested for this dataset")
    assert "dataset=shapes" in page.url  # kept across a page switch too

    # Two runs side by side: the same test images, one column per run.
    open_url(page, f"{server.url}/reconstructions?dataset=digits&run=z2-a&with=z2-b")
    both = keyed(page, "recon_side_by_side")
    expect(both).to_contain_text("Reconstructions by z2-a")
    expect(both).to_contain_text("Reconstructions by z2-b")
    expect_images_loaded(both, at_least=4)
    both.scroll_into_view_if_needed()
    shot(page, "side-by-side")

    # A click in empty space of the latent plane decodes that spot, beside the chart.
    open_url(page, f"{server.url}/latent?dataset=digits&run=z2-a")
    # Click just inside the plot's top-left corner, found from the y axis's tick labels (they end at
    # the plot's left edge; the top one is centred on its top edge): the class legend sits above the
    # plot. The grid reaches 8 % beyond the codes, so no test point is there.
    y_labels = keyed(page, "latent_scatter").locator("g.role-axis[aria-label^='Y-axis'] .role-axis-label").first
    expect(y_labels).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    y_labels.scroll_into_view_if_needed()
    box = y_labels.bounding_box()
    picked = keyed(page, "picked_point")
    expect(picked).to_contain_text("click anywhere")
    page.mouse.click(box["x"] + box["width"] + 25, box["y"] + 14)
    wait_for_script(page)
    expect(picked).to_contain_text("Decoded from the clicked spot", timeout=RERUN_TIMEOUT_MS)
    expect_images_loaded(picked, at_least=1)
    shot(page, "latent-click-empty-space")
    # The class legend is drawn below the plot, one entry per digit (the training rings' layer
    # once took it off the chart).
    scatter = keyed(page, "latent_scatter")
    expect(scatter.locator("g.role-legend-symbol path")).to_have_count(10)
    assert legend_labels(scatter) == [str(d) for d in range(10)]
    # The sliders keep their values when the student leaves the page and comes back (Streamlit
    # drops a widget's state on a page that does not draw it: they came back at their minimum).
    nudge_slider(page, slider(main(page), "z[0]"), times=5)
    before = [slider_text(main(page), f"z[{d}]") for d in range(2)]
    go_to(page, "Generate")
    go_to(page, "Classifier")
    go_to(page, "Latent space")
    expect(slider(main(page), "z[1]")).to_have_attribute("aria-valuetext", before[1], timeout=RERUN_TIMEOUT_MS)
    assert [slider_text(main(page), f"z[{d}]") for d in range(2)] == before
    slider(main(page), "z[0]").scroll_into_view_if_needed()
    shot(page, "latent-sliders-after-leaving")
    # Another run forgets the spot.
    box_run = main(page).get_by_role("combobox", name="Run")
    box_run.scroll_into_view_if_needed()  # a select clicked while the page scrolls to it stays closed
    expect(box_run).to_be_in_viewport()
    box_run.click()
    page.get_by_role("option", name="z2-b", exact=True).click()
    wait_for_script(page)
    expect(picked).not_to_contain_text("Decoded from the clicked spot", timeout=RERUN_TIMEOUT_MS)

    # Projector mode from the sidebar: bigger images (8×8 digits drawn at 128 px), kept in the URL.
    open_url(page, f"{server.url}/reconstructions?dataset=digits&run=z2-a")
    first = main(page).locator("[data-testid=stImage] img").first
    expect(first).to_be_visible()
    small = first.evaluate("i => i.naturalHeight")
    sidebar.get_by_text("Projector mode").click()
    wait_for_script(page)
    assert "projector=1" in page.url
    first = main(page).locator("[data-testid=stImage] img").first
    page.wait_for_function("i => i.complete && i.naturalHeight > 0", arg=first.element_handle())
    big = first.evaluate("i => i.naturalHeight")
    assert big > small and big >= 96, (small, big)
    shot(page, "projector")

    assert not outside, f"fetched from outside the app: {outside[:5]}"
    # No Deploy button (client.toolbarMode = viewer).
    expect(page.get_by_role("button", name="Deploy")).to_have_count(0)
