"""The Experiments page (AppTest): a preset chosen shows its question, plan and time estimate;
Start queues every variant with a live table; the result views carry the right series; a search
and an anomaly experiment saved earlier (a restarted server) show their own views."""
from __future__ import annotations

import json
import shutil
import threading
import time

import pytest

from apptest_helpers import charts, expect_errors, open_app_page
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.experiments import ExperimentConfig, ExperimentManager, SearchConfig, ParamSpace, preset_experiment
from core.jobs import JobRegistry

PAGE = "views/experiments.py"
TINY = {"Image limit (0 = all)": 300, "Epochs per run": 1}


def tiny_base(epochs: int = 1, limit: int = 300) -> RunConfig:
    return RunConfig(data=DataConfig(dataset="digits", limit=limit), train=TrainConfig(epochs=epochs, device="cpu"))


def chart(at, title: str, column: str | None = None):
    """The data of the chart titled `title` (of a layered chart: its first layer whose data has `column`)."""
    found = [frame for t, frame in charts(at) if t == title and (column is None or column in frame)]
    assert found, f"no chart titled {title!r}; charts: {[t for t, _ in charts(at)]}"
    return found[0]


def spec(at, title: str) -> dict:
    """The Vega-Lite spec of the chart titled `title`."""
    found = [json.loads(c.proto.spec) for c in at.main.get("vega_lite_chart")]
    found = [s for s in found if s.get("title") == title]
    assert found, f"no chart titled {title!r}"
    return found[0]


def colour_map(chart_spec: dict) -> tuple[str, str, dict[str, str]]:
    """(field, legend title, value -> colour) of a chart's colour encoding."""
    color = chart_spec["encoding"]["color"]
    return color["field"], color.get("title"), dict(zip(color["scale"]["domain"], color["scale"]["range"]))


def table(at, container: str):
    """The st.dataframe inside the keyed container (AppTest does not expose a read-only table's key)."""
    return at.main.get_by_key(container).dataframe[0].value


def number(at, label: str):
    """The number input labelled `label` (some are keyed by the experiment's base)."""
    found = [n for n in at.number_input if n.label == label]
    assert found, f"no number input {label!r}: {[n.label for n in at.number_input]}"
    return found[0]


def markdown(at) -> str:
    return " ".join(m.value for m in at.markdown)


def set_tiny(at, preset: str):
    at.selectbox(key="exp_preset").set_value(preset).run()
    for label, value in TINY.items():
        number(at, label).set_value(value).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def until_estimated(at, timeout: float = 240):
    """Rerun the page until the background measurements are in and the estimate is shown."""
    deadline = time.monotonic() + timeout
    while "about" not in markdown(at):
        assert time.monotonic() < deadline, "no estimate in time"
        time.sleep(0.5)
        at.run()
    return at


def wait_until_done(at, name: str, timeout: float = 240):
    from ui.state import get_experiments

    deadline = time.monotonic() + timeout
    while get_experiments().is_running(name):
        assert time.monotonic() < deadline, "the experiment did not finish in time"
        time.sleep(0.5)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def quick_measure(monkeypatch):
    """The background measurement as a stand-in that waits until the test lets it answer (the real
    one, tests/test_estimate.py, takes seconds per setting on a busy machine); returns its gate."""
    from core.experiments import estimate

    gate = threading.Event()

    def measure(cost):
        gate.wait(60)
        return estimate.JobCosts(images_per_s=2000.0, eval_images_per_s=8000.0, epoch_s=0.05, job_s=0.5)

    monkeypatch.setattr(estimate, "measure_job_costs", measure)
    return gate


