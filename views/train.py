"""Train: the architecture and training settings with a live layer table, Start, and a live view
of the followed job (progress, loss curves, per-batch loss, the latest reconstructions, Stop).

Jobs belong to the server (ui.state.get_registry); this browser tab remembers the job it follows
in the URL (?job=<id>), so a reload keeps following it.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import streamlit as st

from core.checkpoints import default_run_name
from core.config import ConfigError, RunConfig
from core.data import DataError, fill_model_shape
from core.jobs import JobPermissionError, JobStatus
from core.models import build_model, layer_table
from core.serving.limits import WorkLimits, check_model, check_run
from core.charts.training import (LOSS_KEYS, VAE_PART_KEYS, batch_frame, batch_lines, batch_window, epoch_frame, loss_lines,
                       vae_parts_lines)
from ui.config_form import FORM_PROBLEMS_KEY, form_from_params, form_params, model_and_training_form
from ui.owners import is_teacher, owner_id, stop_job
from ui.sidebar import describe_data
from ui.state import (
    ACTIVE_STATUSES,
    SELECTED_RUN_KEY,
    chosen_data_config,
    dataset_for,
    get_experiments,
    get_registry,
)
from ui.train_settings import FITTED_FOR_KEY, TRAIN_FORM_KEY as FORM_KEY, fitted_defaults, remember_fitted
from ui.url_state import url_values
from ui.widgets import show_grid, upscale_for
from ui.projector import show_live_chart
from ui.text import md_message, md_text

POLL_SECONDS = 0.5
POLLING_KEY = "train_live_polling"  # whether this run's live fragment polls
ANNOUNCED_KEY = "train_announced_jobs"  # finished jobs whose run was already made the current run
FOLLOW_KEY = "follow_job"  # + "_<followed job id>": see live_view
# The job this tab chose to follow (Start, or a click in the job list): Streamlit drops ?job= when
# the student switches pages, and coming back must show the same job.
CHOSEN_JOB_KEY = "train_chosen_job"
CLEAR_NAME_KEY = "train_clear_run_name"  # set by Start: the next run's name box starts empty
JOBS_LISTED = 10
RECONSTRUCTIONS_PAGE = "views/reconstructions.py"
STATUS_ICONS = {JobStatus.QUEUED: ":material/schedule:", JobStatus.LOADING: ":material/downloading:",
                JobStatus.RUNNING: ":material/play_circle:", JobStatus.SAVING: ":material/save:",
                JobStatus.FINISHED: ":material/check_circle:", JobStatus.EARLY_STOPPED: ":material/check_circle:",
                JobStatus.STOPPED: ":material/stop_circle:", JobStatus.DIVERGED: ":material/warning:",
                JobStatus.FAILED: ":material/error:", JobStatus.UNSAVED: ":material/save_as:"}


@st.cache_data(max_entries=64, show_spinner=False)
def model_layers(model_cfg_json: str) -> tuple[list[dict], int]:
    """Layer rows and the total parameter count of the model core builds for this config."""
    return layer_table(build_model(RunConfig.from_json(model_cfg_json).model))


def layer_section(cfg: RunConfig) -> bool:
    """The layer table of the model as configured now; False when no model can be built."""
    st.subheader("Layers")
    try:
        dataset = dataset_for(cfg.data)
    except DataError as exc:
        st.error(md_message(exc))
        st.page_link("views/data.py", label="Choose a dataset", icon=":material/dataset:")
        return False
    fill_model_shape(cfg.model, dataset)
    try:
        # The server's limits first, counted from the config: a huge model is refused without
        # being built (the table below builds the model on every change of the settings).
        limits = WorkLimits.from_env()
        check_run(cfg, limits)
        check_model(cfg.model, limits)
        rows, total = model_layers(RunConfig(model=cfg.model).to_json())
    except ConfigError:  # a broken rule: the form says which, next to the settings
        return False
    except ValueError as exc:  # the limits' one-sentence reasons
        st.error(md_message(exc))
        return False
    c, h, w = dataset.shape
    st.caption(f"For {describe_data(cfg.data)}: input {c}×{h}×{w}, {dataset.num_classes} classes.")
    st.metric("Parameters", f"{total:,}")
    table = pd.DataFrame(rows).rename(columns={"layer": "Layer", "output_shape": "Output shape",
                                               "params": "Parameters"})
    # Columns sized to their content (nothing truncated, issue 8); a table wider than its column
    # scrolls sideways instead of cutting the layer names.
    st.dataframe(table, hide_index=True, key="layer_table", height=min(36 * (len(table) + 1) + 4, 560),
                 column_config={"Parameters": st.column_config.NumberColumn(format="localized")})
    return True


def training_images(data_cfg) -> int | None:
    """How many images the chosen dataset trains on (None when it does not load: the layer
    section below says why)."""
    try:
        return len(dataset_for(data_cfg).splits["train"])
    except DataError:
        return None


def form_start(data_cfg, train_count: int | None) -> RunConfig:
    """The settings the form starts from: the last ones it showed in this session (FORM_KEY), else
    the defaults with what the URL keeps (a reload, a shared link). When the dataset changes (or on
    the first visit), batch size and epochs start at the values suggested for its size; the user's
    own edits stand until the next change.

    The form's widgets get these as their value=, and nothing here writes a widget's key: a widget
    given both warns in the server log, and its session value wins anyway (one still on the page)."""
    form = st.session_state.get(FORM_KEY)
    first_visit = form is None
    form = copy.deepcopy(form) if form is not None else RunConfig()
    fitted_for = RunConfig(data=data_cfg).to_json()
    if train_count is not None and st.session_state.get(FITTED_FOR_KEY) != fitted_for:
        defaults = fitted_defaults(train_count)
        form.train.batch_size, form.train.epochs = defaults.train.batch_size, defaults.train.epochs
        remember_fitted(data_cfg, form.train.batch_size, form.train.epochs)
    if first_visit:
        form = form_from_params(st.query_params.to_dict(), form)
    return form


def settings_section() -> tuple[RunConfig, bool]:
    data_cfg = chosen_data_config()
    train_count = training_images(data_cfg)
    start = form_start(data_cfg, train_count)
    if st.session_state.pop(CLEAR_NAME_KEY, False):
        st.session_state["cfg_name"] = ""
    left, right = st.columns([1, 1], gap="large")
    with left:
        cfg = model_and_training_form(data_cfg, start, train_count)
    # Kept for a page switch (widgets forget their values when not drawn) and, where it differs
    # from this dataset's defaults, in the URL for a reload.
    st.session_state[FORM_KEY] = cfg
    url_values(form_params(cfg, fitted_defaults(train_count)))
    with right:
        buildable = layer_section(cfg)
    return cfg, buildable and not st.session_state.get(FORM_PROBLEMS_KEY)


def start_job(cfg: RunConfig) -> bool:
    """Queue cfg; False (and the reason on the page) when the server refuses it. Without a typed
    name the run is named by the settings that differ from this dataset's defaults."""
    if not cfg.name:
        cfg = copy.deepcopy(cfg)
        cfg.name = default_run_name(cfg, fitted_defaults(training_images(cfg.data)))
    try:
        job_id = get_registry().start(cfg, owner=owner_id(), teacher=is_teacher())
    except ValueError as exc:  # the server's limits and each student's share (LimitError), in one sentence
        st.error(md_message(exc))
        return False
    follow(job_id)
    return True


