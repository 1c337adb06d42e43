"""The Reconstructions page, rendered by AppTest through app.py's navigation."""
from __future__ import annotations


import re


from streamlit.testing.v1 import AppTest

from core.checkpoints import load_run

from apptest_helpers import open_app_page

PAGE = "views/reconstructions.py"


def open_page(run_name: str | None = None) -> AppTest:
    return open_app_page(PAGE, {"selected_run": run_name} if run_name else {})


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def image_captions(at: AppTest) -> list[str]:
    return [caption for image in at.get("image") for caption in image.captions]


def test_metrics_are_the_runs_test_metrics_and_images_are_shown(app_runs):
    at = open_page("tiny-conv")
    stored = load_run(app_runs, "tiny-conv").test_metrics
    assert metric(at, "Test MSE") == f"{stored['mse']:.4f}"
    assert metric(at, "Test MAE") == f"{stored['mae']:.4f}"
    captions = image_captions(at)
    for expected in ("Test images", "Reconstructions", "Error |x − x̂|"):
        assert any(c.startswith(expected) for c in captions), (expected, captions)
    # 8 test images shown: each of the three grids holds them all, so their URLs differ.
    grids = [i for i in at.get("image") if i.captions[0].startswith(("Test images", "Reconstructions"))]
    assert len({g.value[0] for g in grids}) == 2

    at.slider(key="recon_count").set_value(16).run()
    assert not at.exception
    assert [i.value[0] for i in at.get("image") if i.captions[0] == "Test images"] != \
        [g.value[0] for g in grids if g.captions[0] == "Test images"]


def test_best_examples_have_lower_errors_than_worst_and_a_histogram(app_runs):
    at = open_page("tiny-vae")
    errors_by_title = {}
    for caption in at.main.caption:
        found = [float(e) for e in re.findall(r"#\d+ \(\w+\): ([0-9.]+)", caption.value)]
        if found:
            errors_by_title[len(errors_by_title)] = found
    best, worst = errors_by_title[0], errors_by_title[1]
    assert len(best) == len(worst) == 8
    assert best == sorted(best) and worst == sorted(worst, reverse=True)
    assert max(best) <= min(worst)
    charts = at.get("vega_lite_chart")
    assert any('"bin"' in chart.proto.spec for chart in charts)


def test_film_slider_runs_over_the_epochs(app_runs):
    at = open_page("tiny-conv")
    epochs = len(load_run(app_runs, "tiny-conv").film)
    slider = at.slider(key="film_epoch")
    assert (slider.min, slider.max, slider.value) == (1, epochs, epochs)
    last = [i for i in at.get("image") if "after epoch" in i.captions[0]]
    assert f"after epoch {epochs} of {epochs}" in last[0].captions[0]

    at.slider(key="film_epoch").set_value(1).run()
    first = [i for i in at.get("image") if "after epoch" in i.captions[0]]
    assert "after epoch 1 of" in first[0].captions[0]
    assert first[0].value != last[0].value  # a different frame, so different image bytes


def test_without_runs_the_page_links_to_train(no_runs):
    at = open_page()
    assert any("No trained run yet" in info.value for info in at.info)
    assert [link.proto.label for link in at.main.get("page_link")] == ["Go to Train"]
    assert not at.metric


def test_a_broken_checkpoint_shows_one_sentence(app_runs):
    weights = app_runs / "tiny-conv" / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:100])
    at = open_app_page(PAGE, {"selected_run": "tiny-conv"}, errors=["cannot be loaded"])
    assert len(at.error) == 1
    message = at.error[0].value
    assert "tiny-conv" in message and "Traceback" not in message
    assert message.count(". ") == 0 and message.endswith(".")
    assert not at.metric


def test_two_runs_side_by_side_on_the_same_test_images(app_runs):
    """Issue 8: one column per run, the same test images in each, each run's own reconstructions;
    the choice is kept in the URL (?with=)."""
    at = open_app_page("views/reconstructions.py", {"selected_run": "tiny-conv", "recon_with": ["tiny-denoise"]})
    block = at.main.get_by_key("recon_side_by_side")
    captions = [img.proto.imgs[0].caption for img in block.get("image")]
    assert captions.count("Test images") == 2
    assert "Reconstructions by tiny-conv" in captions and "Reconstructions by tiny-denoise" in captions
    urls = {img.proto.imgs[0].caption: img.proto.imgs[0].url for img in block.get("image")}
    assert urls["Reconstructions by tiny-conv"] != urls["Reconstructions by tiny-denoise"]
    with_param = at.query_params.get("with")
    assert (with_param[0] if isinstance(with_param, list) else with_param) == "tiny-denoise"
    assert any("What to look for" in i.value for i in at.info)
