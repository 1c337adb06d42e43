"""Lessons: the homework as the unit. Pick a lesson (a Markdown file the teacher wrote); its steps in
order, each training its runs as this student's own experiment (the queue, owners and limits hold
as everywhere) and showing the figures that answer it on the same page; answer boxes saved on the
server; a report to hand in (HTML, Markdown + PNG, or a notebook). The teacher sees the hand-ins.

The address keeps the lesson and the step (?lesson=<name>&step=<n>).
"""
from __future__ import annotations

import logging

import streamlit as st

from core.experiments import ExperimentError
from core.lessons import Lesson, lesson_data, load_lessons
from core.lessons.runner import (is_active, load_probe, plan_step, start_probes, start_step, step_record,
                                 variant_rows)
from core.lessons.store import hand_in, hand_ins, hand_ins_zip, read_state, step_done, student_key
from core.checkpoints import CheckpointError
from core.data import DataError
from core.reports import report_bytes
from core.reports.notebook import lesson_notebook, notebook_bytes
from core.reports.report import lesson_report, runs_table
from core.serving.limits import WorkLimits
from core.serving.roots import find_torchvision_folders
from ui.lesson_parts import answer_box, cached_figures, live_probes, live_step, plain, show_figures
from ui.owners import is_teacher, owner_id
from ui.projector import projector_on
from ui.report_downloads import report_downloads
from ui.state import checkpoints_root, get_experiments, get_registry, page_uses_data, run_mtime
from ui.url_state import url_widget

log = logging.getLogger(__name__)

LESSON_KEY, STEP_KEY = "lesson_name", "lesson_step"
STEP_LESSON_KEY = "lesson_step_of"  # the lesson whose step STEP_KEY holds
POLLING_KEY = "lesson_polling"
PROBE_JOBS_KEY = "lesson_probe_jobs"  # (lesson, step) -> {run: probe job id}
PROBE_POLLING_KEY = "lesson_probe_polling"
RUN_ERROR_KEY = "lesson_run_error"
NAME_KEY = "lesson_student_name"
POLL_SECONDS = 1.0
# Projector mode: the lesson's text, questions and choices as large as the rest of the page's (sent
# only on this page, only while the mode is on).
PROJECTOR_LESSON_CSS = """<style>
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMain"] [data-testid="stMarkdownContainer"] li { font-size: 1.45rem; line-height: 1.5; }
[data-testid="stMain"] [data-testid="stWidgetLabel"] p { font-size: 1.35rem; }
[data-testid="stMain"] h3 { font-size: 2.1rem; }
</style>"""


@st.cache_resource(max_entries=16, ttl=600, show_spinner="Finding this lesson's data...")
def resolved_data(name: str, path: str, mtime: float, _lesson: Lesson):
    """The data the lesson runs on here (the named dataset or the fallback), looked for once per
    lesson file version and ten minutes (a teacher may add the dataset meanwhile)."""
    return lesson_data(_lesson, get_registry().load_data, find_torchvision_folders)


def choose_lesson(lessons: list[Lesson]) -> Lesson:
    names = [lesson.name for lesson in lessons]
    url_widget(LESSON_KEY, "lesson", names[0], parse=str, valid=lambda n: n in names)
    if st.session_state[LESSON_KEY] not in names:
        st.session_state[LESSON_KEY] = names[0]
    titles = {lesson.name: lesson.title for lesson in lessons}
    name = st.selectbox("Lesson", names, key=LESSON_KEY, format_func=lambda n: titles[n])
    return next(lesson for lesson in lessons if lesson.name == name)


def choose_step(lesson: Lesson, state: dict) -> int:
    numbers = [step.number for step in lesson.steps]
    url_widget(STEP_KEY, "step", 1, valid=lambda n: n in numbers)
    # The browser sends the radio's choice as its label: another lesson's labels match none of this
    # one's, so a lesson chosen in the list starts at its step 1, set here (and shown as chosen).
    if st.session_state.get(STEP_LESSON_KEY, lesson.name) != lesson.name or st.session_state[STEP_KEY] not in numbers:
        st.session_state[STEP_KEY] = 1
    st.session_state[STEP_LESSON_KEY] = lesson.name
    done = [n for n in numbers if step_done(lesson, n, state)]
    st.progress(len(done) / len(numbers), text=f"{len(done)} of {len(numbers)} steps done")
    # Labels stay the same while the lesson is open (a ✓ in a label changed it, and the browser's
    # choice then matched no option: every rerun went back to step 1); done steps get a caption.
    labels = {n: f"{n} · {plain(lesson.step(n).title)}" for n in numbers}
    st.radio("Step", numbers, key=STEP_KEY, format_func=labels.get, horizontal=True,
             captions=["✓ done" if n in done else "" for n in numbers])
    return st.session_state[STEP_KEY]


