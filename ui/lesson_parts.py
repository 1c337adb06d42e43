"""The pieces of the Lessons page: a step's figures (the same as the report's, core.reports.figures),
a clickable 2-D code plane, the live view of a step's experiment and classifiers, the answer boxes,
and the downloads of a report. Lesson text was checked when the file was read (no HTML, images or
odd links); anything a student or a file names is shown through `plain`."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable

import numpy as np
import streamlit as st

from core import analysis
from core.lessons.model import MAX_ANSWER_CHARS, Lesson, Question
from core.lessons.runner import collect_probes, expected_answer, is_active, matches
from core.lessons.store import answer_value, save_answer
from ui.experiment_live import loss_multiples, variants_table
from ui.projector import show_chart, upscale_for
from ui.state import checkpoints_root, get_experiments, get_registry, get_run, run_mtime
from ui.widgets import show_grid

if TYPE_CHECKING:  # the figures (pandas, Altair, PyTorch) load when a step first shows them
    from core.reports.figures import Figure

POLL_SECONDS = 1.0
ERRORS_KEY = "lesson_answer_errors"  # widget key -> the sentence why its last value was not kept
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text) -> str:
    """Text shown as itself by st.markdown: every Markdown (and Streamlit directive) character escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text or "").split()))


# ---------------------------------------------------------------- figures

@st.cache_data(max_entries=48, show_spinner="Drawing this step's figures...")
def cached_figures(step_key: str, views: tuple[str, ...], stamp: tuple, _rows: list, _record: dict | None) -> list:
    """A step's figures, made once per set of saved runs (stamp: each run's save time and whether
    its classifier result is kept), so moving a widget does not redo them."""
    from core.reports.figures import StepRuns, step_figures

    runs = StepRuns(checkpoints_root(), _rows, get_registry().load_data, _record)
    return step_figures(runs, list(views), prefix=f"{step_key}-")


def show_figures(figures: list[Figure]) -> None:
    for figure in figures:
        with st.container(key=f"lesson_fig_{figure.key}"):
            st.markdown(f"**{plain(figure.title)}**")
            if figure.chart is not None:
                if figure.plane:
                    plane_view(figure)
                else:
                    show_chart(figure.chart, key=f"lesson_chart_{figure.key}")
            elif figure.images is not None:
                show_grid(figure.images, nrow=figure.nrow, scale=upscale_for(figure.side))
            if figure.caption:
                st.caption(plain(figure.caption))


def plane_view(figure: Figure) -> None:
    """A 2-D code plane: click a point or any spot, and the decoder draws that code beside it."""
    from core.charts.inspect import PICKED, PLANE  # the selections' names in the chart it draws

    chart_col, picked_col = st.columns([3, 1], vertical_alignment="center")
    with chart_col:
        event = show_chart(figure.chart, on_select="rerun", key=f"lesson_plane_{figure.key}")
    spot = None
    selection = event.selection if event else {}
    point = (selection.get(PICKED) or [{}])[0]
    place = (selection.get(PLANE) or [{}])[0]
    if "index" in point and 0 <= int(point["index"]) < len(figure.plane["xy"]):
        spot = tuple(figure.plane["xy"][int(point["index"])])
    elif "gx" in place and "gy" in place:
        spot = (float(place["gx"]), float(place["gy"]))
    with picked_col:
        if spot is None:
            st.info("Click a point, or anywhere on the plane, to see what the decoder draws there.")
            return
        run_name = figure.plane["run"]
        run = get_run(run_name, run_mtime(run_name))
        if run.config.model.conditional:
            st.caption("A conditional model: decoded with the label 0.")
        image = analysis.decode(run.model, np.array(spot, dtype=np.float32), 0 if run.config.model.conditional else None)
        show_grid(image, scale=2 * upscale_for(image.shape[-1]))
        st.caption(f"Decoded from ({spot[0]:.2f}, {spot[1]:.2f})")


# ---------------------------------------------------------------- live

