"""Generate: new images from a run's decoder. Samples from the VAE prior, or from a Gaussian
fitted to a plain autoencoder's codes next to samples from N(0, I); for a conditional model, one
code decoded with every label ("style transfer") and a test image decoded with a wrong label."""
from __future__ import annotations

import numpy as np
import streamlit as st

from core import analysis
from core.config import ModelConfig, RunConfig
from ui import inspect_cache
from ui.errors import error_text
from ui.state import DATA_CONFIG_KEY, run_mtime
from ui.train_settings import TRAIN_FORM_KEY
from ui.widgets import run_heading, run_picker, show_grid, side_by_side_runs, upscale_for
from ui.text import md_text

RUN_KEY = "generate_run"
SAMPLES_KEY = "generate_samples"
SEED_KEY = "generate_seed"
IMAGE_KEY = "generate_image"
WRONG_LABEL_KEY = "generate_wrong_label"
SMALL_LATENT = 2  # a code this small cannot also hold the class (the latent-2 lesson)
# Decodings of one code with every label that differ less than this (relative to how much the test
# images differ from each other, inspect_cache.label_spread_ratio) mean the decoder ignores the label.
LABEL_IGNORED = 0.2
MAX_GRID_ROWS = 10
LOOK_FOR = ("**What to look for:** whether random codes decode to things that look like the data (a VAE's "
            "prior samples should, a plain autoencoder's mostly not), and — for a conditional model — whether "
            "changing only the label changes the class while the style stays.")

WHY_VAE = (
    "**Why do a VAE's samples look better?** A decoder draws good images only for codes like "
    "the ones it met in training. A VAE's loss has a KL term that pulls the code of every image "
    "towards the prior N(0, I), so the codes fill that round cloud without big holes, and a "
    "random point drawn from N(0, I) lands where the decoder knows what to draw. A plain "
    "autoencoder's codes are free to sit anywhere: they occupy an irregular region (clumps per "
    "class, stretched and offset, with empty gaps between them) that N(0, I) knows nothing "
    "about, so most of its samples decode to blurs. A Gaussian fitted to the codes (their mean "
    "and covariance) at least lands in the right area, but it still puts many points in the gaps "
    "between the clumps, which decode to smudges and mixtures of classes."
)


def single(image, scale: int) -> np.ndarray:
    """One C×H×W image (float or uint8) as an upscaled H×W×3 array for st.image."""
    return analysis.image_grid(image, nrow=1, padding=0, scale=scale)


def show_row(images: list, captions: list[str], scale: int, per_row: int) -> None:
    """Images side by side at their upscaled pixel size, each with its caption, `per_row` to a
    row. One column per image: the gaps keep dark-background images apart."""
    for first in range(0, len(images), per_row):
        columns = st.columns(per_row)
        for column, image, caption in zip(columns, images[first:first + per_row],
                                          captions[first:first + per_row]):
            picture = single(image, scale)
            # An explicit width: a caption wider than the image would otherwise stretch it.
            column.image(picture, caption=caption, width=picture.shape[1])


def show_samples(run, dataset, n: int, seed: int, scale: int) -> None:
    model = run.model
    conditional = run.config.model.conditional
    # A conditional model's samples cycle through the labels 0, 1, ..., K-1 (core.analysis.sample),
    # so with K images per row each column is one class.
    nrow = dataset.num_classes if conditional else 8
    per_column = (f" Each column is one class, left to right: {md_text(', '.join(dataset.class_names))}."
                  if conditional else "")

    if run.config.model.vae:
        st.subheader("Samples from the prior N(0, I)")
        images = analysis.sample(model, n, seed=seed)
        show_grid(images, nrow=nrow, scale=scale,
                  caption=f"{n} random codes z ~ N(0, I), decoded.{per_column}")
        collapse_warning(run, dataset)
        st.markdown(WHY_VAE)
        return

    st.subheader("Samples from a Gaussian fitted to the codes, and from N(0, I)")
    encoded = inspect_cache.encoded_test_set(run.name, run_mtime(run.name), _run=run)
    fitted = analysis.sample(model, n, codes_for_fit=encoded["codes"], seed=seed)
    prior = analysis.sample(model, n, seed=seed, prior=True)
    left, right = st.columns(2)
    with left:
        show_grid(fitted, nrow=nrow, scale=scale,
                  caption=f"Fitted Gaussian: mean and covariance of the codes of "
                          f"{len(encoded['codes'])} test images, {n} samples decoded.{per_column}")
    with right:
        show_grid(prior, nrow=nrow, scale=scale,
                  caption=f"N(0, I): what a VAE would sample, {n} samples decoded. This "
                          f"autoencoder was not trained to put its codes there.{per_column}")
    st.markdown(WHY_VAE)


