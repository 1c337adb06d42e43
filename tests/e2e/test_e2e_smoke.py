"""The app opens in a real browser with every page of the lesson in its sidebar."""
from __future__ import annotations

from playwright.sync_api import expect

from streamlit_ui import assert_no_traceback, expect_images_loaded, go_to, main, open_app

PAGE_TITLES = ["Lessons", "Data", "Train", "Runs", "Reconstructions", "Noise", "Latent space", "Generate", "Classifier"]


def test_app_opens_with_every_page_listed(start_app, new_page, shot):
    server = start_app()
    page = new_page()
    open_app(page, server.url)

    nav = page.get_by_test_id("stSidebarNav")
    for title in PAGE_TITLES:
        expect(nav.get_by_role("link", name=title, exact=True)).to_be_visible()
    # The first page is Lessons, and it shows its own title rather than an error.
    expect(main(page).get_by_role("heading", name="Lessons", exact=True)).to_be_visible()
    go_to(page, "Data")
    expect(main(page).get_by_role("heading", name="Data", exact=True)).to_be_visible()
    # ... with the built-in digits chosen and previewed, before anything else was done.
    expect(main(page).get_by_role("combobox", name="Dataset")).to_have_value("Digits (8×8, built in)")
    expect_images_loaded(main(page), at_least=10)
    assert_no_traceback(page)
    shot(page, "data")
