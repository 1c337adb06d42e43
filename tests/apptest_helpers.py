"""What every page test does with AppTest: open one page of the real app (through app.py, so
st.navigation and page links resolve) with some session state set, and read the data behind its
Altair charts."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_app_page(page: str | None = None, state: dict | None = None) -> AppTest:
    """Run app.py on `page` (e.g. "views/noise.py"; None: the page the app opens on) with `state`
    put into session_state first. A page that raised fails the test with the exception shown."""
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    if page is not None:
        at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(where: AppTest | Block) -> list[tuple[object, pd.DataFrame]]:
    """(title, data) of every dataset of every Altair chart in `where`: the whole page (sidebar
    included) or one block of it, such as at.main or at.main.get_by_key("some_container")."""
    return [(json.loads(chart.proto.spec).get("title"), convert_arrow_bytes_to_pandas_df(dataset.data.data))
            for chart in where.get("vega_lite_chart") for dataset in chart.proto.datasets]


def chart_frames(where: AppTest | Block) -> list[pd.DataFrame]:
    """The data behind every Altair chart in `where` (see charts)."""
    return [frame for _title, frame in charts(where)]
