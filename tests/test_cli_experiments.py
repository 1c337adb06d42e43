"""python -m core.cli experiment / search / experiments through main(): progress on stderr, one
JSON line last with the keys scripts rely on, plain one-line errors."""
from __future__ import annotations

import io
import json

import pytest

from core.checkpoints import list_runs, load_run
from core.cli import main
from core.data import load_dataset
from core.experiments import anomaly_report

BASE = ["--dataset", "digits", "--epochs", "1", "--limit", "300", "--device", "cpu"]
RUN_KEYS = {"run", "factors", "status", "val_loss", "test_mse"}


def run_main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_experiment_grid_prints_every_run_and_the_best_then_lists_it(tmp_path):
    code, out, err = run_main("experiment", "--grid", "model.latent=2,4", "--grid", "model.vae=false,true",
                              *BASE, "--out", str(tmp_path), "--name", "zv", "--jobs", "2")
    assert code == 0, err
    summary = last_json(out)
    assert {"experiment", "runs", "best", "seconds"} <= set(summary) and summary["experiment"] == "zv"
    assert [r["factors"] for r in summary["runs"]] == [
        {"model.latent": 2, "model.vae": False}, {"model.latent": 2, "model.vae": True},
        {"model.latent": 4, "model.vae": False}, {"model.latent": 4, "model.vae": True}]
    assert all(RUN_KEYS <= set(r) and r["run"] and r["status"] == "finished" for r in summary["runs"])
    best = min(summary["runs"], key=lambda r: r["val_loss"])
    assert summary["best"] == {"run": best["run"], "value": best["val_loss"]}
    assert "[4/4]" in err  # progress went to stderr
    saved = {r["name"]: r for r in list_runs(tmp_path)}
    assert all(saved[r["run"]]["factors"] == r["factors"] for r in summary["runs"])

    code, out, _ = run_main("experiments", "--out", str(tmp_path))
    assert code == 0 and "zv" in out and "4/4" in out


def test_anomaly_preset_reports_an_auc_per_held_out_class(tmp_path):
    # --grid with a preset replaces that factor's values
    code, out, err = run_main("experiment", "--preset", "anomaly", "--grid", "data.exclude_classes=[1],[7]", *BASE,
                              "--out", str(tmp_path), "--jobs", "2")
    assert code == 0, err
    runs = last_json(out)["runs"]
    assert [r["held_out"] for r in runs] == [[1], [7]]
    # each AUC is its saved run's, scored on that run's test images (a real model's is tested in test_experiments)
    for row in runs:
        run = load_run(tmp_path, row["run"])
        assert run.config.data.exclude_classes == row["held_out"]
        report = anomaly_report(run.model, load_dataset(run.config.data), row["held_out"])
        assert row["auc"] == pytest.approx(report.auc)
    assert runs[0]["auc"] != runs[1]["auc"]


def test_a_grid_over_dense_hidden_sizes_compares_two_models(tmp_path):
    """The optimiser homework's dense 1000-500-250 vs a smaller one, typed as the page takes it."""
    code, out, err = run_main("experiment", "--grid", "model.hidden=64-32,16", "--model", "dense", *BASE,
                              "--out", str(tmp_path), "--name", "dense-sizes")
    assert code == 0, err
    runs = last_json(out)["runs"]
    assert [r["factors"] for r in runs] == [{"model.hidden": [64, 32]}, {"model.hidden": [16]}]
    saved = {r["name"]: r for r in list_runs(tmp_path)}
    assert all(r["status"] == "finished" and r["run"] in saved for r in runs)


