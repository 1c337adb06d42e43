"""Classifier: a small head trained on top of a run's encoder (frozen, or fine-tuned with it), in
the background like training; the frozen and the fine-tuned results side by side (the homework's
comparison: what the code knows on its own, and what fine-tuning adds): test accuracy, confusion
matrix, per-class accuracy, then the examples each got most confidently wrong."""
from __future__ import annotations

import streamlit as st

from core.analysis import ProbeConfig, image_grid
from ui import inspect_cache
from core.charts.probe import confusion_chart, per_class_accuracy_chart, probe_history_chart
from core.jobs import JobPermissionError
from ui.errors import error_text
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
BOTH_KEY = "classifier_train_both"
# run name -> {mode: id of the probe job this browser session started for it}
JOBS_KEY = "classifier_jobs"
DEFAULT_EPOCHS = ProbeConfig.epochs
DEFAULT_LR = ProbeConfig.lr
FROZEN, FINE_TUNED, EARLIER = "frozen", "fine-tuned", "earlier"
MODES = {FROZEN: "Frozen encoder", FINE_TUNED: "Fine-tuned encoder"}
EARLIER_TITLE = "The latest classifier trained on this run"
MOST_CONFUSED_PER_ROW = 8


LOOK_FOR = ("**What to look for:** how far above chance (one over the number of classes) a frozen "
             "encoder gets, and how much fine-tuning the encoder adds: the frozen code is what the "
             "autoencoder learned without labels.")


def probes_for(registry, run_name: str) -> dict[str, object]:
    """mode -> the probe job to show for this run: the ones this session started (frozen and
    fine-tuned, side by side); a session that started none (a reload, a second tab) gets the newest
    one the server knows of as EARLIER (the server does not say which kind it was)."""
    by_id = {job.id: job for job in registry.summaries() if job.kind == "probe" and job.run_name == run_name}
    mine = st.session_state.get(JOBS_KEY, {}).get(run_name, {})
    chosen = {mode: job_id for mode, job_id in mine.items() if job_id in by_id}
    if not chosen and by_id:
        chosen[EARLIER] = next(iter(by_id))  # newest first
    shown = {}
    for mode, job_id in chosen.items():
        try:  # the full copy (history, result) only for the ones shown
            shown[mode] = registry.snapshot(job_id)
        except KeyError:  # let go meanwhile (the registry keeps a bounded number of ended jobs)
            pass
    return shown


def last_accuracy(history: list[dict]) -> str:
    """The latest accuracy in the probe's history, as text ("" before the first epoch)."""
    if not history:
        return ""
    accuracies = {k: v for k, v in history[-1].items() if "acc" in k.lower()}
    return " · ".join(f"{k.replace('_', ' ')} {v:.1%}" for k, v in accuracies.items())


def live_progress(job_id: str, mode: str) -> None:
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
        show_chart(probe_history_chart(job.history), key=f"classifier_history_{mode}")
    mine = job.may_change(owner_id(), is_teacher())  # another student's classifier: seen, not stopped
    if st.button("Stop", key=f"classifier_stop_{mode}", icon=":material/stop:", disabled=not mine,
                 help=None if mine else "Only the student who started this classifier (or the teacher) can stop it."):
        try:
            get_registry().stop(job_id, by=owner_id(), teacher=is_teacher())
        except JobPermissionError as exc:
            st.error(md_message(exc))
            return
        st.caption("Stopping after the current batch...")


def show_summary(job, mode: str, chance: float) -> bool:
    """One mode's accuracy, confusion matrix and per-class accuracy (a column of the side-by-side
    view); False when it has no result to show (said)."""
    result = job.result
    if job.status == "failed" or result is None:
        (st.error if job.status == "failed" else st.warning)(md_message(job.message))
        return False
    if job.status != "finished":
        st.warning(md_message(job.message))
    st.metric("Test accuracy" + (f", {MODES[mode].lower()}" if mode in MODES else ""), f"{result.accuracy:.1%}",
              delta=f"{result.accuracy - chance:+.1%} over chance ({chance:.0%})",
              help="Share of the test images the classifier labels correctly; guessing would "
                   f"get about {chance:.0%}.")
    if result.best_epoch:
        st.caption(f"{md_message(job.message)} The weights of epoch {result.best_epoch}, the best on the "
                   "validation images, are the ones tested.")
    show_chart(confusion_chart(result.confusion, result.class_names), key=f"classifier_confusion_{mode}")
    show_chart(per_class_accuracy_chart(result.per_class_accuracy, result.accuracy),
               key=f"classifier_per_class_{mode}")
    if result.history:
        show_chart(probe_history_chart(result.history), key=f"classifier_history_{mode}")
    return True