def test_a_preset_shows_its_question_plan_at_once_and_the_estimate_when_measured(no_runs, quick_measure):
    """Issue 21: the first visit took 127 s while the page measured the machine. The page now draws
    at once and says the estimate is being measured; the figure follows from the background."""
    at = set_tiny(open_app_page(PAGE), "latent-sizes")
    assert any("bottleneck" in info.value for info in at.info)  # the question
    plan = table(at, "exp_plan")
    assert plan["latent"].tolist() == ["2", "4", "8", "16", "32"]
    assert "measuring how long these settings take here, in the background" in markdown(at)
    assert at.button(key="exp_start").disabled is False  # Start does not wait for the estimate
    quick_measure.set()
    estimate = markdown(until_estimated(at))
    assert "5 runs" in estimate and "images/s" in estimate
    # The parts of the estimate besides the training steps are said (core.experiments.estimate).
    assert "s per epoch" in estimate and "for validation" in estimate and "s per run to build and save" in estimate
    assert not at.error


def test_the_experiment_runs_the_students_own_model_with_batch_and_epochs_fitted_to_the_data(no_runs):
    """Issue 21: every preset trained a hidden conv-small z16, batch 128, 5 epochs whatever the Train page
    held. The optimiser homework's dense 1000-500-250-2 now is the base; 240 training images get the
    data-fitted batch and epochs (core.defaults), and the preset's batch 256 is warned about before Start."""
    form = RunConfig(model=ModelConfig(family="dense", hidden=[1000, 500, 250], latent=2),
                     train=TrainConfig(device="cpu"))
    at = open_app_page(PAGE, {"train_form_config": form})
    at.selectbox(key="exp_preset").set_value("optimisers").run()
    number(at, "Image limit (0 = all)").set_value(300).run()
    assert number(at, "Batch size").value == 16 and number(at, "Epochs per run").value == 34  # 240 images
    said = " ".join(c.value for c in at.caption)
    assert "dense-1000-500-250, latent 2" in said  # core.checkpoints.describe_model and "fitted to the data's size" in said
    assert any("Only 1 optimiser step per epoch" in w.value and "batch 256" in w.value for w in at.warning)
    assert table(at, "exp_plan")["batch size"].tolist() == ["32", "256"] * 5

    # The student's own batch size and epochs (set on the Train form for this data: the form suggested
    # batch 64 and 22 epochs for the 1,437 digits, the student typed 3 epochs) are kept.
    form.train.batch_size, form.train.epochs = 64, 3
    at.session_state["train_form_config"] = form
    at.session_state["train_defaults_for"] = RunConfig(data=DataConfig(dataset="digits")).to_json()
    at.session_state["train_fitted_values"] = (64, 22)
    at.run()
    assert number(at, "Epochs per run").value == 3 and number(at, "Batch size").value == 64


def test_a_custom_grid_takes_any_values_typed_list_settings_included(no_runs):
    """Issue 21: latent 2, 4, 6 (the Fashion-MNIST homework's sizes) and dense hidden sizes
    1000-500-250 vs 256-64 could not be chosen (only 2, 4, 8, 16, 32, 64 were offered)."""
    from ui.train_settings import TRAIN_FORM_KEY

    at = set_tiny(open_app_page(PAGE, {TRAIN_FORM_KEY: RunConfig(model=ModelConfig(family="dense", hidden=[64]))}),
                  "custom")
    assert any("Choose at least one setting to vary" in info.value for info in at.info)
    at.multiselect(key="exp_vary").set_value(["model.latent", "model.hidden"]).run()
    at.text_input(key="exp_values_custom_model.latent").set_value("2, 4, 6").run()
    at.text_input(key="exp_values_custom_model.hidden").set_value("1000-500-250, 256-64").run()
    plan = table(at, "exp_plan")
    assert plan["latent"].tolist() == ["2", "2", "4", "4", "6", "6"]
    assert plan["hidden"].tolist() == ["1000-500-250", "256-64"] * 3
    assert "6 runs" in markdown(at)
    expect_errors(at, "Latent size", "latent 5000")  # the two error boxes asked for below
    at.text_input(key="exp_values_custom_model.latent").set_value("2, four").run()
    assert any("Latent size" in e.value and "four" in e.value for e in at.error)
    at.text_input(key="exp_values_custom_model.latent").set_value("2, 5000").run()
    assert any("latent 5000" in e.value and "limit" in e.value for e in at.error)  # said before Start
    assert not [b for b in at.button if b.key == "exp_start"]  # nothing to start until it is fixed


