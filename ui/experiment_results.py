"""The Experiments page's results of a finished experiment: the metric the student picks against each
factor that varies (one mark per variant), the best run by that same metric, the train-vs-validation
gap, every variant's reconstructions of the same test images, and per preset the noise sweep,
samples, wrong-label decoding or the anomaly ROC; a search's history, importances and parallel
coordinates."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.analysis import decode_with_every_label, encode, noise_sweep, reconstruct, sample
from core.checkpoints import CheckpointError, load_run
from core.data import DataError
from core.experiments import OBJECTIVE_LABELS, PRESETS, ExperimentConfig, anomaly_report, factor_label, format_value
from core.experiments.search import importances, load_study, trial_rows
from core.charts.experiments import (anomaly_histogram, factor_frame, factor_value_colors, gap_chart, gap_frame,
                                     history_chart, importance_chart, metric_vs_factor_chart, noise_sweep_chart,
                                     parallel_coordinates_chart, roc_chart)
from core.reports.report import experiment_report
from ui.projector import show_chart
from ui.report_downloads import report_downloads
from ui.state import SELECTED_RUN_KEY, checkpoints_root, dataset_for, get_registry, run_color_map, run_mtime
from ui.text import md_message, md_text
from ui.widgets import show_grid, upscale_for

RECONSTRUCTED_IMAGES = 8
SAMPLES = 8
SWEEP_IMAGES = 500
RECONSTRUCTIONS_PAGE = "views/reconstructions.py"
METRIC_KEY = "exp_metric"
METRICS = {"test_mse": "Test MSE", "val_loss": "Validation loss (best epoch)",
           "train_loss": "Train loss (best epoch)", "seconds": "Training time (s)"}  # lower is better, all


def variant_colors(record: dict) -> dict[str, str]:
    """variant label -> its run's colour (the same colour the run has on every page)."""
    colors = run_color_map()
    return {v["label"]: colors[v["run"]] for v in record["variants"] if v.get("run") in colors}


@st.cache_data(max_entries=64, show_spinner=False)
def run_outputs(name: str, mtime: float, what: str) -> dict:
    """What the result views need from one saved run, computed once (the model is loaded here and
    dropped: loading every variant through get_run would push the Inspect pages' runs out)."""
    run = load_run(checkpoints_root(), name)
    data = dataset_for(run.config.data)
    images, labels = data.split("test")
    model = run.model
    if what == "reconstructions":
        _, recon = reconstruct(model, images[:RECONSTRUCTED_IMAGES], labels[:RECONSTRUCTED_IMAGES])
        return {"originals": images[:RECONSTRUCTED_IMAGES].numpy(), "images": recon.numpy()}
    if what == "noise_sweep":
        return {"sweep": noise_sweep(model, images[:SWEEP_IMAGES], labels[:SWEEP_IMAGES])}
    if what == "samples":
        train_images, train_labels = data.split("train")
        codes = None if model.cfg.vae else encode(model, train_images[:2000], train_labels[:2000])
        return {"images": sample(model, SAMPLES, codes_for_fit=codes, seed=0).numpy()}
    if what == "wrong_label":
        code = encode(model, images[:1], labels[:1])
        return {"original": images[:1].numpy(), "images": decode_with_every_label(model, code).numpy(),
                "label": data.class_names[int(labels[0])], "classes": data.class_names}
    if what == "anomaly":
        report = anomaly_report(model, data, run.config.data.exclude_classes)
        return {"errors": report.errors, "is_anomaly": report.is_anomaly, "fpr": report.fpr, "tpr": report.tpr,
                "auc": report.auc, "held_out": [data.class_names[c] for c in report.held_out]}
    raise ValueError(f"Unknown result view {what}.")


def outputs_of(variants: list[dict], what: str) -> dict[str, dict]:
    """label -> run_outputs(...) for every variant with a saved run; a run that cannot be read is said."""
    found = {}
    for v in variants:
        try:
            found[v["label"]] = run_outputs(v["run"], run_mtime(v["run"]), what)
        except (CheckpointError, DataError, ValueError) as exc:
            st.warning(md_message(f"{v['label']}: {exc}"))
    return found


def labelled_row(original: np.ndarray, images: np.ndarray, original_caption: str, captions: list[str]) -> None:
    """The original, then each image in a column of its own with its caption (the label it was
    decoded with), so every image is named."""
    scale = upscale_for(images.shape[-1])
    for column, image, caption in zip(st.columns(len(images) + 1), [original[0], *images],
                                      [original_caption, *captions]):
        with column:
            show_grid(image[None], caption=caption, nrow=1, scale=scale)


def rows_of_images(outputs: dict[str, dict], key: str = "images", originals: np.ndarray | None = None) -> None:
    """One labelled row of images per variant (the same test images in every row)."""
    first = next(iter(outputs.values()))[key]
    scale = upscale_for(first.shape[-1])
    nrow = len(first)
    if originals is not None:
        label, grid = st.columns([1, 5], vertical_alignment="center")
        label.markdown("**originals**")
        with grid:
            show_grid(originals, nrow=nrow, scale=scale)
    for variant, output in outputs.items():
        label, grid = st.columns([1, 5], vertical_alignment="center")
        label.markdown(f"**{md_text(variant)}**")
        with grid:
            show_grid(output[key], nrow=nrow, scale=scale)


