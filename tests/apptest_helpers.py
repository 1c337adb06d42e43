"""What every page test does with AppTest: open one page of the real app (through app.py, so
st.navigation and page links resolve) with some session state set, check that nothing went wrong
that the test did not ask for, and read the data behind its Altair charts.

The pages turn errors into an error box (st.error) rather than an exception, so a page that broke
still "runs": every AppTest made here fails the test, after EVERY run (at.run(), a widget's
.click().run()), on an exception or on any error box whose text contains none of the fragments
the test expects (`errors=` when opening, `expect_errors(at, ...)` before a later run).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import pandas as pd
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_app_page(page: str | None = None, state: dict | None = None, *, errors: Iterable[str] = (),
                  query: dict | None = None, timeout: float = 300) -> AppTest:
    """Run app.py on `page` (e.g. "views/noise.py"; None: the page the app opens on) with `state`
    put into session_state and `query` into the URL first. Fails on an exception or an error box
    that contains none of `errors`, on this run and every later one."""
    at = checked(AppTest.from_file(APP, default_timeout=timeout), errors)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    if query:
        at.query_params.update(query)
    if page is not None:
        at.switch_page(page)
    at.run()
    return at


def checked(at: AppTest, errors: Iterable[str] = ()) -> AppTest:
    """`at`, made to fail the test after every run that shows an exception or an error box the
    test did not ask for (see expect_errors). For an AppTest made another way (from_function)."""
    expect_errors(at, *errors)
    run = at._run  # every run goes through it: AppTest.run() and each widget's .run()

    def run_and_check(*args, **kwargs):
        result = run(*args, **kwargs)
        assert_no_unexpected_errors(at)
        return result

    at._run = run_and_check
    return at


def expect_errors(at: AppTest, *fragments: str) -> AppTest:
    """From now on, error boxes whose text contains one of `fragments` are expected (the test
    checks them itself); this replaces the fragments expected before. Returns at, to chain."""
    at._expected_errors = tuple(fragments)
    return at


def assert_no_unexpected_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    expected = getattr(at, "_expected_errors", ())
    unexpected = [e.value for e in at.error if not any(fragment in e.value for fragment in expected)]
    assert not unexpected, f"error boxes the test did not ask for: {unexpected}"


def charts(where: AppTest | Block) -> list[tuple[object, pd.DataFrame]]:
    """(title, data) of every dataset of every Altair chart in `where`: the whole page (sidebar
    included) or one block of it, such as at.main or at.main.get_by_key("some_container")."""
    return [(json.loads(chart.proto.spec).get("title"), convert_arrow_bytes_to_pandas_df(dataset.data.data))
            for chart in where.get("vega_lite_chart") for dataset in chart.proto.datasets]


def chart_frames(where: AppTest | Block) -> list[pd.DataFrame]:
    """The data behind every Altair chart in `where` (see charts)."""
    return [frame for _title, frame in charts(where)]
