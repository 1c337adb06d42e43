"""Experiments: a whole comparison in one click. Pick a preset (a homework question) or build a
grid, Start queues every variant as an ordinary run, the live table and small multiples fill in,
and the views that answer the question follow: the metric against each factor, the train-vs-
validation gap, every variant's reconstructions of the same test images, and per preset the noise
sweep, samples, wrong-label decoding, the anomaly ROC, or a search's history and importances.

The experiment shown is kept in the URL (?experiment=<name>), so a reload or a shared link shows it.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import streamlit as st

from core.analysis import decode_with_every_label, encode, noise_sweep, reconstruct, sample
from core.checkpoints import CheckpointError, load_run
from core.config import ACTIVATIONS, OPTIMIZERS, RunConfig, TrainConfig
from core.data import DataError
from core.experiments import (OBJECTIVE_LABELS, PRESETS, ExperimentConfig, anomaly_report, expand_grid,
                              factor_label, format_value, preset_experiment, variant_count)
from core.experiments.estimate import JobCosts, estimate_seconds, experiment_costs, mean_costs, measure_job_costs
from core.experiments.presets import DEFAULT_EPOCHS
from core.experiments.search import importances, load_study, trial_rows
from core.jobs import JobPermissionError
from core.reports.report import experiment_report
from core.charts.experiments import (anomaly_histogram, factor_frame, factor_value_colors, gap_chart, gap_frame,
                                     history_chart, importance_chart, metric_vs_factor_chart, noise_sweep_chart,
                                     parallel_coordinates_chart, roc_chart)
from ui.experiment_live import loss_multiples, variants_table
from ui.owners import is_teacher, owner_id
from ui.projector import show_chart
from ui.report_downloads import report_downloads
from ui.sidebar import describe_data
from ui.state import (SELECTED_RUN_KEY, checkpoints_root, chosen_data_config, dataset_for, get_experiments,
                      get_registry, run_color_map, run_mtime)
from ui.url_state import url_widget
from ui.widgets import show_grid, upscale_for
from ui.text import md_message, md_text

CUSTOM = "custom"
PRESET_KEY = "exp_preset"
SHOWN_KEY = "exp_shown"
POLLING_KEY = "exp_live_polling"
EXPERIMENT_PARAM = "experiment"
POLL_SECONDS = 1.0
RECONSTRUCTED_IMAGES = 8
SAMPLES = 8
SWEEP_IMAGES = 500
ACTIVE = ("queued", "loading", "running", "probing")
RECONSTRUCTIONS_PAGE = "views/reconstructions.py"
STATUS_ICONS = {"queued": ":material/schedule:", "running": ":material/play_circle:",
                "stopping": ":material/stop_circle:", "finished": ":material/check_circle:",
                "stopped": ":material/stop_circle:", "failed": ":material/error:",
                "interrupted": ":material/warning:"}
# The custom grid's factors: dotted path -> (label, the values offered).
CUSTOM_FACTORS = {
    "model.latent": ("Latent sizes", [2, 4, 8, 16, 32, 64]),
    "model.preset": ("Conv size", ["small", "large"]),
    "model.dropout": ("Dropout", [0.0, 0.25, 0.5]),
    "model.activation": ("Activation", list(ACTIVATIONS)),
    "model.vae": ("VAE", [False, True]),
    "train.optimizer": ("Optimiser", list(OPTIMIZERS)),
    "train.batch_size": ("Batch size", [32, 64, 128, 256]),
    "train.lr": ("Learning rate", [1e-4, 1e-3, 2e-3, 1e-2]),
    "train.noise_factor": ("Noise factor (denoising)", [0.0, 0.3, 0.6]),
}
METRICS = {"test_mse": "Test MSE", "val_loss": "Validation loss (best epoch)",
           "train_loss": "Train loss (best epoch)", "seconds": "Training time (s)"}


# ---------------------------------------------------------------- starting

@st.cache_data(max_entries=64, show_spinner="Measuring this machine's speed: training each setting briefly...")
def job_costs(cost_json: str) -> JobCosts:
    """One variant setting's costs here (a short real run); cached by core's cost_config, so
    changing the epochs does not measure again."""
    cfg = RunConfig.from_json(cost_json)
    return measure_job_costs(cfg, dataset_for(cfg.data))


def duration_text(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def custom_grid(base: RunConfig) -> ExperimentConfig:
    st.caption("Choose the values of each setting to compare; every combination becomes one run.")
    grid = {}
    columns = st.columns(3)
    for i, (path, (label, values)) in enumerate(CUSTOM_FACTORS.items()):
        chosen = columns[i % 3].multiselect(label, values, key=f"exp_factor_{path}", format_func=format_value)
        if chosen:
            grid[path] = chosen
    return ExperimentConfig(name=CUSTOM, base=base, grid=grid)


def planned_table(exp: ExperimentConfig) -> None:
    if exp.search is not None:
        rows = [{"setting": path, "searched over": space.describe()} for path, space in exp.search.space.items()]
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="exp_planned")
        return
    rows = [{"run": i + 1, **{factor_label(p): format_value(v) for p, v in factors.items()}}
            for i, factors in enumerate(expand_grid(exp))]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="exp_planned", height=min(36 * (len(rows) + 1) + 4, 300))


def start_experiment(exp: ExperimentConfig) -> None:
    try:
        name = get_experiments().start(exp, owner=owner_id(), teacher=is_teacher())
    except (ValueError, DataError) as exc:  # this student's share (a LimitError), or data that does not load
        st.error(md_message(exc))
        return
    st.session_state[SHOWN_KEY] = name  # shown below, and in the URL (ui.url_state)
    st.toast(f"Started experiment {md_text(name)}.")


def new_experiment_section() -> None:
    st.subheader("New experiment")
    choices = list(PRESETS) + [CUSTOM]
    labels = {name: preset.title for name, preset in PRESETS.items()} | {CUSTOM: "Custom grid"}
    choice = st.selectbox("Preset", choices, key=PRESET_KEY, format_func=labels.get,
                          help="Each preset answers one question of the homework.")
    data_cfg = chosen_data_config()
    left, middle, right = st.columns(3)
    epochs = left.number_input("Epochs per run", 1, 500, DEFAULT_EPOCHS, key="exp_epochs")
    limit = middle.number_input("Image limit (0 = all)", 0, None, int(data_cfg.limit), step=100, key="exp_limit")
    base = RunConfig(data=replace(data_cfg, limit=int(limit)), train=TrainConfig(epochs=int(epochs)))
    try:
        if choice == CUSTOM:
            exp = custom_grid(base)
        else:
            exp = preset_experiment(choice, base)
            if exp.search is not None:
                exp.search.trials = int(right.number_input("Trials", 1, 500, exp.search.trials, key="exp_trials"))
        exp.name = st.text_input("Experiment name", value=choice, key=f"exp_name_{choice}", max_chars=60)
        if choice == CUSTOM and not exp.grid:
            st.info("Choose at least one value of one setting above to build a grid.")
            return
        exp.check()
    except ValueError as exc:
        st.error(md_message(exc))
        return
    if exp.question:
        st.info(exp.question, icon=":material/help:")
    if choice != CUSTOM and PRESETS[choice].dataset != data_cfg.dataset:
        st.caption(f"The homework asked this on {describe_data(replace(data_cfg, dataset=PRESETS[choice].dataset))}; "
                   f"this experiment uses {describe_data(base.data)} (change it on the Data page).")
    with st.container(key="exp_plan"):
        planned_table(exp)
    try:
        dataset = dataset_for(base.data)
        costs = experiment_costs(exp, lambda cfg: job_costs(cfg.to_json()))
    except (DataError, ValueError) as exc:
        st.error(md_message(exc))
        st.page_link("views/data.py", label="Choose a dataset", icon=":material/dataset:")
        return
    count = variant_count(exp)
    train_images = len(dataset.splits["train"])
    what = f"{count} trials (fewer epochs where pruned)" if exp.search else f"{count} runs"
    typical = mean_costs(costs)
    st.markdown(f"**{what}** × {epochs} epochs on {train_images:,} training images of {describe_data(base.data)}: "
                f"about **{duration_text(estimate_seconds(exp, train_images, costs))}** one after the other "
                f"({get_registry().max_concurrent} at a time here). Measured by training each setting briefly: "
                f"{typical.images_per_s:,.0f} images/s, plus {typical.epoch_s:.2f} s per epoch for validation "
                f"and {typical.job_s:.1f} s per run to build, test and save the model (the mean of the variants). "
                "Other work on this machine, a browser drawing the live charts included, can make it take "
                "several times longer.")
    if st.button("Start experiment", key="exp_start", type="primary", icon=":material/play_arrow:"):
        start_experiment(exp)


# ---------------------------------------------------------------- live

def stop_experiment(name: str) -> None:
    try:
        get_experiments().stop(name, by=None if is_teacher() else owner_id())
    except JobPermissionError as exc:
        st.session_state["exp_stop_error"] = str(exc)
        return
    st.toast(f"Stopping {md_text(name)}: queued runs are dropped, finished ones kept.")


def live_view(name: str) -> None:
    manager = get_experiments()
    record = manager.record(name)
    icon = STATUS_ICONS.get(record["status"], "")
    running = manager.is_running(name)
    text = md_message(record.get("message") or record["status"])
    st.markdown(f"#### {icon} {md_text(name)}: {record['status']}")
    if record["status"] in ("finished",):
        st.success(text)
    elif record["status"] in ("failed", "interrupted"):
        st.error(text) if record["status"] == "failed" else st.warning(text)
    elif not running:
        st.info(text)
    if running:
        left, right = st.columns([1, 4], vertical_alignment="center")
        left.button("Stop experiment", key="exp_stop", icon=":material/stop:", on_click=stop_experiment, args=(name,))
        done = sum(1 for v in record["variants"] if v["status"] not in ACTIVE)
        right.progress(done / max(len(record["variants"]), 1),
                       text=f"{done} of {len(record['variants'])} variants done")
        if "exp_stop_error" in st.session_state:
            st.error(md_message(st.session_state.pop("exp_stop_error")))
    if record["variants"]:
        variants_table(record, "exp_variants")
        loss_multiples(record, "exp_small_multiples")
    # A fragment cannot change its own run_every: once the experiment ends, a full rerun draws the
    # results and a fragment that no longer polls.
    if st.session_state.get(POLLING_KEY) and not running:
        st.session_state[POLLING_KEY] = False
        st.rerun()


# ---------------------------------------------------------------- results

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


def factor_views(record: dict) -> None:
    frame, factors = factor_frame(record, METRICS)
    if frame.empty:
        return
    metric = st.radio("Metric", list(METRICS), format_func=METRICS.get, horizontal=True, key="exp_metric")
    colors = variant_colors(record)
    value_colors = factor_value_colors(frame, factors)  # a colour means one factor's value on every chart
    with st.container(key="exp_factor_charts"):
        columns = st.columns(min(len(factors), 2)) if factors else []
        for i, factor in enumerate(factors):
            other = next((f for f in factors if f != factor), None) if len(factors) == 2 else None
            with columns[i % len(columns)]:
                show_chart(metric_vs_factor_chart(frame, factor, metric, METRICS[metric], other, colors,
                                                  value_colors.get(other)).properties(height=320),
                           key=f"exp_metric_vs_{i}")
    gaps = gap_frame([v for v in record["variants"] if v.get("run")])
    if not gaps.empty:
        with st.container(key="exp_gap"):
            show_chart(gap_chart(gaps, list(dict.fromkeys(gaps["variant"]))), key="exp_gap_chart")


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
        st.markdown("**Best settings:** " + ", ".join(f"{factor_label(p)} {format_value(v)}"
                                                      for p, v in summary["best_params"].items()))
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
                            f"and decoded with every label ({md_text(', '.join(out['classes']))})")
                with st.container(key="exp_wrong_label"):
                    rows_of_images({label: out}, originals=out["original"])
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


def best_run_section(record: dict) -> None:
    best = record.get("best")
    if not best or not best.get("run"):
        return
    value = "" if best.get("value") is None else f" ({best['value']:.5f})"
    left, right = st.columns([2, 3], vertical_alignment="center")
    left.markdown(f"**Best run:** {md_text(best['label'])}{value} — {md_text(best['run'])}")
    if right.button("Make it the current run", key="exp_best", icon=":material/star:"):
        st.session_state[SELECTED_RUN_KEY] = best["run"]
        st.toast(f"{md_text(best['run'])} is now the current run.")
    if st.session_state.get(SELECTED_RUN_KEY) == best["run"]:
        st.page_link(RECONSTRUCTIONS_PAGE, label=f"See the reconstructions of {md_text(best['run'])}",
                     icon=":material/compare:")


def results_section(record: dict) -> None:
    exp = ExperimentConfig.from_dict(record["config"])
    saved = [v for v in record["variants"] if v.get("run")]
    if not saved:
        return
    st.subheader("Results")
    best_run_section(record)
    if exp.search is not None:
        search_views(record, exp)
    else:
        factor_views(record)
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


# ---------------------------------------------------------------- the page

def experiment_section() -> None:
    manager = get_experiments()
    records = manager.records()
    st.subheader("Experiments on this server")
    if not records:
        st.caption("No experiment yet: choose a preset above and press Start experiment.")
        return
    names = [r["name"] for r in records]
    titles = {r["name"]: PRESETS[r["config"]["preset"]].title if r["config"].get("preset") in PRESETS else "custom grid"
              for r in records}
    # The experiment shown travels in the URL (?experiment=): a reload or a shared link shows it.
    url_widget(SHOWN_KEY, EXPERIMENT_PARAM, names[0], parse=str, valid=lambda n: n in names)
    if st.session_state[SHOWN_KEY] not in names:  # e.g. its folder was deleted
        st.session_state[SHOWN_KEY] = names[0]
    st.selectbox("Experiment shown", names, key=SHOWN_KEY, format_func=lambda n: f"{n} · {titles[n]}")
    name = st.session_state[SHOWN_KEY]
    record = manager.record(name)
    question = ExperimentConfig.from_dict(record["config"]).question
    if question:
        st.caption(question)
    running = manager.is_running(name)
    st.session_state[POLLING_KEY] = running
    with st.container(key="exp_live"):
        st.fragment(live_view, run_every=POLL_SECONDS if running else None)(name)
    if not running:
        results_section(manager.record(name))


def main() -> None:
    st.title("Experiments")
    st.caption("A comparison in one click: every variant is an ordinary run (it appears on Runs and every "
               "Inspect page), kept together with the views that answer the question.")
    with st.container(key="exp_new"):
        new_experiment_section()
    st.divider()
    experiment_section()


main()