def best_by(frame: pd.DataFrame, metric: str) -> dict | None:
    """The row of the variant with the lowest `metric` (every metric here: lower is better)."""
    scored = frame.dropna(subset=[metric]) if metric in frame else frame.iloc[0:0]
    return None if scored.empty else scored.loc[scored[metric].astype(float).idxmin()].to_dict()


def factor_views(record: dict, frame: pd.DataFrame, factors: list[str], metric: str) -> None:
    if not factors:
        st.caption("Every run of this experiment has the same settings, so there is no factor to compare.")
    value_colors = factor_value_colors(frame, factors)  # a colour means one factor's value on every chart
    with st.container(key="exp_factor_charts"):
        columns = st.columns(min(len(factors), 2)) if factors else []
        for i, factor in enumerate(factors):
            others = [f for f in factors if f != factor]
            with columns[i % len(columns)]:
                chart = metric_vs_factor_chart(frame, factor, metric, METRICS[metric], others,
                                               value_colors.get(others[0]) if len(others) == 1 else None)
                show_chart(chart.properties(height=320), key=f"exp_metric_vs_{i}")
    gaps = gap_frame([v for v in record["variants"] if v.get("run")])
    if not gaps.empty:
        with st.container(key="exp_gap"):
            show_chart(gap_chart(gaps, list(dict.fromkeys(gaps["variant"]))), key="exp_gap_chart")


def sentence_case(label: str) -> str:
    """'Test MSE' -> 'test MSE' (inside a sentence; an acronym keeps its capitals)."""
    return label[:1].lower() + label[1:]


def best_run_section(label: str, run: str, value: float | None, by: str) -> None:
    shown = "" if value is None else f" ({by} {value:.5f})"
    left, right = st.columns([2, 3], vertical_alignment="center")
    left.markdown(f"**Best run by {by}:** {md_text(label)}{shown} — {md_text(run)}")
    if right.button("Make it the current run", key="exp_best", icon=":material/star:"):
        st.session_state[SELECTED_RUN_KEY] = run
        st.toast(f"{md_text(run)} is now the current run.")
    if st.session_state.get(SELECTED_RUN_KEY) == run:
        st.page_link(RECONSTRUCTIONS_PAGE, label=f"See the reconstructions of {md_text(run)}",
                     icon=":material/compare:")


def search_views(record: dict, exp: ExperimentConfig) -> None:
    study = load_study(checkpoints_root(), record["name"])
    if study is None:
        st.caption("This search has no trials yet.")
        return
    rows = trial_rows(study)
    objective = OBJECTIVE_LABELS[exp.search.objective]
    params = list(exp.search.space)
    table = pd.DataFrame([{"trial": r["trial"], "state": r["state"], "value": r["value"],
                           **{p: r["params"].get(p) for p in params}, "run": r["run"],
                           "settings": ", ".join(f"{factor_label(p)} {format_value(v)}" for p, v in r["params"].items())}
                          for r in rows])
    # A pruned trial has no objective value; its last reported validation loss places it in the chart.
    for i, r in enumerate(rows):
        if r["value"] is None and r["intermediate"]:
            table.loc[i, "value"] = r["intermediate"][max(r["intermediate"])]
    summary = record.get("search") or {}
    c1, c2, c3 = st.columns(3)
    c1.metric("Trials", len(rows))
    c2.metric("Pruned", summary.get("pruned", sum(r["state"] == "pruned" for r in rows)))
    best = summary.get("best_value")
    c3.metric(f"Best {objective}", "-" if best is None else f"{best:.5f}")
    if summary.get("best_params"):
        best_settings = ", ".join(f"{factor_label(p)} {format_value(v)}" for p, v in summary["best_params"].items())
        st.markdown(f"**Best settings:** {md_text(best_settings)}")
    with st.container(key="exp_search_charts"):
        show_chart(history_chart(table, objective, exp.search.resolved_direction() == "maximize")
                   .properties(height=320), key="exp_history")
        st.dataframe(table.drop(columns=["settings"]), hide_index=True, key="exp_trials",
                     column_config={"value": st.column_config.NumberColumn(format="%.5f")})
        found, why = search_importances(record["name"], len(rows), sum(r["state"] == "complete" for r in rows))
        left, right = st.columns(2)
        with left:
            if found:
                show_chart(importance_chart(found).properties(height=220), key="exp_importances")
            else:
                st.caption(why)
        with right:
            complete = table[table["state"] == "complete"]
            if len(complete) >= 2:
                show_chart(parallel_coordinates_chart(complete, params, objective).properties(height=300),
                           key="exp_parallel")
            else:
                st.caption("The parallel-coordinates chart needs at least two completed trials.")


