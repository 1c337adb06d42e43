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
import re
from collections.abc import Sequence
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


# ---------------------------------------------------------------- what a page renders as Markdown

# A link and a tracking image a student can put into a URL, a folder, class or run name (issue 17).
HOSTILE_TEXT = "![x](http://127.0.0.1:9/track.png) [Login here](https://example.com/login)"
# Element types whose strings Streamlit shows as they are, and fields of the others shown as they are
# (a text box's value, a select box's options); every other string of a page is Markdown.
PLAIN_TYPES = {"text", "code", "arrow_data_frame", "dataframe", "json", "table", "arrow_vega_lite_chart",
               "vega_lite_chart"}  # Vega draws chart text as SVG text
PLAIN_WIDGETS = {"text_input", "text_area", "selectbox", "multiselect", "number_input", "select_slider"}
MARKDOWN_WIDGET_FIELDS = {"label", "help"}
_MARKUP_TOKENS = {"link_open", "image", "html_inline", "html_block", "em_open", "strong_open", "s_open",
                  "code_inline", "heading_open", "bullet_list_open", "ordered_list_open", "blockquote_open",
                  "fence", "code_block", "table_open", "hr"}
# GitHub's bare links (remark-gfm makes them links in text it has already unescaped), LaTeX,
# Streamlit's :shortcodes: as the parser leaves them in text.
_BARE_LINK = re.compile(r"(?i)(https?://|www\.)|[-.\w+]+@[-\w]+\.")


def markup_in(markdown: str) -> list[str]:
    """What of `markdown` a CommonMark parser (markdown-it-py, with GitHub's tables and
    strikethrough) reads as anything but plain text: tokens such as link_open or image, and bare
    links left in its text. [] when it is text only."""
    from markdown_it import MarkdownIt

    found = []
    for block in MarkdownIt("commonmark").enable(["strikethrough", "table"]).parse(markdown):
        if block.type in _MARKUP_TOKENS:
            found.append(block.type)
        for token in block.children or []:
            if token.type in _MARKUP_TOKENS:
                found.append(token.type)
            elif token.type == "text" and _BARE_LINK.search(token.content):
                found.append(f"bare link in {token.content!r}")
    return found


def shown_text(markdown: str) -> str:
    """The text a CommonMark parser shows of `markdown` (markup dropped, escapes and entities
    resolved, word joiners removed): what a student reads."""
    from markdown_it import MarkdownIt

    parts = []
    for block in MarkdownIt("commonmark").enable(["strikethrough", "table"]).parse(markdown):
        parts += [token.content for token in block.children or [] if token.type in ("text", "code_inline")]
    return "".join(parts).replace("\u2060", "")


def _strings(message, path: str = ""):
    from google.protobuf.message import Message

    for field, value in message.ListFields():
        items = value if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) else [value]
        for item in items:
            if isinstance(item, Message):
                yield from _strings(item, f"{path}.{field.name}")
            elif isinstance(item, str):
                yield f"{path}.{field.name}", item


def markdown_strings(at: AppTest) -> list[tuple[str, str]]:
    """(where, text) of every string the page (sidebar included) hands to Streamlit's Markdown:
    bodies, captions, labels, help, radio options...; not text boxes' values, select boxes'
    options, st.text or tables, which Streamlit shows as they are."""
    found = []
    for node in at._tree:
        proto = getattr(node, "proto", None)
        if proto is None or node.type in PLAIN_TYPES:
            continue
        for path, text in _strings(proto):
            if node.type in PLAIN_WIDGETS and path.split(".")[1] not in MARKDOWN_WIDGET_FIELDS:
                continue
            found.append((f"{node.type}{path}", text))
    return found


def assert_shown_as_text(at: AppTest, name: str) -> int:
    """Every Markdown string of the page that holds `name` shows it as its very text (no emphasis,
    code or entity made of it) and makes no link, image or HTML at all; returns how many there
    were (a test asserts the name was shown at all)."""
    from ui.text import plain_text

    def loose(text: str) -> str:
        return text.replace("\\", "").replace("\u2060", "")

    shown = [(where, text) for where, text in markdown_strings(at) if loose(name) in loose(text)]
    for where, text in shown:
        foreign = [m for m in markup_in(text) if m not in ("strong_open", "em_open")]  # the page's own bold
        assert not foreign, f"{where} renders {foreign}: {text!r}"
        assert plain_text(name) in shown_text(text), f"{where} does not show {name!r} as it is: {text!r}"
    return len(shown)