def go_to_step(number: int) -> None:
    st.session_state[STEP_KEY] = number


def run_section(lesson: Lesson, number: int, data, key: str, record: dict | None) -> None:
    """What the step trains, its Run button, and the live view while it trains."""
    step = lesson.step(number)
    try:
        _, exp = plan_step(lesson, step, data)
    except ValueError as exc:
        st.error(str(exc))
        return
    count = exp.search.trials if exp.search else len(record["variants"]) if record else None
    what = (f"a search of {exp.search.trials} trials" if exp.search else
            f"{count or 'its'} runs" if count else "its runs")
    st.caption(f"This step trains {what}, {exp.base.train.epochs} epochs each (batch {exp.base.train.batch_size}), "
               f"on {data.train_images:,} training images.")
    running = is_active(record)
    pretrained = record is not None and record.get("owner") is None
    if pretrained:
        st.caption("These are the runs your teacher trained before class; Run trains your own.")
    label = "Run my own" if pretrained else "Run again" if record else "Run"
    if st.button(label, key=f"lesson_run_{number}", type="primary" if not record or pretrained else "secondary",
                 icon=":material/play_arrow:", disabled=running and not pretrained):
        try:
            start_step(get_experiments(), lesson, step, data, owner_id(), limits=WorkLimits.from_env())
        except (ValueError, ExperimentError) as exc:  # a limit, a quota: one sentence
            st.session_state[RUN_ERROR_KEY] = str(exc)
        st.rerun()
    if RUN_ERROR_KEY in st.session_state:
        st.error(st.session_state.pop(RUN_ERROR_KEY))
    if record is not None and (running or record.get("status") not in ("finished",)):
        st.session_state[POLLING_KEY] = running
        with st.container(key="lesson_live"):
            st.fragment(live_step, run_every=POLL_SECONDS if running else None)(record["name"], POLLING_KEY)
        if record.get("status") in ("failed", "stopped", "interrupted") and record.get("message"):
            st.warning(plain(record["message"]))


def classifier_section(lesson: Lesson, number: int, rows: list[dict]) -> None:
    """A step that shows classifiers: train the missing ones (probe jobs of this student)."""
    root = checkpoints_root()
    missing = [r["run"] for r in rows if load_probe(root, r["run"]) is None]
    jobs = st.session_state.setdefault(PROBE_JOBS_KEY, {}).get((lesson.name, number), {})
    active = {run: job for run, job in jobs.items() if run in missing}
    if active:
        st.session_state[PROBE_POLLING_KEY] = True
        st.fragment(live_probes, run_every=POLL_SECONDS)(active, PROBE_POLLING_KEY)
    elif missing and st.button(f"Train the classifiers ({len(missing)})", key=f"lesson_probes_{number}",
                               type="primary", icon=":material/category:"):
        st.session_state[PROBE_JOBS_KEY][(lesson.name, number)] = start_probes(get_registry(), root, missing,
                                                                               owner_id())
        st.rerun()


def step_section(lesson: Lesson, number: int, data, key: str, state: dict) -> None:
    step = lesson.step(number)
    with st.container(key="lesson_text"):
        st.subheader(f"{number}. {step.title}")
        if step.text:
            st.markdown(step.text)
    if step.look_for:
        st.info(f"**What to look for:** {step.look_for}", icon=":material/visibility:")
    record = step_record(checkpoints_root(), lesson, step, key, get_experiments().record)
    if step.run:
        run_section(lesson, number, data, key, record)
    elif step.use is not None:
        st.caption(f"This step shows the runs of step {step.use}.")
        if record is None:
            st.info(f"Run step {step.use} first: this step looks at its runs.")
            st.button(f"Go to step {step.use}", key=f"lesson_goto_{number}", on_click=go_to_step, args=(step.use,))
    noisy = any(q.expect and q.expect.metric == "noisy_mse" for q in step.questions)
    rows = variant_rows(checkpoints_root(), record, need_noisy=noisy, load=get_registry().load_data) \
        if record and not is_active(record) else []
    if rows and step.show:
        if "classifier" in step.show:
            classifier_section(lesson, number, rows)
        stamp = tuple((r["run"], run_mtime(r["run"]), r.get("probe_accuracy")) for r in rows)
        try:
            figures = cached_figures(f"s{number}", tuple(step.show), stamp, _rows=rows, _record=record)
        except (CheckpointError, DataError, ValueError) as exc:  # e.g. a run deleted meanwhile
            st.error(str(exc))
            figures = []
        with st.container(key="lesson_figures"):
            show_figures(figures)
        with st.expander("The runs of this step", expanded=False):
            st.dataframe(runs_table(rows), hide_index=True, key=f"lesson_runs_{number}")
    if step.questions:
        with st.container(key="lesson_questions"):
            for n, question in enumerate(step.questions, start=1):
                answer_box(lesson, key, state, question, n, rows)
    left, _, right = st.columns([1, 4, 1])
    if number > 1:
        left.button("Previous step", key="lesson_previous", on_click=go_to_step, args=(number - 1,),
                    icon=":material/arrow_back:")
    if number < len(lesson.steps):
        right.button("Next step", key="lesson_next", on_click=go_to_step, args=(number + 1,),
                     icon=":material/arrow_forward:", type="primary")


