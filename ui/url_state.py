"""State that survives a reload and travels in a copied link: the chosen dataset (with its folder
and size options), the current run, projector mode and each Inspect page's main choices live in
the URL (st.query_params).

Session state stays the truth while a session lives (Streamlit clears the query string when the
user switches pages): `restore_from_url` fills session state from the URL once, when a session
starts (a reload, a shared link); `write_to_url`, at the end of every run, writes it back.
A page keeps a widget's value in the URL with `url_widget`, called before the widget is drawn,
and state of its own (not one widget's) with `url_values`.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

import streamlit as st

from core.checkpoints import CheckpointError, check_name
from core.config import DataConfig
from core.data import DATASETS
from core.serving.limits import WorkLimits
from core.serving.roots import check_folder_text
from ui.projector import PROJECTOR_KEY, PROJECTOR_PARAM
from ui.state import DATA_CONFIG_KEY, SELECTED_RUN_KEY

logger = logging.getLogger(__name__)

RUN_PARAM = "run"
RESTORED_KEY = "url_restored"  # set once the session took its state from the URL
BOUND_KEY = "url_bound_widgets"  # param -> (widget key, to text) the page bound on this run
PAGE_VALUES_KEY = "url_page_values"  # param -> text the page gave url_values on this run
# DataConfig field -> URL parameter (short, readable names: ?dataset=folder&folder=...&size=64).
# An image folder travels as its data root's name and the path inside it (?root=data&folder=uploads/x),
# never a server path; the app's dataset store checks both again (core.serving.roots).
DATA_PARAMS = {"dataset": "dataset", "folder_root": "root", "folder": "folder", "data_root": "data_root",
               "image_size": "size",
               "channels": "channels", "download": "download", "val_fraction": "val", "test_fraction": "test",
               "limit": "limit", "shapes_count": "shapes", "balanced": "balanced", "seed": "data_seed"}
# Parameters other pages own (e.g. Train's ?job=) are left alone.
_GLOBAL_PARAMS = {*DATA_PARAMS.values(), RUN_PARAM, PROJECTOR_PARAM}
_page_params: set[str] = set()  # every parameter a page ever bound (so leaving it drops them)


def _parse(text: str, like: Any) -> Any:
    """`text` as the type of `like` (ValueError when it is not one)."""
    if isinstance(like, bool):
        if text not in ("0", "1", "true", "false"):
            raise ValueError(text)
        return text in ("1", "true")
    return type(like)(text)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


URL_REFUSED_KEY = "url_refused"  # the parameters of the link this session opened that were not used


def data_ranges(limits: WorkLimits | None = None) -> dict[str, tuple[float, float]]:
    """DataConfig field -> (lowest, highest) the Data page's widgets offer (and a link may ask for):
    image sizes and shape counts within this server's limits."""
    limits = limits or WorkLimits.from_env()
    return {"image_size": (8, min(512, limits.max_image_size)), "shapes_count": (100, max(100, limits.max_images)),
            "val_fraction": (0.0, 0.5), "test_fraction": (0.0, 0.5), "limit": (0, 10_000_000),
            "seed": (0, 2**31 - 1)}


def clamped_data_config(cfg: DataConfig, limits: WorkLimits | None = None) -> DataConfig:
    """cfg with every number inside what the Data page's widgets offer (data_ranges), and a dataset
    and channels it offers: what a widget may be given (a run trained by the CLI on 256-px images,
    or a link, may ask for more)."""
    cfg = replace(cfg)
    for field, (low, high) in data_ranges(limits).items():
        value = getattr(cfg, field)
        setattr(cfg, field, type(value)(min(max(value, low), high)) if math.isfinite(value) else low)
    if cfg.dataset not in DATASETS:
        cfg.dataset = DataConfig.dataset
    if cfg.channels not in (1, 3):
        cfg.channels = DataConfig.channels
    return cfg


def _data_value(field: str, text: str, like: Any) -> Any:
    """The URL's `text` as the DataConfig field's value; ValueError when it is none the Data page
    could show (clamped_data_config brings numbers into its ranges)."""
    if field == "dataset" and text not in DATASETS:
        raise ValueError(text)
    if field == "channels" and text not in ("1", "3"):
        raise ValueError(text)
    if isinstance(like, str):
        check_folder_text(text)  # FolderError, a ValueError: a null byte, 40 KB
    value = _parse(text, like)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(text)
    return value


def data_config_from_params(params: dict[str, str]) -> DataConfig | None:
    """The DataConfig a link names (see read_data_params), or None."""
    return read_data_params(params)[0]


