"""The Runs page's filters: only my runs, runs of some experiments, runs on some datasets (after one
lesson a class has 61 runs in one list). Kept in the URL (?mine=1&experiments=a,b&datasets=mnist)."""
from __future__ import annotations

import streamlit as st

from ui.my_runs import my_run_names
from ui.sidebar import dataset_label
from ui.url_state import url_widget

MINE_KEY = "runs_filter_mine"
EXPERIMENTS_KEY = "runs_filter_experiments"
DATASETS_KEY = "runs_filter_datasets"
NO_EXPERIMENT = "(not in an experiment)"


def filtered_runs(runs: list[dict]) -> list[dict]:
    """The filter widgets, and the runs they keep (in the same order)."""
    experiments = sorted({str(r.get("experiment")) for r in runs if r.get("experiment")})
    datasets = list(dict.fromkeys(str(r["dataset"]) for r in runs if r.get("dataset")))
    mine_col, experiment_col, dataset_col = st.columns([1, 2, 2], vertical_alignment="bottom")
    url_widget(MINE_KEY, "mine", False)
    only_mine = mine_col.toggle("Only my runs", key=MINE_KEY,
                                help="The runs this browser trained (or made in an experiment).")
    choices = experiments + [NO_EXPERIMENT] if experiments else []
    url_widget(EXPERIMENTS_KEY, "experiments", [], valid=lambda chosen: all(c in choices for c in chosen))
    chosen_experiments = experiment_col.multiselect("Experiments", choices, key=EXPERIMENTS_KEY,
                                                    placeholder="every experiment", disabled=not choices)
    url_widget(DATASETS_KEY, "datasets", [], valid=lambda chosen: all(c in datasets for c in chosen))
    chosen_datasets = dataset_col.multiselect("Datasets", datasets, key=DATASETS_KEY, format_func=dataset_label,
                                              placeholder="every dataset")
    mine = my_run_names(runs) if only_mine else None
    kept = []
    for run in runs:
        experiment = str(run.get("experiment")) if run.get("experiment") else NO_EXPERIMENT
        if mine is not None and run["name"] not in mine:
            continue
        if chosen_experiments and experiment not in chosen_experiments:
            continue
        if chosen_datasets and str(run.get("dataset")) not in chosen_datasets:
            continue
        kept.append(run)
    if len(kept) < len(runs):
        st.caption(f"Showing {len(kept)} of {len(runs)} runs.")
    return kept