def live_step(name: str, polling_key: str) -> None:
    """The step's experiment while it trains (a fragment polls it); a full rerun once it ends."""
    record = get_experiments().record(name)
    variants = record.get("variants", [])
    done = sum(1 for v in variants if v.get("status") not in ("queued", "loading", "running", "probing"))
    trials = (record.get("config", {}).get("search") or {}).get("trials")  # a search asks its trials one by one
    total, unit = (max(len(variants), trials), "trials") if isinstance(trials, int) else (len(variants), "runs")
    if variants:
        st.progress(done / total, text=f"{done} of {total} {unit} done · {record.get('status')}")
        variants_table(record, "lesson_variants")
        loss_multiples(record, "lesson_small_multiples")
    else:
        st.progress(0.0, text="Starting...")
    if st.session_state.get(polling_key) and not is_active(record):
        st.session_state[polling_key] = False
        st.rerun()


def live_probes(jobs: dict[str, str], polling_key: str) -> None:
    """The classifiers of a step while they train; their results are kept as each one finishes."""
    registry = get_registry()
    finished = collect_probes(registry, checkpoints_root(), jobs)
    shown = 0
    for run_name, job_id in jobs.items():
        try:
            snap = registry.snapshot(job_id)
        except KeyError:
            continue
        shown += 1
        st.progress(min(max(float(snap.progress), 0.0), 1.0), text=f"Classifier on {plain(run_name)}: {snap.status}")
    if shown == 0:
        st.caption("The classifiers are gone (the server restarted); train them again.")
    if st.session_state.get(polling_key) and finished:
        st.session_state[polling_key] = False
        st.rerun()


# ---------------------------------------------------------------- questions

def _saver(lesson: Lesson, key: str, question: Question, widget: str) -> Callable[[], None]:
    def save() -> None:
        errors = st.session_state.setdefault(ERRORS_KEY, {})
        try:
            save_answer(checkpoints_root(), lesson, key, question, st.session_state.get(widget))
            errors.pop(widget, None)
        except (ValueError, OSError) as exc:
            errors[widget] = str(exc) if isinstance(exc, ValueError) else "Your answer could not be saved (the " \
                                                                         "server's disk); try again."
    return save


def answer_box(lesson: Lesson, key: str, state: dict, question: Question, n: int, rows: list[dict]) -> None:
    """One question: its answer box (saved on the server at every change) and, once answered and
    the runs are there, whether the answer matches what the runs say."""
    widget = f"lesson_answer_{lesson.name}_{question.key}"
    if widget not in st.session_state:
        kept = answer_value(state, question)
        st.session_state[widget] = kept if kept is None or question.kind != "number" else float(kept)
    label = f"**Question {n}.** {question.ask}"
    save = _saver(lesson, key, question, widget)
    if question.kind == "choice":
        if st.session_state[widget] not in question.choices:
            st.session_state[widget] = None
        st.radio(label, question.choices, key=widget, on_change=save, horizontal=len(question.choices) <= 6)
    elif question.kind == "number":
        st.number_input(label, key=widget, on_change=save, value=None, format="%g", placeholder="a number")
    else:
        st.text_area(label, key=widget, on_change=save, max_chars=MAX_ANSWER_CHARS, height=90,
                     placeholder="Your answer (saved as you leave the box)")
    error = st.session_state.get(ERRORS_KEY, {}).get(widget)
    if error:
        st.error(error)
    answer = answer_value(state, question) if widget not in st.session_state else st.session_state[widget]
    if question.expect is None or answer in (None, ""):
        return
    found = expected_answer(question.expect, rows)
    if found is None:
        st.caption("Run this step to compare your answer with your runs.")
    elif matches(question, answer, found[0]):
        st.success("Matches your runs.", icon=":material/check_circle:")
    else:
        st.warning(f"Your runs say otherwise: look again for {question.expect.describe()} in the charts above.",
                   icon=":material/help:")