def test_dense_hidden_sizes_on_a_convolutional_model_are_refused_before_start(no_runs):
    """Walk of issue 21: varying Dense hidden sizes while the Train page holds conv-small started
    two identical conv runs without a word."""
    at = set_tiny(open_app_page(PAGE, errors=["Dense hidden sizes do not change"]), "custom")
    at.multiselect(key="exp_vary").set_value(["model.hidden"]).run()
    at.text_input(key="exp_values_custom_model.hidden").set_value("1000-500-250, 256-64").run()
    assert any("Dense hidden sizes do not change a convolutional model" in e.value for e in at.error), \
        [e.value for e in at.error]
    assert not [b for b in at.button if b.key == "exp_start"]


def test_a_students_experiment_above_the_work_limit_is_refused_in_one_sentence_and_nothing_is_queued(
        no_runs, quick_measure, monkeypatch):
    """A student's grid that would train more images (runs × epochs × training images) than
    AE_LAB_MAX_EXPERIMENT_IMAGES allows one student: Start says so in one plain sentence and
    neither an experiment nor a job is made (core: tests/test_jobs_share.py)."""
    import re

    from ui.state import get_experiments, get_registry

    quick_measure.set()
    monkeypatch.setenv("AE_LAB_MAX_EXPERIMENT_IMAGES", "500")
    at = set_tiny(open_app_page(PAGE), "latent-sizes")  # 5 runs × 1 epoch × the training part of 300 images
    expect_errors(at, "This experiment would train")
    at.button(key="exp_start").click().run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    match = re.fullmatch(r"This experiment would train ([\d,]+) images in all \(5 runs × epochs × training images\), "
                         r"above the 500 one student may start at once on this server; use fewer runs, fewer "
                         r"epochs or fewer images\.", errors[0])
    assert match and int(match.group(1).replace(",", "")) > 500, errors[0]
    assert get_experiments().records() == [] and get_registry().summaries() == []
    assert not [p.name for p in no_runs.iterdir() if not p.name.startswith(".")]  # no experiment folder, no run
    assert "exp_shown" not in at.session_state and not at.toast
    assert any("No experiment yet" in c.value for c in at.caption)
    # The same grid within the limit starts (the refusal was the limit, not the grid).
    monkeypatch.setenv("AE_LAB_MAX_EXPERIMENT_IMAGES", "0")  # 0: no limit
    expect_errors(at)
    at.button(key="exp_start").click().run()
    name = at.session_state["exp_shown"]
    try:
        assert [r["name"] for r in get_experiments().records()] == [name]
    finally:
        get_experiments().stop(name)
        get_experiments().wait(name, timeout=120)


def test_a_presets_values_can_be_changed(no_runs):
    at = set_tiny(open_app_page(PAGE), "latent-sizes")
    at.text_input(key="exp_values_latent-sizes_model.latent").set_value("2, 4, 6").run()
    assert table(at, "exp_plan")["latent"].tolist() == ["2", "4", "6"]


def test_an_experiment_can_start_from_a_saved_runs_settings(app_runs):
    at = open_app_page(PAGE)
    at.radio(key="exp_source").set_value("run").run()
    names = at.selectbox(key="exp_source_run").options
    at.selectbox(key="exp_source_run").set_value(names[0]).run()
    saved = RunConfig.from_json((app_runs / names[0] / "config.json").read_text())
    said = " ".join(c.value for c in at.caption)
    assert f"run {names[0]}'s settings" in said and f"latent {saved.model.latent}" in said
    assert number(at, "Epochs per run").value == saved.train.epochs  # a run's own settings stand


