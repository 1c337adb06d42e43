"""What every page test does with AppTest: open one page of the real app (through app.py, so
st.navigation and page links resolve) with some session state set, and read the data behind its
Altair charts."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_app_page(page: str, state: dict | None = None, check: bool = True) -> AppTest:
    """Run app.py on `page` (e.g. "pages/noise.py") with `state` put into session_state first.
    With check, a page that raised fails the test with the exception shown."""
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.switch_page(page)
    at.run()
    if check:
        assert not at.exception, [e.value for e in at.exception]
    return at


def chart_frames(at: AppTest) -> list[pd.DataFrame]:
    """The data behind every Altair chart on the page, sidebar included."""
    def walk(node):
        yield node
        for child in getattr(node, "children", {}).values():
            yield from walk(child)
    return [convert_arrow_bytes_to_pandas_df(dataset.data.data)
            for node in walk(at._tree[0]) if getattr(node, "type", None) == "vega_lite_chart"
            for dataset in node.proto.datasets]


@pytest.fixture
def navigation_as_served(monkeypatch):
    """AppTest re-detects the pages/ folder before every run and then wraps app.py the way
    Streamlit runs apps without st.navigation, which loses the sidebar. A real server decides once,
    when app.py first calls st.navigation; do the same here."""
    import streamlit.testing.v1.app_test as app_test
    from streamlit.runtime.pages_manager import PagesManager

    class ServedPagesManager(PagesManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            PagesManager.uses_pages_directory = False

    monkeypatch.setattr(app_test, "PagesManager", ServedPagesManager)
    monkeypatch.setattr(PagesManager, "uses_pages_directory", None)
