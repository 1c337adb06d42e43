"""Classifier: a small head trained on top of a run's encoder (frozen, or fine-tuned with it), in
the background like training; then its test accuracy, confusion matrix, per-class accuracy and
the examples it got most confidently wrong."""
from __future__ import annotations

import streamlit as st

from core.analysis import ProbeConfig, image_grid
from ui import inspect_cache
from core.charts.probe import confusion_chart, per_class_accuracy_chart, probe_history_chart
from ui.owners import is_teacher, owner_id
from ui.state import ACTIVE_STATUSES, get_registry
from ui.widgets import run_picker, upscale_for
from ui.projector import images_per_row, show_chart
from ui.text import md_message, md_text

RUN_KEY = "classifier_run"
EPOCHS_KEY = "classifier_epochs"
LR_KEY = "classifier_lr"
HIDDEN_KEY = "classifier_hidden"
FINE_TUNE_KEY = "classifier_fine_tune"
TRAIN_KEY = "classifier_train"
STOP_KEY = "classifier_stop"
# run name -> id of the probe job this browser session started for it
JOBS_KEY = "classifier_jobs"
DEFAULT_EPOCHS = ProbeConfig.epochs
DEFAULT_LR = ProbeConfig.lr
# Charts get fixed keys so the browser keeps them (and tests find them) across reruns.
CONFUSION_KEY = "classifier_confusion"
PER_CLASS_KEY = "classifier_per_class"
HISTORY_KEY = "classifier_history"
MOST_CONFUSED_PER_ROW = 8


LOOK_FOR = ("**What to look for:** how far above chance (one over the number of classes) a frozen "
             "encoder gets, and which classes the confusion matrix mixes up — the ones that overlap in "
             "the latent space.")

def probe_for(registry, run_name: str):
    """The probe job to show for this run: the one this session started, else the newest one
    the server knows of (so a reload or a second tab finds it); None when there is none."""
    mine = st.session_state.get(JOBS_KEY, {}).get(run_name)
    probes = [job for job in registry.summaries() if job.kind == "probe" and job.run_name == run_name]
    chosen = next((job for job in probes if job.id == mine), probes[0] if probes else None)
    try:  # the full copy (history, result) only for the one shown
        return registry.snapshot(chosen.id) if chosen is not None else None
    except KeyError:  # let go meanwhile (the registry keeps a bounded number of ended jobs)
        return None


def last_accuracy(history: list[dict]) -> str:
    """The latest accuracy in the probe's history, as text ("" before the first epoch)."""
    if not history:
        return ""
    accuracies = {k: v for k, v in history[-1].items() if "acc" in k.lower()}
    return " · ".join(f"{k.replace('_', ' ')} {v:.1%}" for k, v in accuracies.items())


@st.fragment(run_every=0.5)
def live_progress(job_id: str) -> None:
    """Progress of a running probe, polled twice a second; a full rerun shows the results."""
    job = get_registry().snapshot(job_id)
    if job.status not in ACTIVE_STATUSES:
        st.rerun()
    if job.status == "queued":
        where = f" (position {job.queue_position})" if job.queue_position else ""
        st.info(f"The classifier waits in the queue{where}: it starts when a running job ends.")
    elif job.status == "loading":
        st.progress(0.0, text="Loading the run and its data...")
    else:
        text = f"Epoch {job.epoch}/{job.total_epochs}"
        accuracy = last_accuracy(job.history)
        st.progress(min(max(float(job.progress), 0.0), 1.0),
                    text=f"{text} · {accuracy}" if accuracy else text)
    if job.history:
        show_chart(probe_history_chart(job.history), key=HISTORY_KEY)
    if st.button("Stop", key=STOP_KEY, icon=":material/stop:"):
        get_registry().stop(job_id)
        st.caption("Stopping after the current batch...")


