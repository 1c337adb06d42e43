"""Nothing a link can inject, no traceback a student can see (issue 17), in Chromium: a link and a
tracking image in ?folder=, a run name that Markdown makes bold around a link, class folders named
as Markdown links, and link values no widget offers. Each page that shows the folder or the run
(the sidebar does, on every page) must draw them as text: no <a> to example.com, no <img> from
127.0.0.1:9, no request to it; and a bad value is one sentence, never a traceback."""
from __future__ import annotations

from urllib.parse import urlencode

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from streamlit_ui import APP_LOAD_TIMEOUT_MS, assert_no_traceback, main, wait_for_script

HOSTILE = "![x](http://127.0.0.1:9/track.png) [Login here](https://example.com/login)"
HOSTILE_RUN = "__www.example.com__"  # a valid run name: Markdown makes it bold around a link
HOSTILE_CLASSES = ("[Login here](https:example.com)", "![x](http:127.0.0.1:9)")  # no "/" in a folder name
PATHS = ["", "data", "train", "runs", "experiments", "reconstructions", "noise", "latent", "generate", "classifier"]


@pytest.fixture
def served(start_app, tmp_path, monkeypatch):
    data = tmp_path / "served" / "data"
    rng = np.random.default_rng(0)
    for name in HOSTILE_CLASSES:
        (data / "hostile" / name).mkdir(parents=True)
        for i in range(4):
            picture = Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
            picture.save(data / "hostile" / name / f"{i}.png")
    monkeypatch.setenv("AE_LAB_DATA_DIR", str(data))
    monkeypatch.delenv("AE_LAB_DATA_DIRS", raising=False)
    return start_app()


def open_link(page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_test_id("stSidebarNav")).to_be_visible(timeout=APP_LOAD_TIMEOUT_MS)
    wait_for_script(page, timeout=APP_LOAD_TIMEOUT_MS)


def assert_drawn_as_text(page, server, requests: list[str]) -> None:
    """No link to example.com, no picture and no request from anywhere but the app itself."""
    expect(page.locator("a[href*='example.com']")).to_have_count(0)
    pictures = page.eval_on_selector_all("img", "images => images.map(image => image.src)")
    assert not [src for src in pictures if not src.startswith((server.url, "data:"))], pictures
    assert not [url for url in requests if not url.startswith((server.url, "data:"))], requests
    assert_no_traceback(page)


def test_names_from_a_link_are_text_on_every_page(served, new_page, shot):
    page = new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    query = urlencode({"dataset": "folder", "root": "data", "folder": HOSTILE, "run": HOSTILE_RUN})
    for path in PATHS:
        open_link(page, f"{served.url}/{path}?{query}")
        sidebar = page.get_by_test_id("stSidebar")
        # The names, as they are (a word joiner, invisible, sits after "https:" and "www"). The
        # Lessons page ("") names its lesson's own dataset there, not the link's folder.
        if path:
            expect(sidebar).to_contain_text("![x](http:")
            expect(sidebar).to_contain_text("[Login here](https:")
        expect(sidebar).to_contain_text(".example.com__")
        assert_drawn_as_text(page, served, requests)
        if path in ("", "train"):
            shot(page, f"hostile-link-{path or 'home'}")
    # The Data page also names the folder in its error and caption: as text there too.
    open_link(page, f"{served.url}/data?{query}")
    expect(main(page).get_by_test_id("stAlertContentError")).to_contain_text("[Login here](https:")
    assert_drawn_as_text(page, served, requests)


def test_class_names_are_text(served, new_page, shot):
    page = new_page()
    open_link(page, f"{served.url}/data?dataset=folder&root=data&folder=hostile&size=12")
    for name in HOSTILE_CLASSES:
        expect(main(page).get_by_test_id("stImageCaption").filter(has_text=name)).to_have_count(1)
    assert_drawn_as_text(page, served, [])
    shot(page, "hostile-classes")


@pytest.mark.parametrize("path, query, said", [
    ("data", "dataset=digits&limit=-5&data_seed=-1&val=7", None),
    ("", "dataset=doesnotexist", "link's dataset could not be used"),
    ("data", "dataset=folder&root=data&folder=a%00b&channels=7", "link's channels, folder could not be used"),
])
def test_a_bad_link_value_is_clamped_or_one_sentence(served, new_page, shot, path, query, said):
    page = new_page()
    open_link(page, f"{served.url}/{path}?{query}")
    expect(page.get_by_text("Page not found")).to_have_count(0)
    assert_no_traceback(page)
    warnings = main(page).get_by_test_id("stAlertContentWarning")
    if said:
        expect(warnings.filter(has_text=said)).to_have_count(1)
    else:
        expect(warnings).to_have_count(0)
        expect(main(page)).to_contain_text("Images")  # the clamped dataset loaded
    shot(page, f"bad-link-{path or 'home'}")
