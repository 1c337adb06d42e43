"""Until app.py first runs in a server process, Streamlit serves the files in pages/ on their own
(its pages-folder mode): a link to /reconstructions?run=... opened first after a restart would run
that page without the app's navigation, sidebar or URL state. `through_app()`, the first call of
every page, sends such a request through app.py with its URL parameters and the page it asked for;
app.py then switches to that page (`resume_requested_page`)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGE_PARAM = "open_page"
_app_ran = False  # process-wide: once app.py called st.navigation, Streamlit stays in its mode


def app_running() -> None:
    """app.py: called on every run, after st.navigation."""
    global _app_ran
    _app_ran = True


def through_app(page_file: str) -> None:
    """Each page's first call (with its __file__)."""
    if not _app_ran:
        st.switch_page("app.py", query_params={**st.query_params.to_dict(), PAGE_PARAM: Path(page_file).stem})


def resume_requested_page(pages_by_file: dict) -> None:
    """app.py, after st.navigation: go on to the page a pages-folder request asked for
    (pages_by_file: file name without .py -> its st.Page)."""
    wanted = st.query_params.get(PAGE_PARAM)
    if wanted is None:
        return
    del st.query_params[PAGE_PARAM]
    if wanted in pages_by_file:
        st.switch_page(pages_by_file[wanted], query_params=st.query_params.to_dict())
