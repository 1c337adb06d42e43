"""The Noise page, rendered by AppTest through app.py's navigation."""
from __future__ import annotations


import pytest
from streamlit.testing.v1 import AppTest

import re

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


def image_captions(at: AppTest) -> list[str]:
    return [c for image in at.main.get_by_key("noise_images").get("image") for c in image.captions]


def caption_mses(at: AppTest) -> list[float]:
    """The MSE written under each reconstruction, in the order of the runs."""
    found = [re.search(r"MSE against the clean images (\d+\.\d+) over all (\d+) test images, as in the chart", c)
             for c in image_captions(at) if c.startswith("Reconstruction")]
    assert all(found), image_captions(at)
    return [float(m.group(1)) for m in found]


def image_urls(at: AppTest) -> list[str]:
    return [url for image in at.main.get_by_key("noise_images").get("image") for url in image.value]


def test_sweep_chart_has_one_line_per_chosen_run(app_runs):
    at = open_page(chosen=["tiny-conv", "tiny-denoise", "tiny-vae"])
    rows = sweep_rows(at)
    assert sorted(rows["run"].unique()) == ["tiny-conv", "tiny-denoise", "tiny-vae"]
    # Every step of the slider (0, 0.05, ..., 1) is a point of the sweep.
    assert rows.groupby("run")["noise"].nunique().tolist() == [21, 21, 21]
    # The plotted points are core's sweep of that run over its test images.
    run = load_run(app_runs, "tiny-denoise")
    images, _ = load_dataset(run.config.data).split("test")
    expected = analysis.noise_sweep(run.model, images[:2000], levels=[i / 20 for i in range(21)], seed=0)
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
    assert "Noisy input (noise factor 0.30)" in image_captions(at)

    at.slider(key="noise_factor").set_value(0.8).run()
    after = image_urls(at)
    assert after[0] != before[0] and after[1] != before[1]
    assert any(list(f.columns) == ["noise"] and f["noise"].tolist() == [0.8] for f in sweep_frames(at))


def test_the_mse_under_a_reconstruction_is_the_charts_value_at_the_slider(app_runs):
    """Teacher's report: at 0.30 the caption said 0.0435 while the chart showed 0.051 (the caption
    measured the 8 shown images, the chart every test image). Both now read the same sweep point."""
    runs = ["tiny-conv", "tiny-denoise"]
    at = open_page(chosen=runs)
    for factor in (0.3, 0.25, 0.8, 1.0):  # 0.25: between the old sweep's levels (0, 0.1, ...)
        if factor != 0.3:
            at.slider(key="noise_factor").set_value(factor).run()
        rows = sweep_rows(at)
        at_slider = [float(rows[(rows["run"] == run) & (rows["noise"].sub(factor).abs() < 1e-9)]["mse"].iloc[0])
                     for run in runs]
        assert caption_mses(at) == pytest.approx(at_slider, abs=5e-5), factor
        rule = next(f for f in sweep_frames(at) if list(f.columns) == ["noise"])
        assert rule["noise"].tolist() == pytest.approx([factor])
    # The caption's number is core's sweep over the run's test images (180 digits), not the 8 shown.
    run = load_run(app_runs, "tiny-conv")
    images, labels = load_dataset(run.config.data).split("test")
    whole = analysis.noise_sweep(run.model, images, labels, levels=[1.0], seed=0)[0]["mse"]
    shown = analysis.noise_sweep(run.model, images[:8], labels[:8], levels=[1.0], seed=0)[0]["mse"]
    assert caption_mses(at)[0] == pytest.approx(whole, abs=5e-5)
    assert abs(whole - shown) > 1e-4  # the two really differ, so the check above could fail
    assert "over all 180 test images" in image_captions(at)[1]


def test_each_run_is_labelled_with_its_kind(app_runs):
    """Teacher's report: a VAE was labelled 'plain AE'."""
    at = open_page(chosen=["tiny-conv", "tiny-denoise", "tiny-vae", "tiny-cond"])
    labels = [m.value for m in at.main.get_by_key("noise_images").markdown]
    assert labels == ["**tiny-conv** · digits, plain AE (no training noise)",
                      "**tiny-denoise** · digits, denoising AE, trained with noise 0.4",
                      "**tiny-vae** · digits, VAE (no training noise)",
                      "**tiny-cond** · digits, conditional AE (no training noise)"]


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
