"""app.py (AppTest): navigation runs the Data page first, and the shared sidebar shows the device
training would use, the chosen dataset, the current run and the server's jobs."""
from __future__ import annotations


import torch
from streamlit.testing.v1 import AppTest

from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.train import resolve_device
from ui.state import DATA_CONFIG_KEY, SELECTED_RUN_KEY, get_registry

from apptest_helpers import open_app_page


# The sidebar is under test: run app.py the way a real server does (see the fixture).


def sidebar(at: AppTest) -> dict[str, str]:
    """'**Device:** CPU' -> {'Device': 'CPU'}; captions under the key 'caption'."""
    shown = {}
    for text in at.sidebar.markdown.values:
        label, _, value = text.partition(":** ")
        shown[label.strip("*")] = value
    shown["caption"] = " | ".join(at.sidebar.caption.values)
    return shown


def test_app_opens_on_lessons_with_device_and_dataset_in_the_sidebar(no_runs):
    at = open_app_page()
    assert at.title[0].value == "Lessons"  # the homework as the unit: the page a class starts on
    shown = sidebar(at)
    device = resolve_device("auto")
    assert shown["Device"].startswith(device.type.upper())
    if device.type == "cuda":
        assert torch.cuda.get_device_name(device) in shown["Device"]
    # the first lesson's own dataset (the Data page's choice, the built-in digits, on the other pages)
    assert shown["Dataset"].startswith("Styles") and shown["Dataset"].endswith("(this page's)")
    assert shown["Current run"] == "none yet"
    assert shown["Jobs run on"] == "this machine"
    assert "No training job running" in shown["caption"]


def test_a_ray_cluster_out_of_reach_leaves_the_app_on_this_machine(no_runs, monkeypatch):
    monkeypatch.setenv("AE_LAB_RAY_ADDRESS", "127.0.0.1:9")  # the discard port: nobody listens
    at = open_app_page()
    assert sidebar(at)["Jobs run on"] == "this machine"
    (warning,) = at.sidebar.warning.values
    assert warning == ("Could not reach the Ray cluster at 127.0.0.1:9; start it there with `ray start --head` or "
                       "fix AE_LAB_RAY_ADDRESS; training on this machine instead.")
    assert get_registry().runner.backend == "local"


def test_sidebar_follows_the_session_choices(no_runs):
    at = open_app_page("views/train.py", {
        DATA_CONFIG_KEY: DataConfig(dataset="shapes", shapes_count=300, limit=200),
        SELECTED_RUN_KEY: "tiny-vae",
    })
    shown = sidebar(at)
    assert shown["Dataset"] == "Shapes (generated) · first 200 images"
    assert shown["Current run"] == "tiny-vae"
    # Choosing another dataset on the Data page shows in the sidebar of that same run.
    at.switch_page("views/data.py").run()
    at.selectbox(key="data_dataset").set_value("digits").run()
    assert sidebar(at)["Dataset"].startswith("Digits")


def test_sidebar_lists_running_and_queued_jobs(no_runs, monkeypatch):
    monkeypatch.setenv("AE_LAB_MAX_JOBS", "1")
    jobs = get_registry()
    cfg = RunConfig(model=ModelConfig(latent=2),
                    train=TrainConfig(epochs=1000, batch_size=16, device="cpu"))
    first = jobs.start(RunConfig(**{**vars(cfg), "name": "busy"}))
    second = jobs.start(RunConfig(**{**vars(cfg), "name": "waiting"}))
    try:
        at = open_app_page()
        caption = sidebar(at)["caption"]
        assert "busy: loading" in caption or "busy: running" in caption
        assert "waiting: queued, position 1" in caption
    finally:
        jobs.stop(second)
        jobs.stop(first)
        jobs.wait(first, timeout=120)


def test_the_sidebar_never_shows_a_cli_runs_server_folder():
    """A run trained by the CLI on a folder anywhere keeps that server path in its config; the
    sidebar names only the folder's last part (the served app never shows server paths)."""
    from core.config import DataConfig
    from ui.sidebar import describe_data

    text = describe_data(DataConfig(dataset="folder", folder="/srv/secret/teacher/ants-bees"))
    assert "ants-bees" in text and "/srv" not in text and "secret" not in text