@st.cache_data(max_entries=16, show_spinner="Computing parameter importances...")
def search_importances(name: str, trials: int, complete: int) -> tuple[dict, str]:
    """Cached by the number of trials, so it is computed again only when the study changed."""
    study = load_study(checkpoints_root(), name)
    return importances(study) if study is not None else ({}, "")


def preset_views(record: dict, exp: ExperimentConfig) -> None:
    views = PRESETS[exp.preset].views if exp.preset in PRESETS else ()
    saved = [v for v in record["variants"] if v.get("run")]
    colors = variant_colors(record)
    if "noise_sweep" in views:
        st.markdown("##### Noise sweep of every run")
        sweeps = outputs_of(saved, "noise_sweep")
        frame = pd.DataFrame([{"variant": label, **point} for label, out in sweeps.items() for point in out["sweep"]])
        if not frame.empty:
            with st.container(key="exp_noise_sweep"):
                show_chart(noise_sweep_chart(frame, colors).properties(height=340), key="exp_noise_chart")
    if "samples" in views:
        st.markdown("##### Samples: decoded random codes (the VAE's prior; for the plain AE a Gaussian fitted "
                    "to its codes)")
        with st.container(key="exp_samples"):
            outputs = outputs_of(saved, "samples")
            if outputs:
                rows_of_images(outputs)
    if "wrong_label" in views:
        conditional = [v for v in saved if v["factors"].get("model.conditional")]
        if conditional:
            outputs = outputs_of(conditional[:1], "wrong_label")
            for label, out in outputs.items():
                st.markdown(f"##### Wrong-label decoding: one test image (a {md_text(out['label'])}) encoded once "
                            "and decoded with every label")
                with st.container(key="exp_wrong_label"):
                    labelled_row(out["original"], out["images"], f"original ({md_text(out['label'])})",
                                 [f"label {md_text(name)}" for name in out["classes"]])
    if "anomaly" in views:
        anomaly_views(saved, colors)


def anomaly_views(saved: list[dict], colors: dict[str, str]) -> None:
    outputs = outputs_of(saved, "anomaly")
    if not outputs:
        return
    st.markdown("##### Anomaly detection: the reconstruction error of every test image as its score")
    aucs = {label: out["auc"] for label, out in outputs.items()}
    columns = st.columns(min(len(aucs), 4))
    for i, (label, auc) in enumerate(aucs.items()):
        columns[i % len(columns)].metric(f"AUC, {md_text(label)}", f"{auc:.3f}")
    roc_rows = [{"variant": f"{', '.join(out['held_out'])} (AUC {out['auc']:.3f})", "fpr": float(f), "tpr": float(t)}
                for label, out in outputs.items() for f, t in zip(out["fpr"], out["tpr"])]
    roc_colors = {f"{', '.join(out['held_out'])} (AUC {out['auc']:.3f})": colors.get(label)
                  for label, out in outputs.items() if colors.get(label)}
    with st.container(key="exp_anomaly"):
        left, right = st.columns(2)
        with left:
            show_chart(roc_chart(pd.DataFrame(roc_rows), roc_colors), key="exp_roc")
        with right:
            shown = st.selectbox("Error histogram of", list(outputs), key="exp_anomaly_hist")
            out = outputs[shown]
            frame = pd.DataFrame({"error": out["errors"],
                                  "group": np.where(out["is_anomaly"], "held out", "normal")})
            show_chart(anomaly_histogram(frame, f"Errors of normal vs held-out ({', '.join(out['held_out'])}) "
                                                "test images").properties(height=320), key="exp_anomaly_histogram")


def results_section(record: dict) -> None:
    exp = ExperimentConfig.from_dict(record["config"])
    saved = [v for v in record["variants"] if v.get("run")]
    if not saved:
        return
    st.subheader("Results")
    if exp.search is not None:
        best = record.get("best")
        if best and best.get("run"):
            best_run_section(best["label"], best["run"], best.get("value"), OBJECTIVE_LABELS[exp.search.objective])
        search_views(record, exp)
    else:
        frame, factors = factor_frame(record, METRICS)
        metric = st.radio("Metric", list(METRICS), format_func=METRICS.get, horizontal=True, key=METRIC_KEY)
        best = best_by(frame, metric)
        if best is not None:
            best_run_section(best["variant"], best["run"], best[metric], sentence_case(METRICS[metric]))
        factor_views(record, frame, factors, metric)
    st.markdown(f"##### Reconstructions of the same {RECONSTRUCTED_IMAGES} test images by every variant")
    with st.container(key="exp_reconstructions"):
        outputs = outputs_of(saved, "reconstructions")
        if outputs:
            rows_of_images(outputs, originals=next(iter(outputs.values()))["originals"])
    if exp.search is None:
        preset_views(record, exp)
    st.markdown("##### The report of this experiment")
    root, load = checkpoints_root(), get_registry().load_data
    report_downloads(lambda: experiment_report(root, record, load), record["name"], "exp_report")
