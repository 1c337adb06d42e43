"""Every input has a bound (issue 17), on the pages: too many layers are refused where they are
typed or linked, before a layer table, an estimate or the URL sees them (12,000 typed hidden
sizes cost 47 s of CPU per change; `?hidden=` with 20,000 ones cost 92 s and 1.7 GB for one page
load); a generated dataset over the memory limit is refused before one shape is drawn."""
from __future__ import annotations

import pytest

from apptest_helpers import expect_errors, open_app_page
from core.config import ModelConfig
from core.serving.limits import WorkLimits

LIMITS = WorkLimits()


def layer_rows(at) -> int:
    """Rows of the Train page's layer table (0 when it is not drawn)."""
    return next((len(d.value) for d in at.dataframe if "Output shape" in d.value.columns), 0)


def form_hidden(at) -> list[int]:
    return list(at.session_state["train_form_config"].model.hidden)


def test_a_link_with_20000_hidden_sizes_opens_the_defaults(no_runs):
    at = open_app_page("views/train.py", query={"dataset": "digits", "family": "dense",
                                                 "hidden": ",".join(["1"] * 20_000)})
    default = ModelConfig().hidden
    assert at.text_input(key="cfg_hidden_small").value == ", ".join(map(str, default))  # not the link's
    assert form_hidden(at) == default and "hidden" not in at.query_params  # the 40 KB value is gone
    assert 0 < layer_rows(at) < 30 and not at.error


@pytest.mark.parametrize("family, key, words", [("dense", "cfg_hidden_small", "hidden layers"),
                                                ("conv", "cfg_channels_small", "conv stages")])
def test_too_many_typed_layers_are_one_sentence_at_the_box(no_runs, monkeypatch, family, key, words):
    import core.models

    estimated = []
    real = core.models.activation_bytes_per_image
    monkeypatch.setattr(core.models, "activation_bytes_per_image",
                        lambda cfg: estimated.append(cfg) or real(cfg))
    at = open_app_page("views/train.py")
    at.radio(key="cfg_family").set_value(family).run()
    expect_errors(at, "AE_LAB_MAX_LAYERS")
    at.text_input(key=key).input(", ".join(["3"] * 12_000)).run()
    (error,) = at.error
    assert f"12,000 {words} are above this server's limit of {LIMITS.max_layers}" in error.value
    assert "AE_LAB_MAX_LAYERS" in error.value and error.value.count(".") == 1
    assert at.button(key="start_job").disabled
    # Nothing was built, counted or written from the 12,000: the form keeps the preset's sizes.
    assert all(len(cfg.hidden) <= LIMITS.max_layers and len(cfg.channels) <= LIMITS.max_layers for cfg in estimated)
    assert len(at.query_params.get("hidden", "")) < 100 and len(at.query_params.get("conv_channels", "")) < 100


def test_as_many_layers_as_allowed_still_work(no_runs):
    at = open_app_page("views/train.py")
    at.radio(key="cfg_family").set_value("dense").run()
    at.text_input(key="cfg_hidden_small").input(", ".join(["8"] * LIMITS.max_layers)).run()
    assert not at.error and form_hidden(at) == [8] * LIMITS.max_layers
    assert layer_rows(at) > 2 * LIMITS.max_layers


def test_20000_shapes_of_128_px_are_refused_before_any_is_drawn(no_runs, monkeypatch):
    import core.data

    monkeypatch.setattr(core.data, "make_shapes", lambda *a, **k: pytest.fail("shapes were drawn"))
    for page in ("views/data.py", "views/train.py"):
        at = open_app_page(page, query={"dataset": "shapes", "shapes": "20000", "size": "128"},
                           errors=["AE_LAB_MAX_GENERATED_MB"])
        (error,) = at.error
        assert "AE_LAB_MAX_GENERATED_MB" in error.value and error.value.count(";") == 1
        assert f"generate at most {LIMITS.max_generated_mb * 2**20 // (3 * 128 * 128):,}" in error.value