def most_confused(run, result) -> None:
    if not result.most_confused:
        st.success("Every test image was classified correctly.")
        return
    images, _, dataset = inspect_cache.test_split(run)
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


def results_section(run, probes: dict) -> None:
    """Frozen and fine-tuned side by side (the homework's comparison), then the examples each got
    most confidently wrong."""
    _, _, dataset = inspect_cache.test_split(run)
    chance = 1.0 / max(dataset.num_classes, 1)
    shown = {}
    if EARLIER in probes:
        st.subheader(EARLIER_TITLE)
        job = probes[EARLIER]
        if job.status in ACTIVE_STATUSES:
            st.fragment(live_progress, run_every=0.5)(job.id, EARLIER)
        elif show_summary(job, EARLIER, chance):
            st.subheader("Most confused examples")
            most_confused(run, job.result)
        st.caption("Train both (frozen and fine-tuned) to see them side by side.")
        return
    with st.container(key="classifier_side_by_side"):
        for column, mode in zip(st.columns(2, gap="large"), MODES):
            with column:
                st.subheader(MODES[mode])
                job = probes.get(mode)
                if job is None:
                    st.info("Not trained yet: press Train both, or set Fine-tune the encoder "
                            f"{'on' if mode == FINE_TUNED else 'off'} and Train classifier.")
                elif job.status in ACTIVE_STATUSES:
                    st.fragment(live_progress, run_every=0.5)(job.id, mode)
                elif show_summary(job, mode, chance):
                    shown[mode] = job.result
    if len(shown) == 2:
        gain = shown[FINE_TUNED].accuracy - shown[FROZEN].accuracy
        st.caption(f"Fine-tuning the encoder {'adds' if gain >= 0 else 'loses'} {abs(gain):.1%} of accuracy: "
                   "the frozen column measures what the autoencoder learned on its own, without a label.")
    if shown:
        st.subheader("Most confused examples")
        for tab, mode in zip(st.tabs([MODES[m] for m in shown]), shown):
            with tab:
                most_confused(run, shown[mode])


def start(registry, run, mode_list: list[str], epochs: int, lr: float, hidden: int) -> None:
    for mode in mode_list:
        try:
            job_id = registry.start_probe(run.name, ProbeConfig(epochs=epochs, lr=lr, fine_tune=mode == FINE_TUNED,
                                                                hidden=hidden), owner=owner_id(), teacher=is_teacher())
        except Exception as exc:  # core's refusals as their sentence, a bug as one (ui.errors)
            st.error(error_text(exc))
            return
        st.session_state.setdefault(JOBS_KEY, {}).setdefault(run.name, {})[mode] = job_id
    st.rerun()


def main() -> None:
    st.title("Classifier")
    st.info(LOOK_FOR, icon=":material/visibility:")
    st.caption("How much does the code know about the class? Train a small classifier on top of "
               "the encoder: with the encoder frozen, its accuracy measures what the autoencoder "
               "learned on its own, without ever seeing a label; fine-tuned, the encoder learns too.")
    run = run_picker(key=RUN_KEY)
    if run is None:
        return
    if run.config.model.conditional:
        st.caption("This is a conditional model: its decoder is given the label, so its code has "
                   "no need to hold the class, and a classifier on it usually does worse than on "
                   "a plain autoencoder's code. (The encoder is given the same label, 0, for "
                   "every image, so the label cannot leak into the code.)")
    registry = get_registry()
    probes = probes_for(registry, run.name)
    running = any(job.status in ACTIVE_STATUSES for job in probes.values())

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
    left, right = st.columns([1, 3])
    if left.button("Train classifier", type="primary", key=TRAIN_KEY, disabled=running,
                   icon=":material/play_arrow:"):
        start(registry, run, [FINE_TUNED if fine_tune else FROZEN], epochs, lr, hidden)
    if right.button("Train both: frozen and fine-tuned", key=BOTH_KEY, disabled=running,
                    icon=":material/compare_arrows:"):
        start(registry, run, [FROZEN, FINE_TUNED], epochs, lr, hidden)

    if not probes:
        st.info("No classifier for this run yet: choose the settings and press Train classifier "
                "(or Train both, to see the frozen and the fine-tuned encoder side by side).")
        return
    try:
        results_section(run, probes)
    except Exception as exc:  # core's refusals as their sentence, a bug as one (ui.errors)
        st.error(error_text(exc))


main()
