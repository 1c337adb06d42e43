"""The Runs page (AppTest through app.py): the saved runs with their metrics, two runs compared in
one chart, deleting a run, and the message that links to Train when there is none."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

import json

from core.checkpoints import list_runs
from core.serving.access import owner_key
from ui.owners import OWNER_KEY, TEACHER_KEY
from ui.state import SELECTED_RUN_KEY

from apptest_helpers import charts, open_app_page


def runs_page(**state) -> AppTest:
    return open_app_page("views/runs.py", state)


def runs_table(at: AppTest):
    return next(d.value for d in at.dataframe if "Run" in d.value.columns)


def test_lists_every_run_with_its_metrics(app_runs):
    at = runs_page()
    table = runs_table(at).set_index("Run")
    saved = {r["name"]: r for r in list_runs(app_runs)}
    assert sorted(table.index) == sorted(saved) == ["tiny-cond", "tiny-conv", "tiny-denoise", "tiny-vae"]
    for name, row in saved.items():
        assert table.loc[name, "Test MSE"] == row["test_mse"] > 0
        assert table.loc[name, "Validation loss"] == row["val_loss"]
        assert table.loc[name, "Epochs"] == 2
    assert table.loc["tiny-vae", "VAE"] and not table.loc["tiny-conv", "VAE"]
    assert table.loc["tiny-denoise", "Noise"] == 0.4
    shown = [e.value for kind in ("caption", "markdown", "info", "success", "warning", "error") for e in at.get(kind)]
    assert "4 saved runs on this server" in " ".join(shown)
    assert not [text for text in shown if str(app_runs) in str(text)]  # never the server's checkpoints path


def test_comparing_two_runs_draws_both_runs_lines(app_runs):
    at = runs_page(compare_runs=["tiny-conv", "tiny-denoise"])
    loss = next(data for title, data in charts(at) if title == "Loss per epoch")
    assert sorted(set(loss["run"])) == ["tiny-conv", "tiny-denoise"]
    assert sorted(set(loss["split"])) == ["train", "validation"]
    assert len(loss) == 2 * 2 * 2  # runs × splits × epochs
    final = next(data for title, data in charts(at) if isinstance(title, dict) and title["text"] == "Test MSE")
    expected = {r["name"]: r["test_mse"] for r in list_runs(app_runs)}
    assert final.set_index("run")["test_mse"].to_dict() == {n: expected[n] for n in ("tiny-conv", "tiny-denoise")}

    # A VAE in the comparison offers its KL part.
    at.multiselect(key="compare_runs").select("tiny-vae").run()
    at.radio(key="compare_quantity").set_value("KL part").run()
    kl = next(data for title, data in charts(at) if title == "KL part per epoch")
    assert set(kl["run"]) == {"tiny-conv", "tiny-denoise", "tiny-vae"}
    assert (kl[kl["run"] == "tiny-vae"]["value"] > 0).all()


def test_delete_removes_the_run_after_confirming(app_runs):
    at = runs_page(**{SELECTED_RUN_KEY: "tiny-cond", TEACHER_KEY: True})  # the tiny runs have no owner: the teacher's
    at.selectbox(key="delete_run_name").set_value("tiny-cond").run()
    assert at.button(key="delete_run").disabled  # not before the confirmation
    at.checkbox(key="delete_confirm").check().run()
    at.button(key="delete_run").click().run()
    assert not at.exception
    assert not (app_runs / "tiny-cond").exists()
    assert "tiny-cond" not in set(runs_table(at)["Run"])
    assert len(runs_table(at)) == 3
    assert SELECTED_RUN_KEY not in at.session_state
    assert not at.checkbox(key="delete_confirm").value


def test_no_runs_links_to_train(no_runs):
    at = runs_page()
    assert "train one first" in at.info[0].value
    (link,) = at.get("page_link")
    assert link.proto.page.endswith("train.py") or "train" in link.proto.page


def test_a_damaged_run_is_listed_as_damaged_and_can_be_deleted(app_runs):
    (app_runs / "tiny-vae" / "metrics.json").write_text(json.dumps({"history": 5}))
    config_file = app_runs / "tiny-conv" / "config.json"
    config = json.loads(config_file.read_text())
    config["model"]["dropout"] = "0.5"
    config_file.write_text(json.dumps(config))
    at = runs_page(**{TEACHER_KEY: True})
    assert not at.exception
    table = runs_table(at).set_index("Run")
    assert sorted(table.index) == ["tiny-cond", "tiny-conv", "tiny-denoise", "tiny-vae"]
    assert table.loc["tiny-vae", "Status"] == "damaged" and table.loc["tiny-cond", "Status"] == "finished"
    warnings = " ".join(w.value for w in at.warning)
    assert "Run tiny-vae is damaged (the history in metrics.json is not a list)" in warnings
    assert 'model.dropout must be a number, not "0.5"' in warnings
    # the comparison offers only the readable runs; the damaged ones can be deleted
    assert sorted(at.multiselect(key="compare_runs").options) == ["tiny-cond", "tiny-denoise"]
    at.selectbox(key="delete_run_name").set_value("tiny-vae")
    at.checkbox(key="delete_confirm").check()
    at.run()
    at.button(key="delete_run").click().run()
    assert not at.exception
    assert sorted(r["name"] for r in list_runs(app_runs)) == ["tiny-cond", "tiny-conv", "tiny-denoise"]


def test_results_come_first_and_curves_go_against_steps_with_best_epochs(app_runs):
    """Issue 8: names and metrics before the settings; loss against optimiser steps (the
    batch-size lesson) with a diamond at each run's best epoch; no 'per epoch per epoch'."""
    at = runs_page(compare_runs=["tiny-conv", "tiny-denoise"], compare_x="step")
    columns = list(runs_table(at).columns)
    assert columns[:6] == ["Run", "Dataset", "Test MSE", "Validation loss", "Best epoch", "Stopped at"]
    # The lines' data, then the best-epoch marks' (one validation point per run).
    lines, best = sorted((frame for title, frame in charts(at) if title == "Loss per optimiser step"),
                         key=len, reverse=True)
    # digits: 1437 training images in batches of 64 make 23 steps per epoch.
    assert sorted(set(lines["step"])) == [23, 46]
    assert set(best["split"]) == {"validation"} and sorted(best["run"]) == ["tiny-conv", "tiny-denoise"]
    at.radio(key="compare_quantity").set_value("seconds per epoch").run()
    assert "Seconds per epoch" in [t for t, _ in charts(at)] and not any("per epoch per epoch" in str(t) for t, _ in charts(at))