# ---------------------------------------------------------------- live view

def train_jobs() -> list:
    """Summaries of the training jobs (no losses or pictures: the followed job's snapshot has them)."""
    return [job for job in get_registry().summaries() if job.kind == "train"]


def follow(job_id: str) -> None:
    """This tab follows `job_id` from now on (in the URL for a reload, in the session for a page switch)."""
    st.query_params["job"] = job_id
    st.session_state[CHOSEN_JOB_KEY] = job_id


def followed_job(jobs: list):
    """The job in ?job=, else the one this tab chose (started or clicked), else the newest active
    one (a fresh tab shows what the server runs), else the newest one."""
    by_id = {job.id: job for job in jobs}
    if st.query_params.get("job") in by_id:
        return by_id[st.query_params["job"]]
    if st.session_state.get(CHOSEN_JOB_KEY) in by_id:  # back from another page: into the URL again
        follow(st.session_state[CHOSEN_JOB_KEY])
        return by_id[st.session_state[CHOSEN_JOB_KEY]]
    return next((job for job in jobs if job.status in ACTIVE_STATUSES), jobs[0] if jobs else None)


def job_label(job) -> str:
    """A radio label. Streamlit sends the chosen label back and matches it against the current
    labels, so a label must be unique (two runs can share a name: the job id tells them apart) and
    must not change while the job runs (no status in it: the followed job's status is shown below)."""
    return f"{md_text(job.name)} · job {job.id}"


def progress_text(job) -> str:
    parts = [f"epoch {job.epoch}/{job.total_epochs}", f"batch {job.batch}/{job.batches_per_epoch}"]
    if job.history:
        last = job.history[-1]
        parts += [f"{last.seconds:.2f} s/epoch", f"{last.images_per_s:,.0f} img/s"]
    return " · ".join(parts)


