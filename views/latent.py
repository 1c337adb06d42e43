"""Latent space: the encoded test set as a scatter (raw, PCA or t-SNE), a click decodes a point,
sliders move through the code space live, a manifold grid and an interpolation between images."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core import analysis
from ui import inspect_cache
from core.charts.inspect import PICKED, PLANE, POINT_SIZE, latent_scatter, plane_grid
from ui.errors import error_text
from ui.state import run_mtime
from ui.widgets import run_heading, run_picker, show_grid, side_by_side_runs, upscale_for
from ui.projector import chart_height, projector_on, show_chart
from ui.text import md_message, md_text

# The picked test image (its index in the test split). A click on the scatter sets it; tests
# and other pages may set it directly.
PICKED_KEY = "latent_picked_index"
PICK_KEY = "latent_pick"  # the last click: a test image or a spot of the plane (see update_pick)
SEEN_CLICKS_KEY = "latent_seen_clicks"  # the chart's selections last run, to tell which one is new
SPOT_LABEL_KEY = "latent_spot_label"
# Below this many test images the scatter also shows training images (inspect_cache.TRAINING_POINTS).
SMALL_TEST_SET = 500
# The sliders' values and the decoding label, with the (run, test image) they started from, so a
# new pick moves them once. A plain session key, not the widgets' own: Streamlit drops a widget's
# key when a page that does not draw it runs, and the sliders came back at their minimum.
SLIDERS_KEPT_KEY = "latent_sliders_kept"
LABEL_KEY = "latent_label"
MAX_SLIDERS = 16
PROJECTIONS = {"raw": "Raw 2-D", "pca": "PCA", "tsne": "t-SNE"}
AXIS_TITLES = {"raw": ("z[0]", "z[1]"), "pca": ("PC 1", "PC 2"), "tsne": ("t-SNE 1", "t-SNE 2")}
COLOURINGS = {"class": "Class", "cluster": "k-means cluster", "factor": "Generating factor"}
# The scatter: its height in px (chart_height makes it taller on a projector), its share of the page
# width beside the picked image (more on a projector), and its points' area on a projector (px²;
# POINT_SIZE on a screen).
SCATTER_HEIGHT = 600
SCATTER_COLUMNS = [2, 1]
PROJECTOR_SCATTER_COLUMNS = [3, 1]
PROJECTOR_POINT_SIZE = 90


LOOK_FOR = ("**What to look for:** whether images of one class land together, which classes overlap "
             "(those get confused), and what the empty space between groups decodes to — click it.")

def code_label(model) -> str:
    """'16' for a code vector, '16×8×8 = 1,024 numbers' for a feature map."""
    if not model.code_is_map:
        return str(model.code_size)
    return f"{'×'.join(map(str, model.code_shape))} = {model.code_size:,} numbers"


def slider_key(dim: int) -> str:
    return f"latent_dim_{dim}"


def clicked(event, name: str, field_names: tuple[str, ...]) -> tuple | None:
    """The values of a click selection in the chart event, when it holds one (else None)."""
    chosen = (event.selection.get(name) or []) if event else []
    if chosen and all(f in chosen[0] for f in field_names):
        return tuple(chosen[0][f] for f in field_names)
    return None


def update_pick(event, run_name: str, projection: str) -> dict | None:
    """The current pick: {"kind": "image", "index": i} (a test point) or {"kind": "spot", "xy": (x, y)}
    (anywhere on the plane). A new click replaces it; it is forgotten when the run changes, and a
    spot also when the projection does (its coordinates mean something else there). Kept in
    session state, so it survives redraws that clear the chart's own selection."""
    pick = st.session_state.get(PICK_KEY)
    if pick and (pick["run"] != run_name or (pick["kind"] == "spot" and pick["projection"] != projection)):
        pick = None
        st.session_state.pop(PICKED_KEY, None)
    seen = st.session_state.get(SEEN_CLICKS_KEY, {})
    image, spot = clicked(event, PICKED, ("index",)), clicked(event, PLANE, ("gx", "gy"))
    # Both selections live in one chart: the one whose value changed is the new click.
    if image is not None and image != seen.get("image"):
        pick = {"kind": "image", "index": int(image[0])}
    elif spot is not None and spot != seen.get("spot"):
        pick = {"kind": "spot", "xy": (float(spot[0]), float(spot[1]))}
    st.session_state[SEEN_CLICKS_KEY] = {"image": image, "spot": spot}
    if pick is not None:
        pick = {**pick, "run": run_name, "projection": projection}
        if pick["kind"] == "image":
            st.session_state[PICKED_KEY] = pick["index"]
    st.session_state[PICK_KEY] = pick
    return pick