def test_bars_are_labelled_with_the_part_of_the_name_that_differs():
    """Issue 5: a bar label cut to fit kept 'week3-size-dropout-01-presetsmall-d...' and lost the
    part that differs; the shared start moves to the subtitle."""
    import json

    import pandas as pd

    from core.charts.training import distinct_labels, final_metric_chart

    names = ["week3-size-dropout-01-presetsmall-dropout0", "week3-size-dropout-02-presetsmall-dropout0.5",
             "week3-size-dropout-03-presetlarge-dropout0", "week3-size-dropout-04-presetlarge-dropout0.5"]
    labels, shared = distinct_labels(names)
    assert shared == "week3-size-dropout-"
    assert labels[names[1]] == "…02-presetsmall-dropout0.5" and len(set(labels.values())) == 4
    # Nothing to cut: one run, or names that differ from their first word; a dot never cuts (0.5 / 0.25).
    assert distinct_labels(["a-run"]) == ({"a-run": "a-run"}, "")
    assert distinct_labels(["conv-z2", "dense-z2"]) == ({"conv-z2": "conv-z2", "dense-z2": "dense-z2"}, "")
    assert distinct_labels(["lr0.5", "lr0.25"])[1] == ""
    frame = pd.DataFrame({"run": names, "test_mse": [0.03, 0.08, 0.035, 0.076]})
    spec = final_metric_chart(frame, "test_mse", "Test MSE").to_dict()
    y = spec["encoding"]["y"]
    assert y["field"] == "label" and spec["title"]["subtitle"] == "Runs named week3-size-dropout-…"
    data = next(iter(spec["datasets"].values()))
    assert sorted(row["label"] for row in data) == sorted(labels.values())
    assert all(row["run"] in names for row in data)  # the tooltip and the colours keep the full name
    assert json.dumps(spec).count("labelLimit") and y["axis"]["labelLimit"] >= 300


