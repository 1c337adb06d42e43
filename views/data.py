"""Data: choose a dataset, see samples per class, class counts per split, what was skipped and
the split sizes. The chosen DataConfig is what Train trains on."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.config import DataConfig
from core.data import DATASETS, DataError, Dataset
from core.charts.training import class_counts_chart, class_counts_frame
from ui.data_folders import folder_choice, torchvision_folder_help
from ui.sidebar import dataset_label, describe_data
from ui.state import DATA_CONFIG_KEY, chosen_data_config, dataset_for
from ui.widgets import show_grid, upscale_for
from ui.projector import images_per_row, projector_on, show_chart
from ui.text import md_message, md_text, plain_text
from ui.url_state import clamped_data_config, data_ranges

TORCHVISION = ("mnist", "fashion-mnist", "cifar10")
SPLIT_LABELS = {"train": "Train", "val": "Validation", "test": "Test"}
PREVIEW_PER_CLASS = 8
PREVIEW_MAX_CLASSES = 20
PREVIEW_COLUMNS = 5
# Projector mode: fewer samples, each drawn at full projector size (2×2 per class across the page);
# 8 of them in a fifth of the page's left part were shrunk back to screen size and blurred.
PROJECTOR_PER_CLASS = 4
PROJECTOR_GRID_ROW = 2
GRID_PADDING = 2  # core.analysis.image_grid's
CHANNEL_LABELS = {1: "Grey (1 channel)", 3: "Colour (3 channels)"}
FOLDER_PROBLEM_KEY = "data_folder_problem"


def data_form(current: DataConfig) -> DataConfig:
    """The dataset widgets, starting from the session's current choice (brought into the widgets'
    ranges first: a widget given a value outside them raises)."""
    current, ranges = clamped_data_config(current), data_ranges()
    names = list(DATASETS)
    cfg = DataConfig()
    cfg.dataset = st.selectbox("Dataset", names, index=names.index(current.dataset), key="data_dataset",
                               format_func=dataset_label)
    st.caption(DATASETS[cfg.dataset])
    if cfg.dataset in TORCHVISION:
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        cfg.data_root = c1.text_input(
            "Data folder", current.data_root, key="data_root",
            help=torchvision_folder_help(cfg.dataset)).strip()
        cfg.download = c2.checkbox("Download if missing", current.download, key="data_download")
    elif cfg.dataset == "folder":
        # --- image folder (served app): a root name + relative path, from the list or typed, or an
        # uploaded zip (ui.data_folders); never a server path. The problem, if any, is shown by main.
        cfg.folder_root, cfg.folder, problem = folder_choice(current)
        st.session_state[FOLDER_PROBLEM_KEY] = problem
        # --- end image folder
        c1, c2 = st.columns(2)
        cfg.image_size = int(c1.number_input("Image size", *ranges["image_size"], current.image_size, 4,
                                             key="data_image_size",
                                             help="Images are resized to this square size in pixels."))
        cfg.channels = c2.radio("Channels", (1, 3), index=(1, 3).index(current.channels), horizontal=True,
                                key="data_channels", format_func=CHANNEL_LABELS.get)
    elif cfg.dataset in ("shapes", "styles"):  # generated: how many, how large
        c1, c2 = st.columns(2)
        count_label = "Number of images" if cfg.dataset == "styles" else "Number of shapes"
        cfg.shapes_count = int(c1.number_input(count_label, *ranges["shapes_count"], current.shapes_count,
                                               500, key="data_shapes_count"))
        cfg.image_size = int(c2.number_input("Image size", *ranges["image_size"], current.image_size, 4,
                                             key="data_image_size"))

    with st.expander("Splits, seed and limits", expanded=False):
        c1, c2, c3 = st.columns(3)
        cfg.val_fraction = float(c1.slider("Validation fraction", *ranges["val_fraction"], current.val_fraction,
                                           0.05, key="data_val_fraction"))
        if cfg.dataset in TORCHVISION:
            c2.caption("Test: the official test set.")
        else:
            cfg.test_fraction = float(c2.slider("Test fraction", *ranges["test_fraction"], current.test_fraction,
                                                0.05, key="data_test_fraction"))
        cfg.seed = int(c3.number_input("Seed", *ranges["seed"], current.seed, 1, key="data_seed",
                                       help="Fixes the split (and the generated shapes)."))
        c1, c2 = st.columns(2)
        cfg.limit = int(c1.number_input("Image limit (0 = all)", *ranges["limit"], current.limit, 500,
                                        key="data_limit", help="Use only this many images, split alike."))
        cfg.balanced = c2.checkbox("Class-balanced sampling", current.balanced, key="data_balanced",
                                   help="Training batches draw every class equally often (for imbalanced "
                                        "folders).")
    return cfg


def load_with_progress(cfg: DataConfig) -> Dataset:
    """The dataset, from memory when it was loaded before; otherwise a progress bar while loading."""
    slot = st.empty()

    def progress(done: int, total: int) -> None:
        slot.progress(done / max(total, 1), text=f"Loading images: {done:,} of {total:,}")

    try:
        with st.spinner("Loading the dataset..."):
            return dataset_for(cfg, progress)
    finally:
        slot.empty()


def split_sizes(dataset: Dataset) -> None:
    columns = st.columns(5)
    columns[0].metric("Images", f"{len(dataset.labels):,}")
    for column, split in zip(columns[1:4], ("train", "val", "test")):
        column.metric(SPLIT_LABELS[split], f"{len(dataset.splits[split]):,}")
    columns[4].metric("Image shape (C×H×W)", "×".join(str(d) for d in dataset.shape))
    st.caption(f"{dataset.num_classes} classes · source: {md_text(dataset.source or dataset.name)}")


def preview(dataset: Dataset) -> None:
    """A few training images of each class, one small grid per class with its name; on a projector
    fewer, each at its full enlarged size (as many classes a row as fit)."""
    st.subheader("Samples per class")
    images, labels = dataset.split("train")
    scale = upscale_for(dataset.shape[1])
    per_class, grid_row, per_row = PREVIEW_PER_CLASS, 4, PREVIEW_COLUMNS
    if projector_on():
        per_class, grid_row = PROJECTOR_PER_CLASS, PROJECTOR_GRID_ROW
        grid_width = grid_row * (dataset.shape[2] * scale + GRID_PADDING) + GRID_PADDING
        per_row = images_per_row(grid_width, PREVIEW_COLUMNS)
    shown = dataset.class_names[:PREVIEW_MAX_CLASSES]
    for start in range(0, len(shown), per_row):
        columns = st.columns(per_row)
        for column, label in zip(columns, range(start, min(start + per_row, len(shown)))):
            picks = images[labels == label][:per_class]
            with column:
                if len(picks):
                    show_grid(picks, caption=md_text(dataset.class_names[label]), nrow=grid_row, scale=scale)
                else:
                    st.caption(f"{md_text(dataset.class_names[label])}: no training images")
    if len(dataset.class_names) > len(shown):
        st.caption(f"... and {len(dataset.class_names) - len(shown)} more classes.")


def class_counts(dataset: Dataset) -> None:
    st.subheader("Images per class")
    counts = {split: dataset.class_counts(split) for split in ("train", "val", "test")}
    frame = class_counts_frame({SPLIT_LABELS[s].lower(): c for s, c in counts.items()})
    # The subheader above names the chart; no second title inside it.
    show_chart(class_counts_chart(frame, dataset.class_names).properties(height=280, title=""),
                    key="class_counts_chart")
    table = pd.DataFrame({SPLIT_LABELS[s]: pd.Series(c) for s, c in counts.items()})
    table["Total"] = table.sum(axis=1)
    table.index.name = "Class"
    with st.expander("Class counts as a table"):
        st.dataframe(table, key="class_counts_table")


def skipped_files(dataset: Dataset) -> None:
    if not dataset.skipped:
        if dataset.name == "folder":
            st.caption("Every file in the folder was read.")
        return
    st.warning(f"{len(dataset.skipped)} file(s) could not be used and were skipped.")
    st.dataframe(pd.DataFrame([(plain_text(f), plain_text(why)) for f, why in dataset.skipped],
                              columns=["File", "Why it was skipped"]),
                 hide_index=True, key="skipped_table")


def main() -> None:
    st.title("Data")
    chosen = chosen_data_config()
    cfg = data_form(chosen)
    if cfg.dataset == "folder" and st.session_state.get(FOLDER_PROBLEM_KEY):
        st.error(md_message(st.session_state[FOLDER_PROBLEM_KEY]))
        return
    if cfg.dataset == "folder" and not cfg.folder_root:
        st.info("Choose a dataset found on this server, type a folder inside its data folders, or upload a "
                ".zip of class folders.")
        return
    try:
        dataset = load_with_progress(cfg)
    except DataError as exc:
        st.error(md_message(exc))
        if DATA_CONFIG_KEY in st.session_state:
            st.caption(f"Train keeps using {describe_data(chosen)} until a dataset loads here.")
        return
    # Only a dataset that loaded becomes the one Train uses.
    st.session_state[DATA_CONFIG_KEY] = cfg
    split_sizes(dataset)
    skipped_files(dataset)
    if projector_on():  # the samples need the page's width to be drawn at projector size
        preview(dataset)
        class_counts(dataset)
    else:
        left, right = st.columns([3, 2])
        with left:
            preview(dataset)
        with right:
            class_counts(dataset)
    st.page_link("views/train.py", label="Train on this dataset", icon=":material/model_training:")


main()