def collapse_warning(run, dataset) -> None:
    """Say so when a VAE's prior samples are all about the same image (not trained enough, or collapsed
    onto the prior): the explanation below (samples that look like the data) does not hold for that run."""
    ratio = inspect_cache.prior_spread_ratio(run.name, run_mtime(run.name), _run=run, _dataset=dataset)
    if ratio >= analysis.COLLAPSED_SPREAD:
        return
    st.warning(f"These samples barely differ (their pixels vary {ratio:.0%} as much as the test images'): this "
               "VAE's codes carry almost nothing, so every code decodes to about the average image; train it for "
               "more epochs, or with a lower beta if its KL part stays near 0 (VAEs on images smaller than 28×28 "
               "trained before 30 November 2026 weighed the KL too heavily).", icon=":material/warning:")


def label_advice(run, dataset) -> None:
    """Say what changing the label does for this run, measured (inspect_cache.label_spread_ratio):
    the page claims that each label draws its own class only when the decodings differ. With a roomy
    code the decoder may read everything from the code and ignore the label; a smaller code leaves it
    no choice."""
    ratio = inspect_cache.label_spread_ratio(run.name, run_mtime(run.name), _run=run, _dataset=dataset)
    latent = run.config.model.latent
    if ratio >= LABEL_IGNORED:
        st.success(f"Changing the label changes the decoded image: one code's decodings with the {dataset.num_classes} "
                   f"labels differ {ratio:.0%} as much as the test images differ from each other, so each label "
                   "draws something of its own; look below at what it keeps.", icon=":material/check_circle:")
        return
    st.warning(f"Changing the label barely changes the decoded image (one code's decodings with the "
               f"{dataset.num_classes} labels differ only {ratio:.0%} as much as the test images do): this decoder "
               f"reads what it draws from the code ({latent} dimensions) and ignores the label."
               + (f" Train a conditional model with a latent of {SMALL_LATENT}, too small to hold everything, to see "
                  "the label take over." if latent > SMALL_LATENT else " Train it for more epochs."),
               icon=":material/lightbulb:")
    if latent > SMALL_LATENT and st.button(f"Set up a conditional run with latent {SMALL_LATENT}",
                                           key="generate_small_latent", icon=":material/model_training:"):
        form = RunConfig(data=run.config.data, model=run.config.model, train=run.config.train)
        form.model = ModelConfig(**{**vars(run.config.model), "latent": SMALL_LATENT, "conditional": True})
        st.session_state[TRAIN_FORM_KEY] = form
        st.session_state[DATA_CONFIG_KEY] = run.config.data  # the same data as this run
        st.switch_page("views/train.py")


def show_label_grid(run, dataset, images, labels, scale: int) -> None:
    """One test image of each class per row, decoded with every label: each column is one label,
    named above it; each row names its test image's class."""
    names = dataset.class_names
    rows = [int(np.flatnonzero(labels.numpy() == c)[0]) for c in range(len(names)) if (labels == c).any()]
    rows = rows[:MAX_GRID_ROWS]
    st.subheader("Every class with every label")
    st.caption("Each row: one test image (its class on the left) encoded once; each column: the label given to "
               "the decoder.")
    widths = [2, 1] + [1] * len(names)
    with st.container(key="label_grid"):
        header = st.columns(widths, vertical_alignment="bottom")
        header[0].markdown("**test image's class**")
        header[1].markdown("**original**")
        for column, name in zip(header[2:], names):
            column.markdown(f"**{md_text(name)}**")
        for i in rows:
            code = analysis.encode(run.model, images[i:i + 1], labels[i:i + 1])[0]
            decoded = analysis.decode_with_every_label(run.model, code, len(names))
            row = st.columns(widths, vertical_alignment="center")
            row[0].markdown(f"**{md_text(names[int(labels[i])])}**")
            for column, image in zip(row[1:], [images[i], *decoded]):
                column.image(single(image, scale), width="stretch")