def test_projector_mode_shows_a_table_that_fits_and_every_column_below(app_runs):
    """Issue 5: on a projector the table overflowed to the right; it shows the results and the
    settings that differ between the runs, with the full table in an expander."""
    from ui.projector import PROJECTOR_KEY

    at = runs_page(**{PROJECTOR_KEY: True}, compare_runs=["tiny-conv", "tiny-denoise"])
    assert len(at.dataframe) == 2
    shown, every = at.dataframe[0], at.dataframe[1]
    # The results, then the first four settings the tiny runs differ in (all are on the digits,
    # all trained 2 epochs with Adam: no Dataset, Epochs or Optimiser column).
    assert list(shown.proto.column_order) == ["Run", "Test MSE", "Validation loss", "Best epoch",
                                              "Model", "Latent", "VAE", "Conditional"]
    assert not list(every.proto.column_order) and "Created" in every.value.columns
    assert "Every column" in [e.label for e in at.expander]
    # The bars carry what differs: the tiny runs share "tiny-".
    final = next(data for title, data in charts(at) if isinstance(title, dict) and title["text"] == "Test MSE")
    assert sorted(final["label"]) == ["…conv", "…denoise"]

    at = runs_page()  # a laptop: one table, every column
    assert len(at.dataframe) == 1 and not list(at.dataframe[0].proto.column_order)


ALICE, BOB = "alice-owner-id-00000001", "bob-owner-id-0000000002"


def own(root, name: str, owner: str) -> None:
    """Record `owner` as the owner of the saved run `name` (as save_run(owner=...) does)."""
    info_file = root / name / "info.json"
    info_file.write_text(json.dumps({**json.loads(info_file.read_text()), "owner": owner_key(owner)}))


def test_a_student_deletes_their_own_runs_and_only_looks_at_the_others(app_runs):
    """Issue 17: any anonymous student could delete any other student's run."""
    own(app_runs, "tiny-cond", ALICE)
    own(app_runs, "tiny-vae", BOB)
    at = runs_page(**{OWNER_KEY: ALICE})
    for theirs in ("tiny-vae", "tiny-conv"):  # Bob's, and the teacher's (no owner)
        at.selectbox(key="delete_run_name").set_value(theirs).run()
        assert at.checkbox(key="delete_confirm").disabled and at.button(key="delete_run").disabled
        assert any(f"Only the student who made `{theirs}` (or the teacher) can delete it" in c.value
                   for c in at.caption)
    assert not at.error and not at.exception
    at.selectbox(key="delete_run_name").set_value("tiny-cond").run()
    at.checkbox(key="delete_confirm").check().run()
    at.button(key="delete_run").click().run()
    assert not at.exception and not at.error
    assert sorted(r["name"] for r in list_runs(app_runs)) == ["tiny-conv", "tiny-denoise", "tiny-vae"]
    assert "tiny-vae" in set(runs_table(at)["Run"])  # everyone still sees and compares every run


DEEP = "[" * 100_000 + "]" * 100_000