def read_data_params(params: dict[str, str]) -> tuple[DataConfig | None, list[str]]:
    """The DataConfig a link names, or None when it names no dataset (or none of ours), and the
    parameters it could not use. Defaults fill what it leaves out; numbers outside what the Data
    page offers are clamped into it; a value that is none of the page's (not a number, an unknown
    dataset, 7 channels, a folder with a null byte or of 40 KB) is left out and named."""
    if "dataset" not in params:
        return None, []
    cfg, refused = DataConfig(), []
    for field in fields(DataConfig):
        param = DATA_PARAMS.get(field.name)
        if param in params:
            try:
                setattr(cfg, field.name, _data_value(field.name, params[param], getattr(cfg, field.name)))
            except (ValueError, OverflowError):
                refused.append(param)
    if "dataset" in refused:
        return None, refused
    if {"root", "folder"} & set(refused):  # the data folder alone is no dataset: the page asks for one
        cfg.folder_root, cfg.folder = "", ""
    return clamped_data_config(cfg), refused


def data_config_params(cfg: DataConfig) -> dict[str, str]:
    """The URL parameters of a DataConfig: the dataset, and every field that is not the default."""
    default = DataConfig()
    params = {"dataset": cfg.dataset}
    for field in fields(DataConfig):
        value = getattr(cfg, field.name)
        param = DATA_PARAMS.get(field.name)  # a field with no parameter stays out of the URL
        if param and field.name != "dataset" and value != getattr(default, field.name):
            params[param] = _text(value)
    return params


def restore_from_url() -> None:
    """Once per session: dataset, current run and projector mode from the URL."""
    if st.session_state.get(RESTORED_KEY):
        return
    st.session_state[RESTORED_KEY] = True
    params = st.query_params.to_dict()
    data_cfg, refused = read_data_params(params)
    if data_cfg is not None:
        st.session_state[DATA_CONFIG_KEY] = data_cfg
    if params.get(RUN_PARAM):
        try:  # a name a run can have; the pages say when there is no such run
            st.session_state[SELECTED_RUN_KEY] = check_name(params[RUN_PARAM])
        except CheckpointError:
            refused.append(RUN_PARAM)
    if refused:
        st.session_state[URL_REFUSED_KEY] = refused
    if PROJECTOR_PARAM in params:
        st.session_state[PROJECTOR_KEY] = params[PROJECTOR_PARAM] == "1"


def url_notice() -> None:
    """Once, on the page the link opened: which of its parameters were not used (by name only:
    the values are the link's, not ours)."""
    refused = st.session_state.pop(URL_REFUSED_KEY, None)
    if refused:
        names = ", ".join(sorted(set(refused)))
        st.warning(f"This link's {names} could not be used (no value this app offers), so the page starts from "
                   "its defaults there.", icon=":material/link_off:")
        logger.info("link parameters refused: %s", names)


def url_widget(key: str, param: str, default: Any, parse: Callable[[str], Any] | None = None,
               valid: Callable[[Any], bool] | None = None) -> Any:
    """Keep the widget `key` in the URL as ?param=: called before the widget is drawn (which then
    passes no value of its own). Its value comes from the session, else from the URL (when it parses
    and `valid` accepts it), else `default`; returns that value. Lists travel comma-separated."""
    if key not in st.session_state:
        value = default
        if param in st.query_params:
            text = st.query_params[param]
            try:
                if parse is not None:
                    parsed = parse(text)
                elif isinstance(default, list):
                    parsed = [v for v in text.split(",") if v]
                else:
                    parsed = _parse(text, default)
                if valid is None or valid(parsed):
                    value = parsed
            except ValueError:
                pass
        st.session_state[key] = value
    st.session_state.setdefault(BOUND_KEY, {})[param] = key
    _page_params.add(param)
    return st.session_state[key]


def url_values(values: dict[str, str | None]) -> None:
    """Keep these page parameters in the URL on this run (None: leave it out, e.g. a setting at its
    default); like url_widget's, they leave the URL with the page. The page reads them back itself."""
    _page_params.update(values)
    st.session_state.setdefault(PAGE_VALUES_KEY, {}).update(
        {param: text for param, text in values.items() if text is not None})


def start_run() -> None:
    """At the start of every full run: forget last run's page bindings."""
    st.session_state[BOUND_KEY] = {}
    st.session_state[PAGE_VALUES_KEY] = {}


def write_to_url() -> None:
    """At the end of every full run: the URL says what this session shows."""
    wanted: dict[str, str] = {}
    if DATA_CONFIG_KEY in st.session_state:
        wanted.update(data_config_params(st.session_state[DATA_CONFIG_KEY]))
    if st.session_state.get(SELECTED_RUN_KEY):
        wanted[RUN_PARAM] = str(st.session_state[SELECTED_RUN_KEY])
    if st.session_state.get(PROJECTOR_KEY):
        wanted[PROJECTOR_PARAM] = "1"
    for param, key in st.session_state.get(BOUND_KEY, {}).items():
        if key in st.session_state and st.session_state[key] is not None:
            wanted[param] = _text(st.session_state[key])
    wanted.update(st.session_state.get(PAGE_VALUES_KEY, {}))
    current = st.query_params.to_dict()
    for param in (_GLOBAL_PARAMS | _page_params) - set(wanted):
        if param in current:
            del st.query_params[param]
    for param, text in wanted.items():
        if current.get(param) != text:
            st.query_params[param] = text