def status_message(job) -> None:
    if job.status == JobStatus.UNSAVED:
        st.error(md_message(job.message), icon=":material/save_as:")
    elif job.status == JobStatus.SAVING:
        st.info("Saving the run...", icon=":material/save:")
    elif job.status == JobStatus.QUEUED:
        st.info(f"Queued: position {job.queue_position} — it starts when the running job ends.",
                icon=":material/schedule:")
    elif job.status == JobStatus.LOADING:
        st.info("Loading the data...", icon=":material/downloading:")
    elif job.status in (JobStatus.FINISHED, JobStatus.EARLY_STOPPED):
        st.success(md_message(job.message), icon=":material/check_circle:")
    elif job.status == JobStatus.STOPPED:
        st.warning(md_message(job.message), icon=":material/stop_circle:")
    elif job.status in (JobStatus.DIVERGED, JobStatus.FAILED):
        st.error(md_message(job.message), icon=":material/error:")


def saved_run_link(job) -> None:
    """Once a run is saved it becomes the current run (once per job, so a later choice on another
    page is not overwritten), with a link to look at it."""
    if not job.run_name:
        if job.status not in ACTIVE_STATUSES:
            st.caption("Nothing was saved: no epoch finished.")
        return
    announced = st.session_state.setdefault(ANNOUNCED_KEY, set())
    if job.id not in announced:
        announced.add(job.id)
        st.session_state[SELECTED_RUN_KEY] = job.run_name
    st.caption(f"Saved as run **{md_text(job.run_name)}**.")
    if Path(RECONSTRUCTIONS_PAGE).is_file():
        st.page_link(RECONSTRUCTIONS_PAGE, label=f"See the reconstructions of {md_text(job.run_name)}",
                     icon=":material/compare:")


def job_charts(job) -> None:
    # Redrawn on every poll by every student following the job: the charts' specs and the
    # pictures are made once (ui.projector.show_live_chart, show_grid's same_as), only the new
    # numbers travel.
    left, right = st.columns(2)
    with left, st.container(key="live_loss_chart"):
        if job.history:
            show_live_chart("train_loss", loss_lines, epoch_frame(job.history, LOSS_KEYS), height=340)
            if job.config.model.vae:
                # Taller than the loss chart: its height holds the title, the formula and a legend of
                # four rows too (Streamlit fits the whole chart, legend included, into it).
                show_live_chart("train_vae_parts", vae_parts_lines, epoch_frame(job.history, VAE_PART_KEYS),
                                height=480)
        else:
            st.caption("The loss per epoch appears here after the first epoch.")
    with right, st.container(key="live_batch_chart"):
        if job.batch_losses:
            frame = batch_frame(job.batch_losses, batch_window(job.batch_losses), job.batch_loss_stride)
            show_live_chart("train_batch_loss", batch_lines, frame, height=340)
        else:
            st.caption("The loss of every batch appears here once training starts.")
    with st.container(key="live_recon"):
        if job.film_originals is not None and len(job.film_originals):
            scale = upscale_for(job.film_originals.shape[-1])
            nrow = len(job.film_originals)
            left, right = st.columns(2)
            with left:
                show_grid(job.film_originals, caption="Originals (fixed validation images)", nrow=nrow,
                          scale=scale, same_as=(job.id, job.started_at, "originals"))
            with right:
                if job.latest_frame is not None:
                    epochs = len(job.history)
                    show_grid(job.latest_frame, caption=f"Reconstructions after epoch {epochs}",
                              nrow=nrow, scale=scale, same_as=(job.id, job.started_at, "epoch", epochs))
                else:
                    st.caption("The reconstructions appear here after the first epoch.")


def show_job(job) -> None:
    st.markdown(f"#### {STATUS_ICONS.get(job.status, '')} {md_text(job.run_name or job.name)}")
    status_message(job)
    if job.status not in (JobStatus.QUEUED, JobStatus.LOADING, JobStatus.FAILED):
        bar_text = progress_text(job)
        st.progress(min(max(job.progress, 0.0), 1.0), text=bar_text)
    if job.status == JobStatus.UNSAVED:
        save_again_button(job)
    elif job.status in ACTIVE_STATUSES:
        if not job.may_change(owner_id(), is_teacher()):  # another student's job: seen, not stopped
            st.button("Stop", key="stop_job", icon=":material/stop:", type="secondary", disabled=True)
            st.caption("Only the student who started this job (or the teacher) can stop it.")
        elif st.button("Stop", key="stop_job", icon=":material/stop:", type="secondary"):
            problem = stop_job(job.id)
            if problem:
                st.error(md_message(problem))
            else:
                st.toast(f"Stopping {md_text(job.name)}...")
    else:
        saved_run_link(job)
    if job.status not in (JobStatus.QUEUED, JobStatus.FAILED):
        job_charts(job)