def show_result(run, job) -> None:
    result = job.result
    if job.status == "failed" or result is None:
        (st.error if job.status == "failed" else st.warning)(md_message(job.message))
        return
    if job.status != "finished":
        st.warning(md_message(job.message))
    images, _, dataset = inspect_cache.test_split(run)
    chance = 1.0 / max(len(result.class_names), 1)
    st.metric("Test accuracy", f"{result.accuracy:.1%}",
              delta=f"{result.accuracy - chance:+.1%} over chance ({chance:.0%})",
              help="Share of the test images the classifier labels correctly; guessing would "
                   f"get about {chance:.0%}.")
    if result.best_epoch:
        st.caption(f"{md_message(job.message)} The weights of epoch {result.best_epoch}, the best on the "
                   "validation images, are the ones tested.")

    st.subheader("Confusion matrix")
    show_chart(confusion_chart(result.confusion, result.class_names), key=CONFUSION_KEY)
    st.caption("Rows: the true class; columns: what the classifier said. The diagonal holds the "
               "correct answers; a dark cell off it is a pair of classes the codes mix up.")

    left, right = st.columns(2)
    with left:
        st.subheader("Accuracy per class")
        show_chart(per_class_accuracy_chart(result.per_class_accuracy, result.accuracy),
                        key=PER_CLASS_KEY)
    with right:
        st.subheader("Training curves")
        if result.history:
            show_chart(probe_history_chart(result.history), key=HISTORY_KEY)

    st.subheader("Most confused examples")
    if not result.most_confused:
        st.success("Every test image was classified correctly.")
        return
    scale = upscale_for(dataset.shape[-1])
    # One column per image: the gaps keep the dark-background digits apart. As many a row as fit
    # at full size (8 projector-size digits did not: each ran into the next column).
    per_row = images_per_row(dataset.shape[-1] * scale, MOST_CONFUSED_PER_ROW)
    for first in range(0, len(result.most_confused), per_row):
        for column, item in zip(st.columns(per_row), result.most_confused[first:first + per_row]):
            index = item["index"]
            picture = image_grid(images[index:index + 1], nrow=1, padding=0, scale=scale)
            # The default width: the picture's own, but never wider than its column.
            column.image(picture, caption=f"{md_text(item['true'])} → {md_text(item['pred'])} "
                                             f"({item['confidence']:.0%})")
    st.caption("The test images the classifier got wrong with the highest confidence: "
               "true class → predicted class (the predicted class's probability).")


def main() -> None:
    st.title("Classifier")
    st.info(LOOK_FOR, icon=":material/visibility:")
    st.caption("How much does the code know about the class? Train a small classifier on top of "
               "the encoder: with the encoder frozen, its accuracy measures what the autoencoder "
               "learned on its own, without ever seeing a label.")
    run = run_picker(key=RUN_KEY)
    if run is None:
        return
    if run.config.model.conditional:
        st.caption("This is a conditional model: its decoder is given the label, so its code has "
                   "no need to hold the class, and a classifier on it usually does worse than on "
                   "a plain autoencoder's code. (The encoder is given the same label, 0, for "
                   "every image, so the label cannot leak into the code.)")
    registry = get_registry()
    job = probe_for(registry, run.name)
    running = job is not None and job.status in ACTIVE_STATUSES

    col_epochs, col_lr, col_hidden = st.columns(3)
    epochs = int(col_epochs.number_input("Epochs", min_value=1, max_value=200, value=DEFAULT_EPOCHS, step=1,
                                         key=EPOCHS_KEY))
    lr = float(col_lr.number_input("Learning rate", min_value=1e-5, max_value=1.0, value=DEFAULT_LR,
                                   step=1e-4, format="%.4f", key=LR_KEY))
    hidden = int(col_hidden.number_input("Hidden units", min_value=0, max_value=1024, value=0,
                                         step=16, key=HIDDEN_KEY,
                                         help="0 = a linear head straight from the code to the "
                                              "classes; more adds one hidden layer."))
    fine_tune = st.checkbox("Fine-tune the encoder too", key=FINE_TUNE_KEY,
                            help="Also train the encoder's weights (a copy: the run itself is "
                                 "not changed). Usually more accurate, but it no longer measures "
                                 "what the autoencoder learned on its own.")
    if st.button("Train classifier", type="primary", key=TRAIN_KEY, disabled=running,
                 icon=":material/play_arrow:"):
        try:
            job_id = registry.start_probe(run.name, ProbeConfig(epochs=epochs, lr=lr, fine_tune=fine_tune,
                                                                hidden=hidden), owner=owner_id(), teacher=is_teacher())
        except Exception as exc:  # core errors carry one plain sentence
            st.error(md_message(exc))
            return
        st.session_state.setdefault(JOBS_KEY, {})[run.name] = job_id
        st.rerun()

    if job is None:
        st.info("No classifier for this run yet: choose the settings and press Train classifier.")
    elif running:
        live_progress(job.id)
    else:
        try:
            show_result(run, job)
        except Exception as exc:  # core errors carry one plain sentence
            st.error(md_message(exc))


main()
