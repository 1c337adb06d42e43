"""The Latent space page, rendered by AppTest through app.py's navigation. AppTest cannot click
the scatter, so a pick is injected through session_state["latent_picked_index"]."""
from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from core.checkpoints import save_run
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import load_dataset
from core.train import train

from apptest_helpers import chart_frames, open_app_page

PAGE = "views/latent.py"


def open_page(run_name: str, picked: int | None = None) -> AppTest:
    state = {"selected_run": run_name}
    if picked is not None:
        state["latent_picked_index"] = picked
    return open_app_page(PAGE, state)


def scatter_points(at: AppTest):
    """The scatter's points: the dataset with index, x and y of the chart in latent_scatter."""
    frames = chart_frames(at.main.get_by_key("latent_scatter"))
    return next(f for f in frames if {"index", "x", "y"} <= set(f.columns))


def urls_in(at: AppTest, key: str) -> list[str]:
    return [url for image in at.main.get_by_key(key).get("image") for url in image.value]


@pytest.fixture(scope="module")
def test_count(digits) -> int:
    """How many test images the tiny runs (all on digits, seed 0) encode."""
    return len(digits.splits["test"])


@pytest.mark.parametrize("projection", ["raw", "pca", "tsne"])
def test_each_projection_plots_every_encoded_image(app_runs, test_count, projection):
    at = open_page("tiny-cond")
    at.radio(key="latent_projection").set_value(projection).run()
    assert not at.exception
    points = scatter_points(at)
    assert len(points) == test_count and sorted(points["index"]) == list(range(test_count))
    assert points[["x", "y"]].notna().all().all() and points["x"].std() > 0
    # Latent 4: the raw view is only the first two coordinates, and the page says so.
    note = any("first two" in c.value for c in at.main.caption)
    assert note == (projection == "raw")


def test_raw_view_of_a_two_dimensional_latent_needs_no_note(app_runs):
    at = open_page("tiny-conv")
    assert at.radio(key="latent_projection").value == "raw"
    assert not any("first two" in c.value for c in at.main.caption)
    assert len(at.slider) >= 2 and {"z[0]", "z[1]"} <= {s.label for s in at.slider}


def test_an_injected_pick_shows_the_image_and_its_decoding(app_runs):
    at = open_page("tiny-conv")
    assert any("Click a point" in info.value for info in at.main.get_by_key("picked_point").info)
    assert not at.main.get_by_key("picked_point").get("image")

    at = open_page("tiny-conv", picked=5)
    images = at.main.get_by_key("picked_point").get("image")
    assert len(images) == 2
    assert images[0].captions[0].startswith("Test image #5 (")
    assert images[1].captions[0].startswith("Its code decoded")
    assert images[0].value != images[1].value
    # The sliders start at the picked image's code, so they decode the very same picture
    # (st.image URLs are content hashes: equal URLs, equal bytes).
    assert urls_in(at, "latent_decoded") == images[1].value
    other = open_page("tiny-conv", picked=6)
    assert urls_in(other, "latent_decoded") != urls_in(at, "latent_decoded")


def test_moving_a_latent_slider_changes_the_decoded_image(app_runs):
    at = open_page("tiny-vae", picked=0)
    before = urls_in(at, "latent_decoded")
    slider = at.slider(key="latent_dim_0")
    target = slider.max if slider.value < (slider.min + slider.max) / 2 else slider.min
    slider.set_value(target).run()
    assert not at.exception
    assert at.slider(key="latent_dim_0").value == pytest.approx(target)
    after = urls_in(at, "latent_decoded")
    assert len(after) == 1 and after != before


def test_manifold_grid_and_interpolation_appear(app_runs):
    at = open_page("tiny-cond")
    grid = at.main.get_by_key("manifold_grid").get("image")
    assert len(grid) == 1 and "z[0] left to right, z[1] bottom to top" in grid[0].captions[0]
    before = grid[0].value
    at.selectbox(key="manifold_y").set_value(3).run()
    assert at.main.get_by_key("manifold_grid").get("image")[0].value != before
    assert at.main.get_by_key("interpolation").get("image")


def test_a_conditional_run_decodes_with_the_chosen_label(app_runs):
    at = open_page("tiny-cond", picked=0)
    label = at.selectbox(key="latent_label")
    before = urls_in(at, "latent_decoded")
    other = next(name for name in label.options if name != label.value)
    label.set_value(other).run()
    assert urls_in(at, "latent_decoded") != before


def test_colour_by_kmeans_cluster(app_runs, test_count):
    at = open_page("tiny-denoise")
    at.radio(key="latent_colour").set_value("cluster").run()
    at.slider(key="latent_k").set_value(3).run()
    assert not at.exception
    points = scatter_points(at)
    assert len(points) == test_count
    assert sorted(points["cluster"].unique()) == [0, 1, 2]
    assert '"cluster"' in at.main.get_by_key("latent_scatter").get("vega_lite_chart")[0].proto.spec


