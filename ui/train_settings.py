"""The Train form's settings as the rest of the app sees them: the Train page keeps the RunConfig its
form showed last in session state (TRAIN_FORM_KEY) and the data config its batch size and epochs were
fitted to (FITTED_FOR_KEY); the Experiments page starts its experiments from them."""
from __future__ import annotations

import copy

import streamlit as st

from core.config import DataConfig, RunConfig
from core.defaults import suggested_training

TRAIN_FORM_KEY = "train_form_config"  # the RunConfig the Train form showed last (leaving the page keeps it)
FITTED_FOR_KEY = "train_defaults_for"  # the data config (JSON) the form's batch size and epochs were fitted to


def fitted_defaults(train_count: int | None) -> RunConfig:
    """The form's defaults for a dataset of `train_count` training images: batch size and epochs as
    core.defaults suggests."""
    defaults = RunConfig()
    if train_count is not None:
        suggestion = suggested_training(train_count)
        defaults.train.batch_size, defaults.train.epochs = suggestion.batch_size, suggestion.epochs
    return defaults


def train_form_settings(data_cfg: DataConfig) -> tuple[RunConfig, bool]:
    """(settings, chose_training): the Train form's current settings on `data_cfg` (the defaults when
    the form was never opened in this session), and whether the student chose the batch size and
    epochs themselves: they differ from what the form suggested for this very data. Otherwise the
    caller fits them to the data it trains on (as the form does on its next visit)."""
    form = st.session_state.get(TRAIN_FORM_KEY)
    settings = copy.deepcopy(form) if isinstance(form, RunConfig) else RunConfig()
    settings.data = copy.deepcopy(data_cfg)
    chose = False
    if isinstance(form, RunConfig) and st.session_state.get(FITTED_FOR_KEY) == RunConfig(data=data_cfg).to_json():
        fitted = st.session_state.get(_FITTED_VALUES_KEY)
        chose = fitted is not None and (form.train.batch_size, form.train.epochs) != tuple(fitted)
    return settings, chose


# The (batch size, epochs) the form suggested when it fitted them last (set by remember_fitted).
_FITTED_VALUES_KEY = "train_fitted_values"


def remember_fitted(data_cfg: DataConfig, batch_size: int, epochs: int) -> None:
    """The Train form fitted batch size and epochs to data_cfg: what it suggested, so a later change
    by the student tells (train_form_settings)."""
    st.session_state[FITTED_FOR_KEY] = RunConfig(data=data_cfg).to_json()
    st.session_state[_FITTED_VALUES_KEY] = (int(batch_size), int(epochs))