def test_a_hostile_run_file_shows_one_sentence_and_breaks_no_page(app_runs):
    """Issue 17: one metrics.json of 100,000 nested brackets crashed the Runs, Experiments and
    Inspect pages and the sidebar for everyone; a hostile experiment field put a pyarrow traceback
    in the log on every Runs view."""
    (app_runs / "tiny-vae" / "metrics.json").write_text(DEEP)
    (app_runs / "experiments" / "deep").mkdir(parents=True)
    (app_runs / "experiments" / "deep" / "experiment.json").write_text(DEEP)  # left out of the list, quietly
    info_file = app_runs / "tiny-denoise" / "info.json"
    info_file.write_text(json.dumps({**json.loads(info_file.read_text()), "experiment": {"x": [1, {"y": 2}]}}))
    at = runs_page(**{SELECTED_RUN_KEY: "tiny-vae"})
    table = runs_table(at).set_index("Run")
    assert table.loc["tiny-vae", "Status"] == "damaged" and table.loc["tiny-denoise", "Status"] == "damaged"
    assert table.loc["tiny-conv", "Status"] == "finished"
    assert sorted(w.value for w in at.warning) == [
        "Run tiny-denoise is damaged (the experiment in info.json is not a name); delete it.",
        "Run tiny-vae is damaged (its metrics.json is nested too deeply); delete it."]
    assert not at.error
    for page in ("views/reconstructions.py", "views/experiments.py", "views/latent.py"):
        other = open_app_page(page, {SELECTED_RUN_KEY: "tiny-conv"})  # fails on any exception
        assert not other.error, [e.value for e in other.error]


def test_a_runs_report_downloads_as_html_and_as_markdown(app_runs):
    at = runs_page()
    buttons = [b for b in at.get("download_button") if b.proto.id and "run_report" in b.proto.id]
    assert sorted(b.proto.label for b in buttons) == ["Markdown + figures (zip)", "Report (HTML)"]
    assert not at.error


OWNER = "student-one-0123456789abcdef"


def own_run(name: str) -> str:
    """A run trained by the browser whose owner id is OWNER (through the app's registry)."""
    from core.config import DataConfig, RunConfig, TrainConfig
    from ui.state import get_registry

    cfg = RunConfig(data=DataConfig(dataset="digits", limit=300), train=TrainConfig(epochs=1, device="cpu"), name=name)
    job = get_registry().wait(get_registry().start(cfg, owner=OWNER), timeout=300)
    assert job.status == "finished", job.message
    return job.run_name


def test_the_runs_list_filters_by_mine_experiment_and_dataset(app_runs):
    """Issue 21: after one lesson a student sees 61 runs of the class in one list."""
    import json

    mine = own_run("mine-1")
    info = app_runs / "tiny-vae" / "info.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "experiment": "vae-study"}))
    at = runs_page(owner_id=OWNER)
    assert len(runs_table(at)) == 5
    at.toggle(key="runs_filter_mine").set_value(True).run()
    assert runs_table(at)["Run"].tolist() == [mine]
    assert any("Showing 1 of 5 runs" in c.value for c in at.caption)
    at.toggle(key="runs_filter_mine").set_value(False).run()
    at.multiselect(key="runs_filter_experiments").set_value(["vae-study"]).run()
    assert runs_table(at)["Run"].tolist() == ["tiny-vae"]
    at.multiselect(key="runs_filter_experiments").set_value([]).run()
    at.multiselect(key="runs_filter_datasets").set_value(["digits"]).run()
    assert len(runs_table(at)) == 5


def test_a_students_current_run_is_their_own_never_the_newest_of_the_class(app_runs):
    """Issue 21: a student opening the app inherited the teacher's current run."""
    page = "views/reconstructions.py"
    stranger = open_app_page(page, {"owner_id": "someone-else-0123456789ab"})
    assert stranger.selectbox(key="recon_run").value is None  # none of the class's runs is theirs
    assert any("none of the saved runs is yours" in i.value for i in stranger.info)
    assert SELECTED_RUN_KEY not in stranger.session_state
    mine = own_run("mine-2")
    at = open_app_page(page, {"owner_id": OWNER})
    assert at.selectbox(key="recon_run").value == mine and at.session_state[SELECTED_RUN_KEY] == mine