def picked_from(pick: dict | None, total: int) -> int | None:
    """The picked test image's index (also when a test or another page set PICKED_KEY)."""
    if pick and pick["kind"] == "spot":
        return None
    picked = st.session_state.get(PICKED_KEY)
    return int(picked) if picked is not None and 0 <= int(picked) < total else None


def scatter_section(run, codes, labels, errors, dataset, test_indices, images, labels_t, scale,
                    train_codes=None, train_labels=None) -> int | None:
    """Projection and colouring controls, the scatter, and the picked point; returns the pick."""
    total, latent = codes.shape
    class_names = dataset.class_names
    projection_col, points_col, colour_col = st.columns(3)
    # A feature-map code's first two numbers are two pixels of one channel: no raw view of it.
    offered = [p for p in PROJECTIONS if not (run.model.code_is_map and p == "raw")]
    if st.session_state.get("latent_projection") not in offered:
        st.session_state["latent_projection"] = offered[0]
    projection = projection_col.radio("Projection", offered, format_func=PROJECTIONS.get,
                                      key="latent_projection", horizontal=True)
    choices = [c for c in inspect_cache.LATENT_POINT_CHOICES if c < total] + \
        [min(total, inspect_cache.MAX_LATENT_POINTS)]
    if len(choices) > 1:
        points = points_col.select_slider(
            "Points shown", choices, value=min(inspect_cache.DEFAULT_LATENT_POINTS, choices[-1]),
            key="latent_points", help="The first test images; t-SNE takes longer the more points.")
    else:  # a small test set: nothing to choose
        points = choices[0]
        points_col.metric("Points shown", f"{points:,}")
    colourings = ["class", "cluster"] + (["factor"] if dataset.factors else [])
    colour_by = colour_col.radio("Colour by", colourings, format_func=COLOURINGS.get,
                                 key="latent_colour", horizontal=True)

    table = pd.DataFrame({"index": np.arange(points),
                          "class": [class_names[int(c)] for c in labels[:points]],
                          "error": errors[:points]})
    colour, colour_title, quantitative = "class", "Class", False
    if colour_by == "cluster":
        k = st.slider("Clusters (k)", 2, 20, min(max(dataset.num_classes, 2), 20), key="latent_k")
        table["cluster"] = inspect_cache.clusters(run.name, run_mtime(run.name), points, k, 0,
                                                  _codes=codes)
        colour, colour_title = "cluster", f"Cluster (k = {k})"
    elif colour_by == "factor":
        factor = st.selectbox("Generating factor", list(dataset.factors), key="latent_factor")
        values = np.asarray(dataset.factors[factor])[test_indices][:points]
        quantitative = np.issubdtype(values.dtype, np.floating)
        table[factor] = values if quantitative or factor != "shape" else \
            [class_names[int(v)] for v in values]
        colour, colour_title = factor, factor.capitalize()

    if projection == "tsne":
        with st.spinner(f"Running t-SNE on {points:,} codes (done once, then cached)..."):
            xy = inspect_cache.projected(run.name, run_mtime(run.name), points, projection, 0,
                                         _codes=codes)
    else:
        xy = inspect_cache.projected(run.name, run_mtime(run.name), points, projection, 0,
                                     _codes=codes)
    table["x"], table["y"] = xy[:, 0], xy[:, 1]
    if projection == "raw" and latent != 2:
        st.caption(f"The latent has {latent} dimensions: the raw view shows only the first two "
                   "coordinates; PCA or t-SNE show more of the structure.")
    x_title, y_title = AXIS_TITLES[projection]
    if projection == "pca" and latent > 2:
        first, second, both = inspect_cache.pca_explained(run.name, run_mtime(run.name), points, _codes=codes)
        x_title, y_title = f"PC 1 ({first:.0%} of the variance)", f"PC 2 ({second:.0%})"
        st.caption(f"PCA: the two axes hold {both:.0%} of the codes' variance (PC 1 {first:.0%}, PC 2 "
                   f"{second:.0%}); the other {latent - 2} directions hold the rest"
                   + (", so much of the structure is not in this picture." if both < 0.5 else "."))
    train_points = None
    plane_codes = codes[:points]  # the codes the plane's projection was fitted on (for its inverse)
    if train_codes is not None and len(train_codes):
        plane_codes = np.concatenate([codes[:points], train_codes])
        # A small test set: the training images too (faint rings), so the plane is not empty.
        both = inspect_cache.projected_with_training(run.name, run_mtime(run.name), points, projection, 0,
                                                     _codes=codes, _train_codes=train_codes)
        table["x"], table["y"] = both[:points, 0], both[:points, 1]
        train_points = pd.DataFrame({"x": both[points:, 0], "y": both[points:, 1],
                                     "class": [class_names[int(c)] for c in train_labels]})
    # The click of the run before (the chart's state) decides the marker drawn now.
    pick = update_pick(st.session_state.get("latent_chart"), run.name, projection)
    marker = pick["xy"] if pick and pick["kind"] == "spot" else None
    grid = plane_grid(table["x"], table["y"]) if projection != "tsne" else None
    chart = latent_scatter(table, colour, colour_title, quantitative, x_title, y_title,
                           class_order=class_names, grid=grid, train_points=train_points, marker=marker,
                           point_size=PROJECTOR_POINT_SIZE if projector_on() else POINT_SIZE)
    chart_col, pick_col = st.columns(PROJECTOR_SCATTER_COLUMNS if projector_on() else SCATTER_COLUMNS, gap="medium")
    with chart_col, st.container(key="latent_scatter"):
        event = show_chart(chart.properties(height=chart_height(SCATTER_HEIGHT)), on_select="rerun",
                           key="latent_chart")
        extra = f" and {len(train_points):,} training images (rings)" if train_points is not None else ""
        st.caption(f"{points:,} of {total:,} test images{extra}. Click a point to see its image, or click "
                   "anywhere to decode that spot" + (" (t-SNE: points only)" if projection == "tsne" else "")
                   + "; double-click clears.")
    pick = update_pick(event, run.name, projection)
    picked = picked_from(pick, total)
    with pick_col:
        picked_section(run, pick, picked, images, labels_t, codes, errors, class_names, scale * 2, projection,
                       plane_codes)
    return picked


