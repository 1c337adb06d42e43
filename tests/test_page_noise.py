"""The Noise page, rendered by AppTest through app.py's navigation."""
from __future__ import annotations


import pytest
from streamlit.testing.v1 import AppTest

from core import analysis
from core.checkpoints import load_run, save_run
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import load_dataset
from core.train import train

from apptest_helpers import chart_frames, open_app_page

PAGE = "views/noise.py"


def open_page(selected: str | None = None, chosen: list[str] | None = None) -> AppTest:
    state = {"selected_run": selected} if selected else {}
    if chosen:
        state["noise_runs"] = chosen
    return open_app_page(PAGE, state)


def sweep_frames(at: AppTest):
    """The data behind the page's one chart, the noise sweep."""
    assert len(at.main.get("vega_lite_chart")) == 1
    return chart_frames(at.main)


def sweep_rows(at: AppTest):
    """The rows behind the sweep chart's lines (the dataset that has a run column)."""
    return next(f for f in sweep_frames(at) if "run" in f.columns)


def image_urls(at: AppTest) -> list[str]:
    return [url for image in at.main.get_by_key("noise_images").get("image") for url in image.value]


def test_sweep_chart_has_one_line_per_chosen_run(app_runs):
    at = open_page(chosen=["tiny-conv", "tiny-denoise", "tiny-vae"])
    rows = sweep_rows(at)
    assert sorted(rows["run"].unique()) == ["tiny-conv", "tiny-denoise", "tiny-vae"]
    assert rows.groupby("run")["noise"].nunique().tolist() == [11, 11, 11]
    # The plotted points are core's sweep of that run over its test images.
    run = load_run(app_runs, "tiny-denoise")
    images, _ = load_dataset(run.config.data).split("test")
    expected = analysis.noise_sweep(run.model, images[:2000], seed=0)
    plotted = rows[rows["run"] == "tiny-denoise"].sort_values("noise")
    assert plotted["mse"].tolist() == pytest.approx([p["mse"] for p in expected], rel=1e-5)

    at.multiselect(key="noise_runs").set_value(["tiny-conv"]).run()
    assert sweep_rows(at)["run"].unique().tolist() == ["tiny-conv"]


def test_default_choice_pairs_a_plain_run_with_the_denoising_one(app_runs):
    at = open_page(selected="tiny-conv")
    chosen = at.multiselect(key="noise_runs").value
    assert chosen[0] == "tiny-conv" and "tiny-denoise" in chosen and len(chosen) <= 3


def test_moving_the_noise_slider_changes_the_noisy_images(app_runs):
    at = open_page(chosen=["tiny-conv", "tiny-denoise"])
    assert at.main.get_by_key("noise_slider").slider[0].label == "Noise factor"
    before = image_urls(at)
    assert len(before) == 4  # noisy input and reconstruction for each run
    # Both runs get the very same noisy input.
    assert before[0] == before[2]
    captions = [c for image in at.main.get_by_key("noise_images").get("image") for c in image.captions]
    assert "Noisy input (noise factor 0.30)" in captions

    at.slider(key="noise_factor").set_value(0.8).run()
    after = image_urls(at)
    assert after[0] != before[0] and after[1] != before[1]
    assert any(list(f.columns) == ["noise"] and f["noise"].tolist() == [0.8] for f in sweep_frames(at))


@pytest.fixture
def shapes_run(app_runs):
    """A run on another dataset (8×8 colour shapes) next to the digits runs."""
    cfg = RunConfig(data=DataConfig(dataset="shapes", image_size=8, shapes_count=60, seed=0),
                    model=ModelConfig(family="dense", hidden=[16], latent=2),
                    train=TrainConfig(epochs=1, batch_size=32, device="cpu"), name="tiny-shapes")
    save_run(app_runs, cfg.name, cfg, train(cfg, load_dataset(cfg.data)))
    return cfg.name


def test_runs_on_another_dataset_are_left_out_with_a_reason(app_runs, shapes_run):
    at = open_page(chosen=["tiny-conv", shapes_run])
    notes = [info.value for info in at.main.info]
    assert any("same dataset" in note and shapes_run in note for note in notes), notes
    assert sweep_rows(at)["run"].unique().tolist() == ["tiny-conv"]
    # The default choice never mixes datasets.
    at = open_page(selected=shapes_run)
    assert at.multiselect(key="noise_runs").value == [shapes_run]


def test_without_runs_the_page_links_to_train(no_runs):
    at = open_page()
    assert [link.proto.label for link in at.main.get("page_link")] == ["Go to Train"]
    assert not at.main.get("vega_lite_chart")