def save_again_button(job) -> None:
    """A job whose save failed keeps its trained model in memory: its owner (or the teacher) saves again."""
    if not job.may_change(owner_id(), is_teacher()):
        st.caption("Only the student who started this job (or the teacher) can save it.")
        return
    if st.button("Save again", key="save_again", icon=":material/save:", type="primary"):
        try:
            after = get_registry().save_again(job.id, by=owner_id(), teacher=is_teacher())
        except (JobPermissionError, KeyError) as exc:
            st.error(md_message(str(exc).strip("'\"")))
            return
        if after.status != JobStatus.UNSAVED:
            st.rerun()


def teacher_controls(job) -> None:
    """The teacher stops one student's jobs, or every job, in one click (their experiments first,
    so none queues its next runs)."""
    left, right = st.columns(2)
    if job.owner_key is not None and left.button("Stop all jobs of this student", key="stop_student",
                                                 icon=":material/person_off:"):
        get_experiments().stop_owner(job.owner_key)
        st.toast(f"Stopping {get_registry().stop_owner(job.owner_key)} job(s) of this student...")
    if right.button("Stop every job", key="stop_every_job", icon=":material/stop_circle:"):
        get_experiments().stop_all()
        st.toast(f"Stopping {get_registry().stop_all()} job(s)...")


def live_view() -> None:
    """The jobs and the followed one. Runs as a fragment: polled while a job is active."""
    jobs = train_jobs()
    if not jobs:
        st.caption("No training job yet: set up the model above and press Start training.")
        return
    job = followed_job(jobs)  # never None here: the list's selected job is the one shown below
    listed = jobs[:JOBS_LISTED]
    if job.id not in {j.id for j in listed}:
        listed.append(job)
    if len(listed) > 1:
        # One radio per followed job, read before it is drawn and never written to by the script.
        # A poll the browser sent before Start's answer arrived still carries the radio's old
        # choice; had the script moved a single radio to the new job (and reacted to changes in
        # an on_change callback), that stale choice would read as the student picking the old job
        # again (issue 9: a tab switched to an old finished job). A stale value now belongs to a
        # radio that is no longer drawn, and is never read.
        chosen = st.session_state.get(f"{FOLLOW_KEY}_{job.id}")
        if chosen != job.id and chosen in {j.id for j in listed}:  # a click on the radio shown last
            follow(chosen)
            job = next(j for j in listed if j.id == chosen)
        labels = {j.id: job_label(j) for j in listed}
        st.radio("Jobs on this server (choose one to follow)", list(labels), key=f"{FOLLOW_KEY}_{job.id}",
                 index=list(labels).index(job.id), format_func=labels.get)
    if is_teacher():
        teacher_controls(job)
    try:
        show_job(get_registry().snapshot(job.id))  # the full copy: only for the job shown
    except KeyError:  # it ended long ago and was let go meanwhile: the next poll lists the others
        st.caption("That job is no longer kept; its run is on the Runs page.")
    # A fragment cannot change its own run_every: when the last job ends, a full rerun redraws
    # the page (and the sidebar) with a fragment that no longer polls.
    if st.session_state.get(POLLING_KEY) and not any(j.status in ACTIVE_STATUSES for j in train_jobs()):
        st.session_state[POLLING_KEY] = False
        st.rerun()


def live_section() -> None:
    st.subheader("Live training")
    polling = any(job.status in ACTIVE_STATUSES for job in train_jobs())
    st.session_state[POLLING_KEY] = polling
    with st.container(key="live_training"):
        st.fragment(live_view, run_every=POLL_SECONDS if polling else None)()


def main() -> None:
    st.title("Train")
    cfg, ready = settings_section()
    c1, c2 = st.columns([1, 4], vertical_alignment="center")
    if c1.button("Start training", key="start_job", type="primary", icon=":material/play_arrow:",
                 disabled=not ready):
        if start_job(cfg):
            # The next run's name starts empty (the box would otherwise offer this run's name again).
            st.session_state[CLEAR_NAME_KEY] = True
            st.rerun()
    c2.caption(f"Trains on {describe_data(cfg.data)} in the background; you can leave this page "
               "and come back, even after a reload.")
    st.divider()
    live_section()


main()