def test_a_broken_checkpoint_shows_one_sentence(app_runs):
    weights = app_runs / "tiny-conv" / "weights.pt"
    weights.write_bytes(weights.read_bytes()[: len(weights.read_bytes()) // 2])
    at = open_app_page(PAGE, {"selected_run": "tiny-conv"}, errors=["cannot be loaded"])
    assert len(at.main.error) == 1
    message = at.main.error[0].value
    assert "tiny-conv" in message and message.endswith(".") and "\n" not in message
    assert not at.main.get("vega_lite_chart")


@pytest.fixture
def shapes_run(app_runs):
    """A tiny run on the generated shapes, whose generating factors can colour the scatter."""
    cfg = RunConfig(data=DataConfig(dataset="shapes", image_size=8, shapes_count=80, seed=0),
                    model=ModelConfig(family="dense", hidden=[16], latent=3),
                    train=TrainConfig(epochs=1, batch_size=32, device="cpu"), name="tiny-shapes")
    dataset = load_dataset(cfg.data)
    save_run(app_runs, cfg.name, cfg, train(cfg, dataset))
    return cfg.name, dataset


def test_shapes_can_be_coloured_by_a_generating_factor(shapes_run):
    name, dataset = shapes_run
    at = open_page(name)
    assert "Generating factor" in at.radio(key="latent_colour").options
    at.radio(key="latent_colour").set_value("factor").run()
    at.selectbox(key="latent_factor").set_value("hue").run()
    assert not at.exception
    points = scatter_points(at)
    expected = dataset.factors["hue"][dataset.splits["test"].numpy()]
    assert points["hue"].tolist() == pytest.approx(expected.tolist())
    # Digits have no generating factors, so the choice is not offered there.
    assert "Generating factor" not in open_page("tiny-conv").radio(key="latent_colour").options


def test_a_spot_of_the_plane_decodes_beside_the_chart_and_resets_with_the_run(app_runs):
    """Issue 8: a click in empty space decodes that coordinate (AppTest cannot click: the pick
    update_pick would store is injected); another run forgets it."""
    spot = {"kind": "spot", "xy": (0.5, -0.25), "run": "tiny-conv", "projection": "raw"}
    at = open_app_page(PAGE, {"selected_run": "tiny-conv", "latent_pick": spot})
    captions = [c for image in at.main.get_by_key("picked_point").get("image") for c in image.proto.imgs
                for c in [c.caption]]
    assert any("Decoded from the clicked spot (0.50, -0.25)" in c for c in captions), captions
    # The digits test set is small: training images are projected too, and a grid covers the plane.
    frames = chart_frames(at.main.get_by_key("latent_scatter"))
    assert any({"gx", "gy"} <= set(f.columns) and len(f) >= 40 * 40 for f in frames)
    assert any(set(f.columns) == {"x", "y", "class"} and len(f) > 100 for f in frames)
    at.selectbox(key="latent_run").set_value("tiny-denoise").run()
    assert at.session_state["latent_pick"] is None
    assert not any("clicked spot" in c.proto.imgs[0].caption for c in at.main.get_by_key("picked_point").get("image"))


def slider_values(at: AppTest) -> list[float]:
    return [at.slider(key=f"latent_dim_{dim}").value for dim in range(2)]


@pytest.mark.parametrize("away", ["views/generate.py", "views/classifier.py"])
def test_the_sliders_keep_their_values_after_another_page(app_runs, away):
    """Streamlit drops a widget's state when a page that does not draw it runs: the sliders came back
    at their minimum (and the manifold grid centred on that corner) after a visit to another page."""
    at = open_page("tiny-conv")
    start = slider_values(at)
    assert start != [at.slider(key=f"latent_dim_{dim}").min for dim in range(2)]
    at.switch_page(away).run()
    assert not at.exception
    at.switch_page(PAGE).run()
    assert slider_values(at) == pytest.approx(start)  # test image #0's code, as on the first visit
    # A moved slider keeps its new value too, and the decoded image stays the same.
    slider = at.slider(key="latent_dim_0")
    moved = slider.max if slider.value < (slider.min + slider.max) / 2 else slider.min
    slider.set_value(moved).run()
    decoded = urls_in(at, "latent_decoded")
    grid = urls_in(at, "manifold_grid")
    at.switch_page(away).run()
    at.switch_page(PAGE).run()
    assert slider_values(at) == pytest.approx([moved, start[1]])
    assert urls_in(at, "latent_decoded") == decoded and urls_in(at, "manifold_grid") == grid


def test_a_conditional_runs_label_survives_another_page(app_runs):
    at = open_page("tiny-cond", picked=0)
    label = at.selectbox(key="latent_label")
    # Neither the picked image's class nor the first option (where a dropped widget state lands).
    other = next(name for name in label.options[1:] if name != label.value)
    label.set_value(other).run()
    at.switch_page("views/generate.py").run()
    at.switch_page(PAGE).run()
    assert at.selectbox(key="latent_label").value == other


def test_another_run_starts_its_sliders_at_its_own_first_test_image(app_runs):
    at = open_page("tiny-conv")
    at.slider(key="latent_dim_0").set_value(at.slider(key="latent_dim_0").max).run()
    at.selectbox(key="latent_run").set_value("tiny-vae").run()
    fresh = open_page("tiny-vae")
    assert slider_values(at) == pytest.approx(slider_values(fresh))


def scatter_spec(at: AppTest) -> dict:
    return json.loads(at.main.get_by_key("latent_scatter").get("vega_lite_chart")[0].proto.spec)


def test_the_scatter_has_a_class_legend_no_layer_takes_off(app_runs):
    """Vega-Lite merges the legends of every layer and channel coloured by one field; a `legend: null`
    in the training rings' layer took the class legend off the chart (the browser walk checks the
    drawn entries)."""
    spec = scatter_spec(open_page("tiny-conv"))  # digits: a small test set, so the rings are drawn
    layers = spec["layer"]
    assert len(layers) >= 3  # the click grid, the training rings, the test points
    legends = [channel.get("legend", {}) for layer in layers for channel in layer.get("encoding", {}).values()
               if isinstance(channel, dict) and channel.get("field") == "class"]
    assert len(legends) >= 2 and None not in legends
    points = layers[-1]["encoding"]["color"]
    # Above the plot: below a 600-px plot it was out of a 900-px window (the browser walk measures it).
    assert points["legend"]["orient"] == "top" and points["legend"]["columns"] == 10
    assert len(points["scale"]["range"]) == len(set(points["scale"]["range"])) == 10


@pytest.mark.parametrize("projector", [False, True])
def test_the_scatter_is_larger_and_larger_still_on_a_projector(app_runs, projector):
    at = open_app_page(PAGE, {"selected_run": "tiny-conv", "projector_mode": projector})
    spec = scatter_spec(at)
    size = spec["layer"][-1]["encoding"]["size"]["value"]
    assert spec["height"] == (810 if projector else 600)  # was 480 on both
    assert size == (90 if projector else 40)


def test_a_feature_map_code_is_projected_and_the_sliders_say_why_they_are_not_offered(no_runs, digits):
    cfg = RunConfig(data=DataConfig(dataset="digits", seed=0), model=ModelConfig(family="spatial", latent=4),
                    train=TrainConfig(epochs=1, batch_size=128, device="cpu"), name="tiny-spatial")
    save_run(no_runs, "tiny-spatial", cfg, train(cfg, digits))
    at = open_page("tiny-spatial")
    assert not at.error
    assert at.radio(key="latent_projection").options == ["PCA", "t-SNE"]  # no raw view of a map
    points = scatter_points(at)
    assert len(points) == len(digits.splits["test"]) and points["x"].std() > 0
    (note,) = [i.value for i in at.info if "feature map" in i.value]
    assert note.startswith("This model's code is a feature map of 4×2×2 = 16 numbers: its numbers are the pixels "
                           "of 4 small pictures, not directions of their own, so none gets a slider")
    assert not any(s.label.startswith("z[") for s in at.slider)
    assert urls_in(at, "interpolation")  # the interpolation still decodes between two images' codes


def test_pca_says_how_much_of_the_variance_its_two_axes_hold(app_runs):
    """Issue 21: PCA showed no explained variance."""
    import numpy as np
    from sklearn.decomposition import PCA

    from ui.state import get_run, run_mtime

    at = open_page("tiny-cond")  # latent 4
    at.radio(key="latent_projection").set_value("pca").run()
    run = get_run("tiny-cond", run_mtime("tiny-cond"))
    from ui import inspect_cache

    codes = inspect_cache.encoded_test_set("tiny-cond", run_mtime("tiny-cond"), _run=run)["codes"]
    ratios = PCA(n_components=2, random_state=0).fit(np.asarray(codes, np.float64)).explained_variance_ratio_
    said = next(c.value for c in at.main.caption if c.value.startswith("PCA: the two axes hold"))
    assert f"{ratios.sum():.0%} of the codes' variance" in said and f"PC 1 {ratios[0]:.0%}" in said
    layer = scatter_spec(at)["layer"][-1]["encoding"]
    assert layer["x"]["title"] == f"PC 1 ({ratios[0]:.0%} of the variance)"


def test_the_manifold_grid_of_a_two_dimensional_code_is_centred_on_the_codes_middle(app_runs):
    """Issue 21: the grid was centred on test image #0's code, wherever that lay."""
    import numpy as np

    from ui import inspect_cache
    from ui.state import get_run, run_mtime

    at = open_page("tiny-conv")  # latent 2
    run = get_run("tiny-conv", run_mtime("tiny-conv"))
    codes = inspect_cache.encoded_test_set("tiny-conv", run_mtime("tiny-conv"), _run=run)["codes"]
    middle = (np.percentile(codes, 2, axis=0) + np.percentile(codes, 98, axis=0)) / 2
    caption = " ".join(c for i in at.main.get_by_key("manifold_grid").get("image") for c in i.captions)
    assert f"middle of the test codes ({middle[0]:.2f}, {middle[1]:.2f})" in caption
    assert f"({codes[0][0]:.2f}, {codes[0][1]:.2f})" not in caption or np.allclose(codes[0], middle, atol=5e-3)