def picked_section(run, pick, picked, images, labels, codes, errors, class_names, scale, projection,
                   plane_codes) -> None:
    """Beside the scatter: the picked test image and its decoding, or the decoding of the clicked spot."""
    with st.container(key="picked_point"):
        if pick and pick["kind"] == "spot":
            x, y = pick["xy"]
            try:
                code = analysis.code_at(plane_codes, projection, (x, y))
            except ValueError as exc:
                st.info(md_message(exc))
                return
            label = None
            if run.config.model.conditional:
                name = st.selectbox("Label for decoding the spot", class_names, key=SPOT_LABEL_KEY)
                label = class_names.index(name)
            show_grid(analysis.decode(run.model, code, label), scale=scale,
                      caption=f"Decoded from the clicked spot ({x:.2f}, {y:.2f})")
            if projection == "raw" and codes.shape[1] > 2:
                st.caption("The other latent coordinates are at the test codes' mean.")
            elif projection == "pca":
                st.caption("PCA's inverse map turns the spot back into a full latent code.")
            return
        if picked is None:
            st.info("Click a point to see that test image and its reconstruction, or click anywhere "
                    "on the plane to decode that spot.")
            return
        label = int(labels[picked])
        show_grid(images[picked:picked + 1], scale=scale,
                  caption=f"Test image #{picked} ({md_text(class_names[label])})")
        show_grid(analysis.decode(run.model, codes[picked], label), scale=scale,
                  caption=f"Its code decoded (MSE {errors[picked]:.4f})")


