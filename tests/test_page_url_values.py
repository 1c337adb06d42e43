"""Every value a link carries is checked before a widget sees it (issue 17): a number outside what
the Data page offers is brought into its range, a value it does not offer at all is left out and
named in one sentence; a folder the file system cannot take is refused in one sentence. A bad link
showed a Streamlit traceback naming the server's install paths."""
from __future__ import annotations

import pytest

from apptest_helpers import open_app_page
from core.serving.limits import WorkLimits
from ui.state import DATA_CONFIG_KEY, SELECTED_RUN_KEY
from ui.url_state import read_data_params

from test_lesson_state import open_with_url, param

LIMITS = WorkLimits()
# link -> (what the Data page starts from, the parameters named as not used)
CLAMPED = [
    ({"dataset": "digits", "limit": "-5"}, {"limit": 0}),
    ({"dataset": "shapes", "shapes": "10000000"}, {"shapes_count": LIMITS.max_images}),
    ({"dataset": "shapes", "size": "100000"}, {"image_size": LIMITS.max_image_size}),
    ({"dataset": "folder", "root": "data", "folder": "x", "size": "100000"}, {"image_size": LIMITS.max_image_size}),
    ({"dataset": "digits", "data_seed": "-1"}, {"seed": 0}),
    ({"dataset": "digits", "val": "7"}, {"val_fraction": 0.5}),
]
REFUSED = [
    ({"dataset": "folder", "root": "data", "folder": "cats\x00/../../etc"}, "folder"),
    ({"dataset": "folder", "root": "data", "folder": "x" * 40_000}, "folder"),
    ({"dataset": "folder", "root": "data", "folder": "x", "channels": "7"}, "channels"),
    ({"dataset": "doesnotexist"}, "dataset"),
    ({"dataset": "digits", "val": "nan"}, "val"),
    ({"dataset": "digits", "limit": "9" * 5000}, "limit"),
    ({"run": "../x\x00"}, "run"),
]
# What a page may say about a link's folder that is not there (the tests read every message).
FOLDER_NOTES = ("does not exist", "No image folder is chosen")
INTERNALS = ("Traceback", "site-packages", "File \"", "Error:", ".py")


def shown_messages(at) -> list[str]:
    return [e.value for e in (*at.error, *at.warning, *at.exception)]


@pytest.mark.parametrize("params, expected", CLAMPED)
def test_a_number_outside_the_widgets_range_is_clamped(params, expected):
    cfg, refused = read_data_params(params)
    assert refused == [] and {field: getattr(cfg, field) for field in expected} == expected


@pytest.mark.parametrize("params, refused", REFUSED[:-1])
def test_a_value_the_page_does_not_offer_is_named(params, refused):
    cfg, named = read_data_params(params)
    assert named == [refused]
    if refused in ("folder", "root"):  # the data folder alone is not chosen in its place
        assert cfg.folder == "" and cfg.folder_root == ""


@pytest.mark.parametrize("page", ["views/data.py", "views/train.py"])
@pytest.mark.parametrize("params, expected", CLAMPED)
def test_the_pages_open_a_link_with_a_number_out_of_range(no_runs, page, params, expected):
    at = open_app_page(page, query=params, errors=FOLDER_NOTES)  # fails the test on any exception
    for message in shown_messages(at):
        assert not any(internal in message for internal in INTERNALS), message
    cfg = at.session_state[DATA_CONFIG_KEY]
    assert {field: getattr(cfg, field) for field in expected} == expected


@pytest.mark.parametrize("page", ["views/data.py", "views/train.py"])
@pytest.mark.parametrize("params, refused", REFUSED)
def test_the_pages_name_a_link_value_they_do_not_offer_in_one_sentence(no_runs, page, params, refused):
    at = open_app_page(page, query=params, errors=FOLDER_NOTES)
    messages = shown_messages(at)
    for message in messages:
        assert not any(internal in message for internal in INTERNALS), message
    (notice,) = [m for m in messages if "link" in m]
    assert f"link's {refused} could not be used" in notice and notice.count(".") == 1
    assert SELECTED_RUN_KEY not in at.session_state


def test_a_folder_the_file_system_cannot_take_is_one_sentence(no_runs, data_dir):
    for typed in ("data/cats\x00dogs", "data/" + "x" * 300):
        at = open_app_page("views/data.py", state={"data_dataset": "folder", "data_folder": typed},
                           errors=["control characters", "too long"])
        (error,) = at.error
        assert error.value.count(".") == 1 and not any(internal in error.value for internal in INTERNALS)
        assert DATA_CONFIG_KEY not in at.session_state


# Each page's own parameters (not the data settings above): a shared or forged link with a hostile
# value opens the page without a traceback or error box, at its default, and the value is not kept.
MARKUP = "![x](http://127.0.0.1:9/t.png)"
# "0" is a value mine= takes (off); from_run= is read only once "a saved run's settings" is chosen.
VALID = {("mine", "0")}
READ_LATER = {"from_run"}
HOSTILE = ["-5", "99999999999999999999", "nan", "../../etc/passwd", MARKUP, "a,b,,c\x00"]


@pytest.fixture
def one_experiment(app_runs):
    """The tiny runs and one finished experiment of two runs, for the Experiments page to show."""
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from core.experiments import ExperimentConfig, ExperimentManager
    from core.jobs import JobRegistry

    base = RunConfig(data=DataConfig(dataset="digits", limit=150), model=ModelConfig(family="dense", hidden=[8]),
                     train=TrainConfig(epochs=1, batch_size=32, device="cpu"))
    manager = ExperimentManager(JobRegistry(root=app_runs), poll_seconds=0.02)
    name = manager.start(ExperimentConfig(name="latents", base=base, grid={"model.latent": [2, 3]}))
    assert manager.wait(name, timeout=120)["status"] == "finished"
    return app_runs


@pytest.mark.parametrize("page, name", [
    ("views/reconstructions.py", "count"),
    ("views/reconstructions.py", "with"),
    ("views/runs.py", "compare"),
    ("views/runs.py", "curve"),
    ("views/runs.py", "x"),
    ("views/runs.py", "mine"),
    ("views/runs.py", "experiments"),
    ("views/runs.py", "datasets"),
    ("views/experiments.py", "experiment"),
    ("views/experiments.py", "from_run"),
    ("views/lessons.py", "lesson"),
    ("views/lessons.py", "step"),
])
def test_a_pages_parameter_with_a_hostile_value_falls_back_to_its_default(one_experiment, page, name):
    for value in HOSTILE:
        at = open_with_url(page, {name: value, "run": "tiny-conv"})  # fails on an exception or an error box
        if name not in READ_LATER and (name, value) not in VALID:
            assert param(at, name) != value, (name, value)  # the bad value is not kept in the URL
        assert not [m.value for m in at.markdown if "127.0.0.1:9" in m.value and "![" not in m.value]