def report_for(lesson: Lesson, key: str, note: str):
    return lesson_report(checkpoints_root(), lesson, key, get_registry().load_data, get_experiments().record, note)


def hand_in_section(lesson: Lesson, key: str, state: dict, note: str) -> None:
    st.subheader("Hand in")
    st.caption("Your report holds every step's text, your answers, the figures of your runs and each run's "
               "settings. Hand it in when you are done; you can hand in again later (the last one counts).")
    if NAME_KEY not in st.session_state:
        st.session_state[NAME_KEY] = state.get("student", "")
    name = st.text_input("Your name", key=NAME_KEY, max_chars=80)
    if st.button("Hand in", key="lesson_hand_in", type="primary", icon=":material/send:"):
        try:
            with st.spinner("Making your report..."):
                html = report_bytes(report_for(lesson, key, note), ".html")
                hand_in(checkpoints_root(), lesson, key, name, html)
            st.success("Handed in: your teacher can see it now.", icon=":material/check_circle:")
        except (ValueError, OSError) as exc:
            st.error(str(exc) if isinstance(exc, ValueError) else "The report could not be saved; try again.")
    elif state["handed_in"]:
        st.caption(f"Last handed in {plain(state['handed_in'][-1]['at'][:16].replace('T', ' '))}.")
    load, read, root = get_registry().load_data, get_experiments().record, checkpoints_root()
    columns = st.columns(3)
    report_downloads(lambda: lesson_report(root, lesson, key, load, read, note), lesson.name, "lesson_download",
                     columns[:2])
    text = lesson.path.read_text(encoding="utf-8")
    columns[2].download_button("Notebook (.ipynb)", key="lesson_download.ipynb", file_name=f"{lesson.name}.ipynb",
                               mime="application/x-ipynb+json", on_click="ignore", icon=":material/code:",
                               data=lambda: notebook_bytes(lesson_notebook(lesson, text)))


def teacher_section(lesson: Lesson) -> None:
    st.subheader("Hand-ins")
    rows = hand_ins(checkpoints_root(), lesson.name)
    if not rows:
        st.caption("Nobody has handed in this lesson yet.")
        return
    total = len(lesson.questions())
    table = [{"student": r["student"], "handed in": r["at"][:16].replace("T", " "), "key": r["key"][:8],
              "answered": f"{sum(1 for v in r['answers'].values() if v not in (None, ''))} of {total}",
              **{q.key: r["answers"].get(q.key) for q in lesson.questions()}} for r in rows]
    st.dataframe(table, hide_index=True, key="lesson_handins")
    root = checkpoints_root()
    st.download_button(f"Download all {len(rows)} hand-ins (zip)", key="lesson_handins_zip", on_click="ignore",
                       file_name=f"{lesson.name}-hand-ins.zip", mime="application/zip", icon=":material/download:",
                       data=lambda: hand_ins_zip(root, lesson))


def main() -> None:
    st.title("Lessons")
    lessons, problems = load_lessons()
    if problems:
        with st.expander(f"{len(problems)} lesson file(s) cannot be used", icon=":material/warning:"):
            for problem in problems:
                st.caption(plain(problem.message))
    if not lessons:
        st.info("No lesson yet: put a lesson file (Markdown) into lessons/ or a folder named in "
                "AE_LAB_LESSON_DIRS; the README shows the format.")
        return
    lesson = choose_lesson(lessons)
    if projector_on():
        st.html(PROJECTOR_LESSON_CSS)
    with st.container(key="lesson_text_intro"):
        st.markdown(f"### {lesson.title}")
        st.markdown(f"*{lesson.goal}*")
    try:
        data = resolved_data(lesson.name, str(lesson.path), lesson.path.stat().st_mtime, lesson)
    except (DataError, ValueError, OSError) as exc:
        st.error(f"This lesson's data cannot be loaded: {exc}")
        return
    page_uses_data(data.config)
    if data.note:
        st.info(data.note, icon=":material/dataset:")
    key = student_key(owner_id())
    state = read_state(checkpoints_root(), lesson.name, key)
    if lesson.intro:
        with st.expander("Introduction", expanded=not state["steps"]):
            st.markdown(lesson.intro)
    number = choose_step(lesson, state)
    st.divider()
    step_section(lesson, number, data, key, state)
    st.divider()
    hand_in_section(lesson, key, state, data.note)
    if is_teacher():
        st.divider()
        teacher_section(lesson)


main()