def test_start_queues_every_variant_then_the_views_answer_the_question(no_runs, monkeypatch):
    monkeypatch.setenv("AE_LAB_MAX_JOBS", "2")
    at = set_tiny(open_app_page(PAGE), "latent-sizes")
    at.button(key="exp_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    # The experiment shown is bound to ?experiment= (ui.url_state writes it; the browser walk reads the URL).
    assert at.session_state["exp_shown"] == "latent-sizes"
    assert at.session_state["url_bound_widgets"]["experiment"] == "exp_shown"
    # Start brings the live view into sight (a script that scrolls to it, sent once).
    assert any("scrollIntoView" in h.proto.body for h in at.get("html"))
    variants = table(at, "exp_live")  # the live table, every variant listed at once
    assert variants["variant"].tolist() == [f"latent {z}" for z in (2, 4, 8, 16, 32)]
    assert set(variants["status"]) <= {"queued", "loading", "running", "finished"}

    at = wait_until_done(at, "latent-sizes")
    assert not any("scrollIntoView" in h.proto.body for h in at.get("html"))
    variants = table(at, "exp_live")
    assert variants["status"].tolist() == ["finished"] * 5 and variants["run"].notna().all()
    curves = chart(at, "Loss per epoch of every variant (same axes)")
    assert sorted(set(curves["variant"])) == sorted(f"latent {z}" for z in (2, 4, 8, 16, 32))
    assert set(curves["split"]) == {"train", "validation"}
    by_latent = chart(at, "Test MSE against latent")
    assert by_latent["latent"].tolist() == ["2", "4", "8", "16", "32"] and by_latent["test_mse"].notna().all()
    gap = chart(at, "Train vs validation loss (best epoch): the gap shows over-fitting")
    assert len(gap) == 10 and set(gap["split"]) == {"train", "validation"}
    # originals + one row per variant, the same test images in each
    assert len(at.main.get_by_key("exp_reconstructions").get("image")) == 6

    at.button(key="exp_best").click().run()
    best = variants.loc[variants["test MSE"].idxmin(), "run"]  # by the metric shown (test MSE)
    assert at.session_state["selected_run"] == best


@pytest.fixture(scope="module")
def saved_experiments(tmp_path_factory):
    """A search and an anomaly experiment run once, as a previous server left them."""
    root = tmp_path_factory.mktemp("saved_experiments")
    manager = ExperimentManager(JobRegistry(root=root, max_concurrent=2), poll_seconds=0.05)
    search = preset_experiment("search", tiny_base(epochs=2, limit=400), "lr-search")
    search.search = SearchConfig(space={"train.lr": ParamSpace("float", 1e-3, 3e-2, log=True),
                                        "model.latent": ParamSpace("categorical", choices=[2, 8])},
                                 trials=4, prune=False)  # every trial completes: the views below are all drawn
    anomaly = preset_experiment("anomaly", tiny_base(limit=600), "held-out")
    anomaly.grid = {"data.exclude_classes": [[0], [7]]}
    denoising = preset_experiment("denoising", tiny_base(), "noise")
    vae = preset_experiment("ae-vs-vae", tiny_base(), "vae")
    vae.variants = vae.variants[:2]  # plain AE and one VAE
    conditional = preset_experiment("conditional", tiny_base(), "cond")
    size_dropout = preset_experiment("size-dropout", tiny_base(), "size-dropout")
    three = ExperimentConfig(name="three", base=tiny_base(), grid={
        "model.preset": ["small", "large"], "model.dropout": [0.0, 0.5], "train.optimizer": ["adam", "sgd"]})
    one_value = ExperimentConfig(name="one-value", base=tiny_base(), grid={"model.latent": [4], "model.dropout": [0.0, 0.5]})
    for exp in (search, anomaly, denoising, vae, conditional, size_dropout, three, one_value):
        record = manager.wait(manager.start(exp), timeout=300)
        assert record["status"] == "finished", record["message"]
    return root


@pytest.fixture
def app_experiments(saved_experiments, tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    shutil.copytree(saved_experiments, root)
    monkeypatch.setenv("AE_LAB_CHECKPOINTS", str(root))
    return root


def test_a_saved_search_shows_history_trials_importances_and_parallel_coordinates(app_experiments):
    at = open_app_page(PAGE, {"exp_shown": "lr-search"})
    assert at.selectbox(key="exp_shown").value == "lr-search"
    history = chart(at, "Optimisation history (line: best so far)", column="best")  # the best-so-far line
    points = max((f for t, f in charts(at) if t == "Optimisation history (line: best so far)"), key=len)
    assert sorted(points["trial"].tolist()) == [0, 1, 2, 3]  # every trial, pruned ones at their last epoch
    assert set(history["state"]) == {"complete"} and history["best"].is_monotonic_decreasing
    trials = table(at, "exp_search_charts")
    assert len(trials) == 4 and {"train.lr", "model.latent", "state"} <= set(trials.columns)
    assert (trials["state"] == "complete").all()
    importances = chart(at, "Parameter importances (Optuna, fANOVA)")
    assert len(importances) == 2
    coords = chart(at, "Parallel coordinates of the completed trials")
    assert set(coords["setting"]) == {"train.lr", "model.latent"}
    # the learning rate's axis runs from its lowest tried value (0) to its highest (1), one line per trial
    lr = coords[coords["setting"] == "train.lr"]["position"]
    assert len(lr) == 4 and lr.min() == 0.0 and lr.max() == 1.0


def test_a_link_with_the_experiment_in_its_url_shows_that_experiment(app_experiments):
    at = open_app_page(PAGE, query={"experiment": "noise"})
    assert at.selectbox(key="exp_shown").value == "noise"
    assert chart(at, "Reconstruction error as the input noise rises") is not None


def test_a_saved_anomaly_experiment_shows_auc_roc_and_error_histograms(app_experiments):
    at = open_app_page(PAGE, {"exp_shown": "held-out"})
    aucs = [m for m in at.metric if m.label.startswith("AUC")]
    assert [m.label for m in aucs] == ["AUC, exclude classes 0", "AUC, exclude classes 7"]
    # each is its run's AUC on that run's test images
    from core.checkpoints import list_runs, load_run
    from core.data import load_dataset
    from core.experiments import anomaly_report

    for metric, held_out in zip(aucs, ([0], [7])):
        (name,) = [r["name"] for r in list_runs(app_experiments)
                   if r.get("experiment") == "held-out" and r["factors"] == {"data.exclude_classes": held_out}]
        run = load_run(app_experiments, name)
        assert metric.value == f"{anomaly_report(run.model, load_dataset(run.config.data), held_out).auc:.3f}"
    roc = [frame for t, frame in charts(at) if t == "ROC: the held-out class against the rest" and "variant" in frame]
    assert len(roc) == 1 and len(set(roc[0]["variant"])) == 2
    assert roc[0]["fpr"].between(0, 1).all() and roc[0]["tpr"].max() == 1.0
    histogram = [frame for t, frame in charts(at) if t and t.startswith("Errors of normal vs held-out")][0]
    assert set(histogram["group"]) == {"normal", "held out"}


def test_a_two_factor_experiments_colours_mean_one_thing_on_every_result_chart(app_experiments):
    """Teacher's report: blue and orange were dropout in one chart and the preset in the next (and
    train/validation in the third). Now every colour stands for one factor value or one split."""
    at = open_app_page(PAGE, {"exp_shown": "size-dropout"})
    by_preset = spec(at, "Test MSE against preset")
    by_dropout = spec(at, "Test MSE against dropout")
    gap = spec(at, "Train vs validation loss (best epoch): the gap shows over-fitting")
    field, legend, dropout_colours = colour_map(by_preset)
    assert (field, legend) == ("dropout", "colour: dropout") and list(dropout_colours) == ["0", "0.5"]
    field, legend, preset_colours = colour_map(by_dropout)
    assert (field, legend) == ("preset", "colour: preset") and list(preset_colours) == ["small", "large"]
    field, legend, split_colours = colour_map(gap)
    assert (field, legend) == ("split", "colour: split") and list(split_colours) == ["train", "validation"]
    every = [*dropout_colours.values(), *preset_colours.values(), *split_colours.values()]
    assert len(set(every)) == len(every) == 6, every  # no colour means two things
    # The live curves above use the same train/validation colours as the gap chart.
    curves = json.loads(next(c.proto.spec for c in at.main.get("vega_lite_chart")
                             if json.loads(c.proto.spec).get("title") == "Loss per epoch of every variant (same axes)"))
    color = curves["spec"]["encoding"]["color"] if "spec" in curves else curves["encoding"]["color"]
    assert dict(zip(color["scale"]["domain"], color["scale"]["range"])) == split_colours


@pytest.mark.parametrize("name, container, images", [
    ("noise", "exp_noise_sweep", 0),  # a chart, one line per noise factor trained with
    ("vae", "exp_samples", 2),  # a row of samples per variant
    ("cond", "exp_wrong_label", 11),  # the original and its decodings with each of the 10 labels
])
def test_preset_views_of_saved_experiments(app_experiments, name, container, images):
    at = open_app_page(PAGE, {"exp_shown": name})
    view = at.main.get_by_key(container)
    assert len(view.get("image")) == images
    if name == "noise":
        sweep = chart(at, "Reconstruction error as the input noise rises")
        assert sorted(set(sweep["variant"])) == ["noise factor 0", "noise factor 0.3", "noise factor 0.6"]
        assert sweep.groupby("variant")["noise"].count().eq(11).all()


def test_three_factors_give_one_bar_per_variant_each_explained_by_a_legend(app_experiments):
    """Issue 21: with three factors the dropout variants were stacked into one bar with no legend (it
    read as one MSE). Each chart now places every variant's own bar beside the others (xOffset) and
    colours them by the other factors, with that legend."""
    at = open_app_page(PAGE, {"exp_shown": "three"})
    for factor, rest, mark in (("preset", "dropout · optimizer", "bar"), ("dropout", "preset · optimizer", "line"),
                               ("optimizer", "preset · dropout", "bar")):
        chart_spec = spec(at, f"Test MSE against {factor}")
        encoding = chart_spec["encoding"]
        assert chart_spec["mark"]["type"] == mark  # bars for words, a line over the numbers
        assert encoding["color"]["field"] == rest and encoding["color"]["title"] == f"colour: {rest}"
        assert encoding["color"].get("legend", {}) is not None  # the colours are explained
        if mark == "bar":  # side by side, never stacked
            assert encoding["xOffset"]["field"] == rest and "stack" not in encoding["y"]
        data = chart(at, f"Test MSE against {factor}")
        assert len(data) == 8 and len(data.drop_duplicates([factor, rest])) == 8  # one mark a variant


def test_a_factor_with_one_value_gets_no_chart_and_the_best_run_follows_the_metric_shown(app_experiments):
    """Issue 21: a factor with one value got its own empty chart, and 'Best run (0.01058)' was the
    validation loss while the metric picker said Test MSE."""
    at = open_app_page(PAGE, {"exp_shown": "one-value"})
    titles = [t for t, _ in charts(at)]
    assert "Test MSE against dropout" in titles and "Test MSE against latent" not in titles
    variants = table(at, "exp_live")
    for metric, column, words in (("test_mse", "test MSE", "test MSE"), ("val_loss", "validation loss",
                                                                           "validation loss (best epoch)")):
        at.radio(key="exp_metric").set_value(metric).run()
        best = variants.loc[variants[column].idxmin()]
        said = " ".join(m.value for m in at.markdown if "Best run" in m.value)
        assert f"Best run by {words}:" in said and best["run"] in said and f"{best[column]:.5f}" in said


def test_stop_on_someone_elses_experiment_is_disabled_with_a_sentence(no_runs):
    from ui.state import get_experiments

    at = open_app_page(PAGE)
    long = ExperimentConfig(name="theirs", base=tiny_base(epochs=500), grid={"model.latent": [2, 4]})
    name = get_experiments().start(long, owner="someone-else-entirely-0000")
    try:
        at.run()
        assert at.button(key="exp_stop").disabled
        assert any("Only the student who started this experiment" in c.value for c in at.caption)
    finally:
        get_experiments().stop(name)
        get_experiments().wait(name, timeout=120)


def test_an_experiment_cut_by_a_server_restart_continues_when_the_app_starts(no_runs):
    """The app's first page load makes the experiments manager, which takes the experiment over
    from the stopped server: the Experiments page then shows it running to its end, not 'interrupted'."""
    from core.experiments import ExperimentConfig
    from core.experiments.store import load_record

    old = JobRegistry(root=no_runs, max_concurrent=1)
    manager = ExperimentManager(old, poll_seconds=0.02)
    exp = ExperimentConfig(name="cut", base=tiny_base(limit=300), grid={"train.epochs": [10_000, 1]})
    name = manager.start(exp)
    deadline = time.monotonic() + 120
    while not (manager.record(name)["variants"] and manager.record(name)["variants"][0]["epochs_run"] >= 1):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    old.shutdown(timeout=120)
    manager.wait(name, timeout=30)

    at = open_app_page(PAGE)  # a new server: its registry restores the queue, then the manager continues
    from ui.state import get_experiments

    record = get_experiments().wait(name, timeout=120)
    assert record["status"] == "finished", record["message"]
    assert [v["status"] for v in record["variants"]] == ["stopped", "finished"]
    assert load_record(no_runs, name)["status"] == "finished"
    at.run()
    assert not at.exception and "interrupted" not in " ".join(w.value for w in at.warning)


def test_an_experiments_report_downloads_and_holds_its_preset_views(app_experiments):
    from core.data import load_dataset
    from core.experiments import load_record
    from core.reports import render_pngs
    from core.reports.report import experiment_report

    at = open_app_page(PAGE, {"exp_shown": "held-out"})
    labels = sorted(b.proto.label for b in at.get("download_button") if "exp_report" in b.proto.id)
    assert labels == ["Markdown + figures (zip)", "Report (HTML)"]
    report = experiment_report(app_experiments, load_record(app_experiments, "held-out"), load_dataset)
    titles = [f.title for f in report.steps[0].figures]
    assert "The reconstruction error as an anomaly score" in titles and "Loss per epoch of every run" in titles
    assert len(render_pngs(report)) == len(titles) and len(report.runs) == 2


def test_the_owner_or_the_teacher_deletes_an_ended_experiment_and_its_runs_stay(no_runs, monkeypatch):
    """Issue 17: experiments belong to someone; the page offered no way to delete one."""
    from core.checkpoints import list_runs
    from ui.owners import OWNER_KEY

    alice, bob = "alice-owner-id-00000001", "bob-owner-id-0000000002"
    manager = ExperimentManager(JobRegistry(root=no_runs, max_concurrent=1), poll_seconds=0.05)
    name = manager.start(preset_experiment("latent-sizes", tiny_base(), "alices"), owner=alice)
    assert manager.wait(name, timeout=240)["status"] == "finished"
    runs = {r["name"] for r in list_runs(no_runs)}

    other = open_app_page(PAGE, {"exp_shown": name, OWNER_KEY: bob})
    assert "Only the student who started this experiment (or the teacher) can delete it." in [
        c.value for c in other.caption]
    assert not [b for b in other.button if b.key == "exp_delete"]

    owner = open_app_page(PAGE, {"exp_shown": name, OWNER_KEY: alice})
    assert owner.button(key="exp_delete").disabled  # until confirmed
    owner.checkbox(key="exp_delete_confirm").check().run()
    owner.button(key="exp_delete").click().run()
    assert "No experiment yet" in " ".join(c.value for c in owner.caption)
    assert [r["name"] for r in ExperimentManager(JobRegistry(root=no_runs)).records()] == []
    assert {r["name"] for r in list_runs(no_runs)} == runs  # its runs are runs like any other