def test_search_adds_trials_pruned_best_params_and_importances(tmp_path):
    # without pruning every trial completes, so what is asserted does not hang on which were pruned
    code, out, err = run_main("search", "--space", "train.lr=1e-3:3e-2:log", "--space", "model.latent=2,8",
                              "--trials", "3", "--no-prune", *BASE, "--out", str(tmp_path))
    assert code == 0, err
    summary = last_json(out)
    assert {"experiment", "runs", "best", "seconds", "trials", "pruned", "best_params", "importances"} <= set(summary)
    assert summary["trials"] == 3 and len(summary["runs"]) == 3 and summary["pruned"] == 0
    assert [r["state"] for r in summary["runs"]] == ["complete"] * 3
    assert len({r["factors"]["train.lr"] for r in summary["runs"]}) == 3  # three settings were tried
    # the best parameters are those of the trial with the lowest validation loss, and it is the best run
    best = min(summary["runs"], key=lambda r: r["value"])
    assert summary["best_params"] == best["factors"] and summary["best"]["run"] == best["run"]
    assert best["value"] == pytest.approx(best["val_loss"])
    # Optuna's importances, once 3 trials completed: one share per searched setting
    assert set(summary["importances"]) == {"train.lr", "model.latent"}
    assert sum(summary["importances"].values()) == pytest.approx(1.0)


@pytest.mark.parametrize("argv, words", [
    (["experiment", *BASE], "Give --preset NAME or one or more --grid"),
    (["experiment", "--grid", "model.latnt=2,4", *BASE], "'model.latnt' is not a setting"),
    (["experiment", "--grid", "model.latent", *BASE], "needs the form path=values"),
    (["search", "--space", "train.lr=0:1:log", *BASE], "log-scale range must start above 0"),
])
def test_experiment_mistakes_are_one_plain_line(tmp_path, argv, words):
    code, out, err = run_main(*argv, "--out", str(tmp_path))
    assert code == 2 and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and words in last and "Traceback" not in err


def test_an_experiment_fits_batch_and_epochs_to_the_data_as_the_experiments_page_does(tmp_path):
    """The preset's fixed batch 128 on 240 training digits made 2 optimiser steps an epoch; the
    page fits both to the data (core.defaults), and so does the command line, unless given."""
    from core.defaults import suggested_training

    suggestion = suggested_training(240)  # 300 digits less the validation and test images
    code, out, err = run_main("experiment", "--grid", "model.latent=2,4", "--dataset", "digits", "--limit", "300",
                              "--epochs", "1", "--device", "cpu", "--out", str(tmp_path), "--name", "fitted")
    assert code == 0, err
    assert f"fitted to this dataset: batch {suggestion.batch_size} (--batch-size, --epochs choose others)" in err
    for row in last_json(out)["runs"]:
        cfg = load_run(tmp_path, row["run"]).config
        assert (cfg.train.batch_size, cfg.train.epochs) == (suggestion.batch_size, 1) != (128, 1)
    code, out, err = run_main("experiment", "--grid", "model.latent=2", "--dataset", "digits", "--limit", "300",
                              "--batch-size", "128", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path))
    assert code == 0, err
    assert "fitted to this dataset" not in err and "warning: Only 2 optimiser steps per epoch" in err


def test_a_preset_on_photos_takes_the_model_for_photos_as_the_experiments_page_does():
    """size-dropout on a photo folder compares the spatial-code model's sizes (its photo_base), as the
    page does; the CLI (and so the photos lesson) trained conv models there. --model still wins."""
    import copy

    from core.cli import build_parser
    from core.cli.experiments import experiment_from_args
    from core.config import RunConfig
    from core.experiments import PRESETS, preset_experiment
    from core.experiments.presets import experiment_base

    def experiment(*words):
        args = build_parser().parse_args(["experiment", "--preset", "size-dropout", *words])
        return experiment_from_args(args)

    photos = experiment("--dataset", "folder", "--folder", "data/photos", "--image-size", "32", "--channels", "3")
    assert photos.base.model.family == "spatial" and photos.grid == PRESETS["size-dropout"].grid
    form = RunConfig(data=copy.deepcopy(photos.base.data))  # the Train form's defaults on the same photos
    page = preset_experiment("size-dropout", experiment_base(form, None))  # what the Experiments page runs
    assert page.base.model.family == photos.base.model.family == "spatial"
    chosen = experiment("--dataset", "folder", "--folder", "data/photos", "--model", "conv-small")
    assert chosen.base.model.family == "conv"
    assert experiment("--dataset", "digits").base.model.family == "conv"  # not photos: the preset's own base
