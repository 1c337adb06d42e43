"""The Experiments page's time estimate: from the server's CostBook (core.experiments.estimate), which
measures each setting that changes the work once, in the background, for every student. The page
never waits for it: the estimate is a fragment that says it is measuring, polls, and shows the
figure when the measurements are in."""
from __future__ import annotations

import streamlit as st

from core.experiments import ExperimentConfig, variant_count
from core.experiments.estimate import (CostBook, SplitSizes, estimate_seconds, experiment_cost_configs,
                                       experiment_costs, mean_costs)
from core.data import Dataset
from ui.sidebar import describe_data
from ui.state import get_registry
from ui.text import md_message

POLL_SECONDS = 1.0
WAITING_KEY = "exp_estimate_waiting"


@st.cache_resource
def cost_book() -> CostBook:
    """One book of measured costs for the whole server (every session reads and fills it)."""
    return CostBook()


def duration_text(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def split_sizes(dataset: Dataset) -> SplitSizes:
    return SplitSizes(*(len(dataset.splits[s]) for s in ("train", "val", "test")))


def _estimate(exp: ExperimentConfig, dataset: Dataset):
    book = cost_book()
    sizes = split_sizes(dataset)
    costs = experiment_costs(exp, book.costs, dataset.shape, dataset.num_classes, sizes)
    problems = {book.problem(c) for c in experiment_cost_configs(exp, dataset.shape, dataset.num_classes, sizes)}
    return costs, sizes, next((p for p in problems if p), None)


def estimate_view(exp: ExperimentConfig, dataset: Dataset) -> None:
    costs, sizes, problem = _estimate(exp, dataset)
    count = variant_count(exp)
    what = f"{count} trials (fewer epochs where pruned)" if exp.search else f"{count} runs"
    head = f"**{what}** × {exp.base.train.epochs} epochs on {sizes.train:,} training images of {describe_data(exp.base.data)}"
    if problem:
        st.markdown(f"{head}.")
        st.warning(md_message(f"No time estimate: {problem}"), icon=":material/timer_off:")
    elif costs is None:
        st.markdown(f"{head}: measuring how long these settings take here, in the background (a few seconds "
                    "per setting, once for the whole class); the estimate appears here.")
    else:
        typical = mean_costs(costs)
        st.markdown(f"{head}: about **{duration_text(estimate_seconds(exp, sizes, costs))}** one after the other "
                    f"({get_registry().max_concurrent} at a time here). Measured by training each setting briefly: "
                    f"{typical.images_per_s:,.0f} images/s, plus {typical.epoch_s:.2f} s per epoch and "
                    f"{typical.eval_images_per_s:,.0f} images/s for validation, and {typical.job_s:.1f} s per run to "
                    "build and save the model (the mean of the variants). Other work on this machine, a browser "
                    "drawing the live charts included, can make it take several times longer.")
    waiting = costs is None and not problem
    if st.session_state.get(WAITING_KEY) and not waiting:
        # A fragment cannot stop its own polling: a full rerun draws it again without run_every.
        st.session_state[WAITING_KEY] = False
        st.rerun()


def estimate_section(exp: ExperimentConfig, dataset: Dataset) -> None:
    """The estimate, or a sentence saying it is being measured (then polled until it is in)."""
    costs, _, problem = _estimate(exp, dataset)
    waiting = costs is None and not problem
    st.session_state[WAITING_KEY] = waiting
    with st.container(key="exp_estimate"):
        st.fragment(estimate_view, run_every=POLL_SECONDS if waiting else None)(exp, dataset)