def samples_side_by_side(runs: list, n: int, seed: int, scale: int) -> None:
    """One column per run: n samples with the same seed (a VAE from its prior, an autoencoder from
    a Gaussian fitted to its test codes)."""
    st.subheader("Samples side by side")
    with st.container(key="generate_side_by_side"):
        for column, each in zip(st.columns(len(runs)), runs):
            with column:
                run_heading(each.name)
                if each.config.model.vae:
                    images, how = analysis.sample(each.model, n, seed=seed), "from the prior N(0, I)"
                else:
                    codes = inspect_cache.encoded_test_set(each.name, run_mtime(each.name), _run=each)["codes"]
                    images = analysis.sample(each.model, n, codes_for_fit=codes, seed=seed)
                    how = "from a Gaussian fitted to its codes"
                show_grid(images, nrow=4, scale=scale, caption=f"{n} samples {how}")


def show_style_transfer(run, dataset, images, labels, scale: int) -> None:
    model = run.model
    names = dataset.class_names
    label_advice(run, dataset)
    st.subheader("Style transfer: one code, every label")
    st.caption("A conditional decoder gets the label as well as the code, so the code is free to hold what the "
               "label does not say: for digits the handwriting (thickness, slant, size), for the styles dataset "
               "the shape, its place and size. Decode one image's code with every label to see what carries over.")
    index = int(st.number_input("Test image", min_value=0, max_value=len(labels) - 1, value=0,
                                step=1, key=IMAGE_KEY,
                                help=f"Index into the {len(labels)} test images."))
    image, true_label = images[index:index + 1], labels[index:index + 1]
    true_name = names[int(true_label)]
    code = analysis.encode(model, image, true_label)
    every = analysis.decode_with_every_label(model, code[0], dataset.num_classes)

    # The original first, then its code with each label: one row for up to eleven classes.
    show_row([image[0], *every], [f"Original: {md_text(true_name)}", *map(md_text, names)], scale,
             per_row=min(len(names) + 1, 12))
    st.caption(f"Test image {index}, a '{md_text(true_name)}', encoded once, then decoded with each label "
               "in turn (captions: the label given to the decoder).")

    st.subheader("The same image with a wrong label")
    wrong_names = [n for n in names if n != true_name]
    wrong_name = st.selectbox("Wrong label", wrong_names, key=WRONG_LABEL_KEY)
    with_true = analysis.decode(model, code, int(true_label))
    with_wrong = analysis.decode(model, code, names.index(wrong_name))
    # Twice the usual size: these three are the point of the section.
    show_row([image[0], with_true[0], with_wrong[0]],
             [f"Test image {index} ({md_text(true_name)})", f"Decoded with its true label '{md_text(true_name)}'",
              f"Decoded with the wrong label '{md_text(wrong_name)}'"], 2 * scale, per_row=6)
    show_label_grid(run, dataset, images, labels, scale)


def main() -> None:
    st.title("Generate")
    st.caption("Decode codes the model never saw: random ones, or one image's code with a "
               "different label.")
    st.info(LOOK_FOR, icon=":material/visibility:")
    run = run_picker(key=RUN_KEY)
    if run is None:
        return
    try:
        images, labels, dataset = inspect_cache.test_split(run)
    except Exception as exc:  # core's refusals as their sentence, a bug as one (ui.errors)
        st.error(error_text(exc))
        return
    scale = upscale_for(dataset.shape[-1])

    left, right = st.columns(2)
    n = int(left.number_input("Samples", min_value=1, max_value=256, value=32, step=8,
                              key=SAMPLES_KEY))
    seed = int(right.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1,
                                  key=SEED_KEY, help="The same seed draws the same codes."))
    others = side_by_side_runs(run, "generate_with", "Other runs on the same dataset (e.g. AE vs VAE): "
                                                     "samples from the same seed, one column per run.")
    try:
        if others:
            samples_side_by_side([run, *others], n, seed, scale)
        show_samples(run, dataset, n, seed, scale)
        if run.config.model.conditional:
            show_style_transfer(run, dataset, images, labels, scale)
        else:
            st.info("Style transfer (one code decoded with every label) needs a conditional "
                    "model: train one with 'Conditional' ticked.")
    except Exception as exc:  # core's refusals as their sentence, a bug as one (ui.errors)
        st.error(error_text(exc))


main()