def code_ranges(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slider range per dimension: the codes' min and max (widened where a dimension is dead)."""
    low, high = codes.min(axis=0).astype(float), codes.max(axis=0).astype(float)
    flat = high - low < 1e-6
    return np.where(flat, low - 1.0, low), np.where(flat, high + 1.0, high)


def manifold_window(codes: np.ndarray, dim_x: int, dim_y: int) -> tuple[tuple[float, float], float]:
    """((centre x, centre y), half-width) of the manifold grid: the middle of the test codes' 2nd to
    98th percentiles in the two dimensions, and half the wider of those ranges."""
    low = np.percentile(codes[:, [dim_x, dim_y]], 2, axis=0)
    high = np.percentile(codes[:, [dim_x, dim_y]], 98, axis=0)
    centre = (low + high) / 2
    span = float(max((high - low).max() / 2, 1e-3))
    return (float(centre[0]), float(centre[1])), span


@st.fragment
def explore_section(run, codes, labels, origin, class_names, scale) -> None:
    """Latent sliders decoding live, and the manifold grid around the sliders' code. A fragment:
    moving a slider reruns only this part, not the scatter."""
    total, latent = codes.shape
    if run.model.code_is_map:
        st.subheader("Latent sliders")
        st.info(f"This model's code is a feature map of {code_label(run.model)}: its numbers are the pixels of "
                f"{run.model.code_shape[0]} small pictures, not directions of their own, so none gets a slider and "
                "no two make a plane; PCA and t-SNE above show its structure, and the interpolation below walks "
                "between two images' codes.", icon=":material/info:")
        return
    low, high = code_ranges(codes)
    origin_code = codes[origin]
    conditional = run.config.model.conditional
    kept = st.session_state.get(SLIDERS_KEPT_KEY)
    if kept is None or kept["origin"] != (run.name, origin):
        # A new pick (or run): the sliders and the label start from that image.
        kept = {"origin": (run.name, origin), "label": class_names[int(labels[origin])],
                "values": {dim: float(np.clip(origin_code[dim], low[dim], high[dim])) for dim in range(latent)}}
        st.session_state[SLIDERS_KEPT_KEY] = kept
        for dim in range(latent):
            st.session_state[slider_key(dim)] = kept["values"][dim]
        st.session_state[LABEL_KEY] = kept["label"]
    else:
        # Back from another page, which dropped the widgets' keys: they take the kept values.
        for dim in range(latent):
            if slider_key(dim) not in st.session_state:
                st.session_state[slider_key(dim)] = float(np.clip(kept["values"][dim], low[dim], high[dim]))
        if LABEL_KEY not in st.session_state:
            st.session_state[LABEL_KEY] = kept["label"]

    st.subheader("Latent sliders")
    st.caption(f"Each slider is one latent coordinate, starting at test image #{origin}'s code; "
               "the range is what the test set's codes span.")
    if latent > MAX_SLIDERS:
        dims = st.multiselect("Dimensions with sliders", list(range(latent)),
                              default=list(range(MAX_SLIDERS)), max_selections=MAX_SLIDERS,
                              key="latent_slider_dims",
                              help="The other dimensions stay at the starting image's code.")
    else:
        dims = list(range(latent))
    label = None
    if conditional:
        name = st.selectbox("Label for decoding", class_names, key=LABEL_KEY,
                            help="A conditional decoder draws the code as this class.")
        kept["label"] = name
        label = class_names.index(name)

    code = origin_code.astype(np.float32).copy()
    sliders_col, decoded_col = st.columns([3, 2])
    with sliders_col:
        columns = st.columns(2)
        for n, dim in enumerate(dims):
            with columns[n % 2]:
                value = st.slider(f"z[{dim}]", float(low[dim]), float(high[dim]),
                                  step=float((high[dim] - low[dim]) / 100), format="%.3f",
                                  key=slider_key(dim))
                code[dim] = kept["values"][dim] = float(value)
    with decoded_col, st.container(key="latent_decoded"):
        show_grid(analysis.decode(run.model, code, label), scale=scale * 2, caption="Decoded from the sliders")

    st.subheader("Manifold grid")
    if latent < 2:
        st.info("A manifold grid needs at least two latent dimensions.")
        return
    x_col, y_col, steps_col = st.columns(3)
    dim_x = x_col.selectbox("Horizontal dimension", list(range(latent)), index=0,
                            format_func=lambda d: f"z[{d}]", key="manifold_x")
    dim_y = y_col.selectbox("Vertical dimension", list(range(latent)), index=1,
                            format_func=lambda d: f"z[{d}]", key="manifold_y")
    steps = steps_col.slider("Grid steps", 3, 15, 9, key="manifold_steps")
    if dim_x == dim_y:
        st.info("Pick two different dimensions for the grid.")
        return
    # Centred on the middle of where the test codes lie in these two dimensions (not on one test
    # image's code, which may sit at the edge), spanning their 2nd to 98th percentiles: the grid
    # covers where the encoder actually puts images.
    centre, span = manifold_window(codes, dim_x, dim_y)
    grid_code = code.copy()
    grid_code[dim_x], grid_code[dim_y] = centre
    grid = analysis.manifold_grid(run.model, grid_code, dim_x, dim_y, span, steps, label=label)
    others = "" if latent == 2 else "; the other coordinates as the sliders"
    with st.container(key="manifold_grid"):
        show_grid(grid, nrow=steps, scale=scale,
                  caption=f"z[{dim_x}] left to right, z[{dim_y}] bottom to top, each ±{span:.2f} around the "
                          f"middle of the test codes ({centre[0]:.2f}, {centre[1]:.2f}), covering where 96% of "
                          f"them lie{others}")


@st.fragment
def interpolation_section(run, images, labels, origin, class_names, scale) -> None:
    st.subheader("Interpolation")
    total = len(labels)
    other = next((i for i in range(total) if labels[i] != labels[origin]), (origin + 1) % total)
    a_col, b_col, steps_col = st.columns(3)
    a = a_col.number_input("First test image", 0, total - 1, origin, key="interp_a")
    b = b_col.number_input("Second test image", 0, total - 1, other, key="interp_b")
    steps = steps_col.slider("Interpolation steps", 3, 16, 8, key="interp_steps")
    conditional = run.config.model.conditional
    frames = analysis.interpolate(run.model, images[a], images[b], steps,
                                  label_a=int(labels[a]) if conditional else None,
                                  label_b=int(labels[b]) if conditional else None)
    with st.container(key="interpolation"):
        show_grid(frames, nrow=steps, scale=scale,
                  caption=f"Decoded straight line between the codes of test image #{a} "
                          f"({class_names[int(labels[a])]}) and #{b} ({class_names[int(labels[b])]})")


def latent_side_by_side(run, class_names, labels) -> None:
    """Other runs on the same data: their test codes in the same projection, one panel per run
    (e.g. latent 2 / 4 / 6, AE vs VAE)."""
    others = side_by_side_runs(run, "latent_with", "Other runs on the same dataset: the same test images in "
                                                   "the same projection, one panel per run.")
    if not others:
        return
    projection = st.session_state.get("latent_projection", "raw")
    points = min(len(labels), inspect_cache.DEFAULT_LATENT_POINTS)
    with st.container(key="latent_side_by_side"):
        for column, each in zip(st.columns(len(others) + 1), [run, *others]):
            with column:
                run_heading(each.name)
                shown = "pca" if projection == "raw" and each.model.code_is_map else projection  # no raw map view
                try:
                    codes = inspect_cache.encoded_test_set(each.name, run_mtime(each.name), _run=each)["codes"]
                    xy = inspect_cache.projected(each.name, run_mtime(each.name), points, shown, 0, _codes=codes)
                except Exception as exc:  # core's refusals as their sentence, a bug as one (ui.errors)
                    st.error(error_text(exc))
                    continue
                table = pd.DataFrame({"index": np.arange(points), "x": xy[:, 0], "y": xy[:, 1],
                                      "class": [class_names[int(c)] for c in labels[:points]],
                                      "error": np.zeros(points)})
                st.caption(f"Latent {code_label(each.model)}, {PROJECTIONS[shown]}")
                show_chart(latent_scatter(table, "class", "Class", False, *AXIS_TITLES[shown], class_order=class_names)
                           .properties(height=chart_height(320)), key=f"latent_side_{each.name}")


def main() -> None:
    st.title("Latent space")
    st.info(LOOK_FOR, icon=":material/visibility:")
    st.caption("Where the encoder puts every test image, and what the decoder makes of any point.")
    run = run_picker("Run", key="latent_run")
    if run is None:
        return
    try:
        images, labels, dataset = inspect_cache.test_split(run)
        encoded = inspect_cache.encoded_test_set(run.name, run_mtime(run.name), _run=run)
        errors = inspect_cache.test_errors(run.name, run_mtime(run.name), _run=run)
    except Exception as exc:  # core's refusals as their sentence, a bug as one (ui.errors)
        st.error(error_text(exc))
        return
    codes = encoded["codes"]
    scale = upscale_for(dataset.shape[-1])
    test_indices = dataset.splits["test"].numpy()

    train_codes = train_labels = None
    if len(labels) < SMALL_TEST_SET:
        encoded_train = inspect_cache.encoded_training_images(run.name, run_mtime(run.name), _run=run)
        train_codes, train_labels = encoded_train["codes"], encoded_train["labels"]
    picked = scatter_section(run, codes, labels.numpy(), errors, dataset, test_indices, images, labels, scale,
                             train_codes, train_labels)
    latent_side_by_side(run, dataset.class_names, labels.numpy())
    origin = picked if picked is not None else 0
    explore_section(run, codes, labels.numpy(), origin, dataset.class_names, scale)
    interpolation_section(run, images, labels.numpy(), origin, dataset.class_names, scale)


main()
