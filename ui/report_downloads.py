"""Download buttons for a report (core.reports): one self-contained HTML file, and Markdown + PNG
in a zip. The report is made when a button is pressed (a callable), never on a page's rerun."""
from __future__ import annotations

from typing import Callable

import streamlit as st

from core.reports import report_bytes

FORMATS = ((".html", "Report (HTML)", "text/html"), (".zip", "Markdown + figures (zip)", "application/zip"))


def report_downloads(make: Callable[[], object], stem: str, key: str, columns=None) -> None:
    """`make()` -> a core.reports Report; `stem` names the files; `columns`: where the two buttons go."""
    for column, (suffix, label, mime) in zip(columns or st.columns(2), FORMATS):
        column.download_button(label, data=lambda suffix=suffix: report_bytes(make(), suffix),
                               file_name=f"{stem}-report{suffix}", mime=mime, key=f"{key}{suffix}",
                               on_click="ignore", icon=":material/download:")
