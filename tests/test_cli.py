"""python -m core.cli: train / list / eval, once end to end as a real subprocess, otherwise
through main() in this process (same code, no interpreter start-up per case)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.checkpoints import list_runs, load_run
from core.checkpoints import default_run_name
from core.cli import config_from_args, build_parser, main

REPO = Path(__file__).resolve().parents[1]
SUMMARY_KEYS = {"run", "epochs", "train_loss", "val_loss", "test_mse", "seconds"}


def run_main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def untrained_test_mse(cfg) -> float:
    """The test MSE of cfg's model as training starts it: its seed's weights, the output bias
    fitted to the training images' mean colour."""
    import torch

    from core.data import load_dataset
    from core.models import build_model, fit_output_bias
    from core.train import channel_means, evaluate

    dataset = load_dataset(cfg.data)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model)
    fit_output_bias(model, channel_means(dataset.split("train")[0]))
    return evaluate(model, *dataset.split("test"), torch.device("cpu"))["mse"]


def _plain_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    last = lines[-1]
    assert last.startswith("error: ") and last.endswith(".")
    return last


def test_train_list_eval_end_to_end_as_a_subprocess(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    train = subprocess.run(
        [sys.executable, "-m", "core.cli", "train", "--dataset", "digits", "--model", "conv-small", "--epochs", "2",
         "--out", str(tmp_path), "--name", "x", "--device", "cpu"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr
    summary = json.loads(train.stdout.strip().splitlines()[-1])
    assert SUMMARY_KEYS <= set(summary)
    assert summary["run"] == "x" and summary["epochs"] == 2 and summary["status"] == "finished"
    assert summary["backend"] == "local"
    assert summary["step"] == "eager"  # the CPU: no CUDA graph
    # learnt something: an untrained model already scores ~0.14 (its output bias starts at the mean colour)
    assert summary["test_mse"] < 0.6 * untrained_test_mse(load_run(tmp_path, "x").config)
    assert summary["val_loss"] > 0 and summary["seconds"] > 0
    assert "epoch 2/2" in train.stderr and "Saved as x" in train.stderr

    listing = subprocess.run([sys.executable, "-m", "core.cli", "list", "--out", str(tmp_path)],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0
    header, rule, row = listing.stdout.strip().splitlines()
    assert header.split()[:3] == ["name", "dataset", "model"]
    assert row.split()[:4] == ["x", "digits", "conv-small", "16"]

    evaluated = subprocess.run([sys.executable, "-m", "core.cli", "eval", "x", "--out", str(tmp_path), "--device", "cpu"],
                               cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert evaluated.returncode == 0, evaluated.stderr
    lines = evaluated.stdout.strip().splitlines()
    assert len(lines) == 1
    metrics = json.loads(lines[0])
    assert metrics["run"] == "x" and metrics["images"] == 180
    assert metrics["test_mse"] == pytest.approx(summary["test_mse"], rel=1e-5)
    assert metrics["test_mae"] == pytest.approx(summary["test_mae"], rel=1e-5)


def test_train_in_process_writes_a_run_like_the_app(tmp_path):
    code, out, err = run_main("train", "--dataset", "digits", "--model", "dense", "--hidden", "32,16", "--latent", "2",
                              "--vae", "--beta", "0.5", "--epochs", "1", "--batch-size", "256", "--limit", "400",
                              "--optimizer", "rmsprop", "--lr", "0.002", "--noise", "0.2", "--seed", "3",
                              "--device", "cpu", "--out", str(tmp_path))
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    name = "digits-dense-32-16-z2-vae-beta0.5-noise0.2-rmsprop-seed3"  # the settings that differ
    assert summary["run"] == name == default_run_name(load_run(tmp_path, name).config)
    run = load_run(tmp_path, name)
    m, t, d = run.config.model, run.config.train, run.config.data
    assert (m.family, m.hidden, m.latent, m.vae, m.beta) == ("dense", [32, 16], 2, True, 0.5)
    assert (t.optimizer, t.lr, t.noise_factor, t.batch_size, t.epochs, t.seed) == ("rmsprop", 0.002, 0.2, 256, 1, 3)
    assert (d.limit, d.seed) == (400, 3)
    assert run.info["source"] == "cli"
    # a second run with the same settings gets a fresh name instead of overwriting
    code, out, _ = run_main("train", "--dataset", "digits", "--model", "dense", "--hidden", "32,16", "--latent", "2",
                            "--vae", "--beta", "0.5", "--epochs", "1", "--limit", "400", "--noise", "0.2",
                            "--optimizer", "rmsprop", "--seed", "3", "--device", "cpu", "--out", str(tmp_path))
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["run"] == name + "-2"
    assert {r["name"] for r in list_runs(tmp_path)} == {name, name + "-2"}


def test_unset_options_keep_the_config_defaults():
    args = build_parser().parse_args(["train", "--dataset", "shapes", "--model", "conv-large"])
    cfg = config_from_args(args)
    from core.config import DataConfig, ModelConfig, TrainConfig

    assert cfg.train == TrainConfig()
    assert cfg.model == ModelConfig(family="conv", preset="large")
    assert cfg.data == DataConfig(dataset="shapes")
    custom = config_from_args(build_parser().parse_args(
        ["train", "--dataset", "folder", "--folder", "pics", "--image-size", "64", "--channels", "1",
         "--model", "conv-small", "--conv-channels", "8,16,32", "--conditional", "--balanced", "--dropout", "0.5",
         "--activation", "tanh", "--patience", "2", "--name", "mine"]))
    assert (custom.data.folder, custom.data.image_size, custom.data.channels, custom.data.balanced) == ("pics", 64, 1, True)
    assert (custom.model.channels, custom.model.conditional, custom.model.dropout) == ([8, 16, 32], True, 0.5)
    assert (custom.model.activation, custom.train.patience, custom.name) == ("tanh", 2, "mine")


def test_list_with_no_runs_says_so(tmp_path):
    code, out, _ = run_main("list", "--out", str(tmp_path / "empty"))
    assert code == 0 and out.strip() == f"No saved runs in {tmp_path / 'empty'}."


@pytest.mark.parametrize("argv, words", [
    (["train", "--dataset", "folder", "--folder", "/no/such/pictures", "--model", "conv-small"],
     "The folder /no/such/pictures does not exist"),
    (["train", "--dataset", "mnist", "--data-root", "/no/such/data", "--model", "conv-small"],
     "MNIST was not found (or is damaged) in /no/such/data/MNIST/raw"),
    (["train", "--dataset", "digits", "--model", "dense", "--dropout", "1.5", "--epochs", "1"],
     "Dropout must be at least 0 and below 1"),
    (["train", "--dataset", "digits", "--model", "conv-small", "--name", "../escape"], "is not a valid run name"),
    (["train", "--dataset", "digits", "--model", "conv-small", "--lr", "-1", "--epochs", "1", "--device", "cpu"],
     "learning rate must be a number of at least 0"),
    (["eval", "ghost"], "There is no run named ghost"),
    (["train", "--dataset", "digits", "--model", "conv-small", "--epochs", "1", "--ray", "127.0.0.1:9"],
     "Could not reach the Ray cluster at 127.0.0.1:9"),
])
def test_bad_input_is_one_plain_sentence_and_a_nonzero_exit(tmp_path, argv, words):
    code, out, err = run_main(*argv, "--out", str(tmp_path))
    assert code == 2
    assert words in _plain_error(err)
    assert out == ""


def test_a_taken_run_name_is_refused_before_training(tmp_path):
    (tmp_path / "taken").mkdir()
    code, _, err = run_main("train", "--dataset", "digits", "--model", "conv-small", "--name", "taken", "--out",
                            str(tmp_path))
    assert code == 2 and "A run named taken already exists" in _plain_error(err)
    assert "epoch" not in err  # refused before any training


def test_unknown_dataset_is_refused_by_the_parser_without_a_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--dataset", "imagenet", "--model", "conv-small"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'imagenet'" in err and "Traceback" not in err


def test_no_command_prints_help_and_fails(capsys):
    code, _, err = run_main()
    assert code == 2 and "train" in err and "eval" in err


def test_eval_refuses_a_damaged_run_in_one_sentence(tmp_path):
    code, _, err = run_main("train", "--dataset", "digits", "--model", "conv-small", "--epochs", "1", "--limit", "200",
                            "--device", "cpu", "--out", str(tmp_path), "--name", "r")
    assert code == 0, err
    weights = tmp_path / "r" / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:100])
    code, out, err = run_main("eval", "r", "--out", str(tmp_path))
    assert code == 2 and out == ""
    assert "Run r cannot be loaded: its weights.pt is truncated or damaged" in _plain_error(err)


def test_eval_notices_data_of_another_shape(tmp_path):
    code, _, err = run_main("train", "--dataset", "shapes", "--image-size", "16", "--model", "conv-small",
                            "--epochs", "1", "--limit", "100", "--device", "cpu", "--out", str(tmp_path), "--name", "s")
    assert code == 0, err
    config_file = tmp_path / "s" / "config.json"
    config = json.loads(config_file.read_text())
    config["data"]["image_size"] = 24  # the data would now be drawn at another size
    config_file.write_text(json.dumps(config))
    code, _, err = run_main("eval", "s", "--out", str(tmp_path))
    assert code == 2 and "Run s takes 3×16×16 images but the dataset now gives 3×24×24" in _plain_error(err)


# ---------------------------------------------------------------- issue 9: limits, OOM, damaged runs

def test_a_model_over_the_limits_is_refused_at_once_with_the_apps_sentence(tmp_path, monkeypatch):
    import core.models

    def never(*args, **kwargs):
        raise AssertionError("a model over the limit must not be built")

    monkeypatch.setattr(core.models, "build_model", never)
    code, out, err = run_main("train", "--dataset", "digits", "--model", "dense", "--hidden", "30000,30000",
                              "--epochs", "1", "--out", str(tmp_path))
    assert code == 2
    assert "above this server's limit" in _plain_error(err) and "AE_LAB_MAX_PARAMS" in err
    code, out, err = run_main("train", "--dataset", "digits", "--model", "dense", "--hidden", "1000000000",
                              "--epochs", "1", "--out", str(tmp_path))
    assert code == 2 and "parameters" in _plain_error(err)
    monkeypatch.setenv("AE_LAB_MAX_EPOCHS", "3")
    code, out, err = run_main("train", "--dataset", "digits", "--model", "conv-small", "--epochs", "4",
                              "--out", str(tmp_path))
    assert code == 2 and "4 epochs are above" in _plain_error(err)


def test_no_limits_lifts_the_limits(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_LAB_MAX_PARAMS", "10")
    code, out, err = run_main("train", "--dataset", "digits", "--model", "dense", "--hidden", "8", "--latent", "2",
                              "--epochs", "1", "--device", "cpu", "--out", str(tmp_path))
    assert code == 2 and "AE_LAB_MAX_PARAMS" in err
    code, out, err = run_main("train", "--dataset", "digits", "--model", "dense", "--hidden", "8", "--latent", "2",
                              "--epochs", "1", "--device", "cpu", "--out", str(tmp_path), "--no-limits")
    assert code == 0, err


def test_out_of_memory_while_training_is_a_plain_suggestion(tmp_path, monkeypatch):
    import torch

    import core.jobs.local

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.3 GiB total)")

    monkeypatch.setattr(core.jobs.local, "train", out_of_memory)  # what the CLI's local runner calls
    code, out, err = run_main("train", "--dataset", "digits", "--model", "conv-small", "--epochs", "1",
                              "--device", "cpu", "--out", str(tmp_path))
    assert code == 2
    line = _plain_error(err)
    assert "ran out of memory on the GPU" in line and "smaller batch size" in line and "GiB" not in line


def test_list_shows_a_damaged_run_without_a_traceback(tmp_path):
    code, _, err = run_main("train", "--dataset", "digits", "--model", "dense", "--hidden", "8", "--latent", "2",
                            "--epochs", "1", "--device", "cpu", "--out", str(tmp_path), "--name", "ok")
    assert code == 0, err
    code, _, err = run_main("train", "--dataset", "digits", "--model", "dense", "--hidden", "8", "--latent", "2",
                            "--epochs", "1", "--device", "cpu", "--out", str(tmp_path), "--name", "rot")
    (tmp_path / "rot" / "metrics.json").write_text(json.dumps({"history": 5}))
    code, out, err = run_main("list", "--out", str(tmp_path))
    assert code == 0 and "Traceback" not in err
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert rows["rot"].split()[-1] == "damaged" and rows["ok"].split()[-1] == "finished"
    assert "Run rot is damaged (the history in metrics.json is not a list); delete it." in err


def test_a_file_as_the_image_folder_is_not_a_folder(tmp_path):
    (tmp_path / "x.png").write_bytes(b"x")
    code, _, err = run_main("train", "--dataset", "folder", "--folder", str(tmp_path / "x.png"), "--model", "conv-small",
                            "--out", str(tmp_path))
    assert code == 2 and "is a file, not a folder" in _plain_error(err)


def test_a_trailing_newline_in_the_run_name_is_refused(tmp_path):
    code, _, err = run_main("train", "--dataset", "digits", "--model", "conv-small", "--epochs", "1",
                            "--out", str(tmp_path), "--name", "x\n")
    assert code == 2 and "not a valid run name" in err and not (tmp_path / "x").exists()


def test_the_cli_reads_a_folder_of_any_size(tmp_path, monkeypatch):
    from idx_helpers import write_image_folder

    folder = write_image_folder(tmp_path / "imgs", classes=("a", "b"), per_class=6, size=12)
    monkeypatch.setenv("AE_LAB_MAX_IMAGES", "5")  # a served app's walk limit; not the CLI's
    code, out, err = run_main("train", "--dataset", "folder", "--folder", str(folder), "--image-size", "8",
                              "--model", "dense", "--hidden", "8", "--latent", "2", "--epochs", "1",
                              "--device", "cpu", "--out", str(tmp_path / "runs"))
    assert code == 0, err


# ---------------------------------------------------------------- issue 16: the CLI and the app agree

class _Handed(BaseException):
    """Raised by a stand-in trainer with the config the CLI handed it (nothing is trained). Not an
    Exception: main() turns those into one line and exit code 3; this one must reach the test."""


def _config_handed_to_training(monkeypatch, *argv: str):
    import core.jobs.local

    def hand_over(cfg, dataset, **kwargs):
        raise _Handed(cfg, len(dataset.splits["train"]))

    monkeypatch.setattr(core.jobs.local, "train", hand_over)
    err = io.StringIO()
    with pytest.raises(_Handed) as handed:
        main(list(argv), out=io.StringIO(), err=err)
    cfg, train_images = handed.value.args
    return cfg, train_images, err.getvalue()


def test_train_fits_batch_and_epochs_to_the_data_as_the_train_page_does(tmp_path, monkeypatch):
    from views.train import fitted_defaults

    cfg, train_images, err = _config_handed_to_training(
        monkeypatch, "train", "--dataset", "digits", "--limit", "300", "--model", "conv-small", "--device", "cpu",
        "--out", str(tmp_path))
    page = fitted_defaults(train_images).train
    assert (cfg.train.batch_size, cfg.train.epochs) == (page.batch_size, page.epochs) == (16, 34)
    assert "fitted to this dataset: batch 16 and 34 epochs" in err and "warning" not in err
    # what the command line gives is kept, and a batch that leaves too few steps is warned about as on the page
    cfg, _, err = _config_handed_to_training(
        monkeypatch, "train", "--dataset", "digits", "--limit", "300", "--model", "conv-small", "--batch-size", "128",
        "--epochs", "3", "--device", "cpu", "--out", str(tmp_path))
    assert (cfg.train.batch_size, cfg.train.epochs) == (128, 3)
    assert "warning: Only 2 optimiser steps per epoch (240 training images, batch 128)" in err
    assert "fitted to this dataset" not in err


def test_fitted_epochs_stay_within_the_epoch_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_LAB_MAX_EPOCHS", "5")
    cfg, _, err = _config_handed_to_training(
        monkeypatch, "train", "--dataset", "digits", "--limit", "300", "--model", "conv-small", "--device", "cpu",
        "--out", str(tmp_path))
    assert cfg.train.epochs == 5


def test_runs_go_where_the_app_looks_unless_out_says_otherwise(tmp_path, monkeypatch):
    from ui.state import saved_runs

    monkeypatch.chdir(tmp_path)  # a default "checkpoints" folder would land here
    monkeypatch.setenv("AE_LAB_CHECKPOINTS", str(tmp_path / "app-runs"))
    code, out, err = run_main("train", "--dataset", "digits", "--model", "dense", "--hidden", "8", "--latent", "2",
                              "--epochs", "1", "--limit", "200", "--device", "cpu", "--name", "pretrained")
    assert code == 0, err
    assert (tmp_path / "app-runs" / "pretrained" / "info.json").exists() and not (tmp_path / "checkpoints").exists()
    assert [r["name"] for r in saved_runs()] == ["pretrained"]  # the app lists it
    code, out, _ = run_main("list")
    assert code == 0 and out.splitlines()[2].split()[0] == "pretrained"


TINY = ("--dataset", "digits", "--limit", "150", "--model", "dense", "--hidden", "8", "--latent", "2",
        "--device", "cpu")


def test_resume_continues_a_gpu_run_on_this_machine_with_device(tmp_path):
    code, _, err = run_main("train", *TINY, "--epochs", "1", "--out", str(tmp_path), "--name", "gpu-run")
    assert code == 0, err
    config_file = tmp_path / "gpu-run" / "config.json"
    config = json.loads(config_file.read_text())
    config["train"]["device"] = "cuda"  # as saved on the school's GPU machine
    config_file.write_text(json.dumps(config))
    import torch

    if not torch.cuda.is_available():  # as it is, the run asks for a device this machine lacks
        code, _, err = run_main("resume", "gpu-run", "--epochs", "1", "--out", str(tmp_path))
        assert code == 2 and "The device 'cuda' is not available" in _plain_error(err)
    code, out, err = run_main("resume", "gpu-run", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path))
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["new_epochs"] == 1
    run = load_run(tmp_path, "gpu-run")
    assert len(run.history) == 2 and run.config.train.device == "cpu"


def test_resume_experiment_and_search_apply_the_limits_unless_no_limits(tmp_path, monkeypatch):
    code, _, err = run_main("train", *TINY, "--epochs", "1", "--out", str(tmp_path), "--name", "r")
    assert code == 0, err
    # resume: the run's epochs in all, as the app's Resume counts them (1 done + 2 more > 2)
    monkeypatch.setenv("AE_LAB_MAX_EPOCHS", "2")
    code, out, err = run_main("resume", "r", "--epochs", "2", "--out", str(tmp_path))
    assert code == 2 and _plain_error(err) == ("error: Run r has 1 epochs; 2 more would make 3, above this "
                                               "server's limit of 2 per run; resume for at most 1 more.")
    assert "epoch 2/" not in err and out == ""
    monkeypatch.setenv("AE_LAB_MAX_EPOCHS", "1")
    for argv in (["experiment", "--grid", "model.latent=2,3", *TINY, "--epochs", "2"],
                 ["search", "--space", "train.lr=1e-3:1e-2:log", "--trials", "2", *TINY, "--epochs", "2"]):
        code, out, err = run_main(*argv, "--out", str(tmp_path))
        assert code == 2 and "2 epochs are above this server's limit of 1" in _plain_error(err), argv
        assert "epoch 1/" not in err and out == ""  # refused before anything trained
    monkeypatch.setenv("AE_LAB_MAX_PARAMS", "10")
    code, _, err = run_main("experiment", "--grid", "model.latent=2", *TINY, "--epochs", "1", "--out", str(tmp_path))
    assert code == 2 and "AE_LAB_MAX_PARAMS" in _plain_error(err)
    # --no-limits: the owner of this machine decides
    code, out, err = run_main("resume", "r", "--epochs", "2", "--no-limits", "--out", str(tmp_path))
    assert code == 0, err
    code, out, err = run_main("experiment", "--grid", "model.latent=2", *TINY, "--epochs", "2", "--no-limits",
                              "--name", "free", "--out", str(tmp_path))
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["runs"][0]["status"] == "finished"


def test_no_limits_help_promises_only_what_the_cli_applies():
    for command in ("train", "resume", "experiment", "search"):
        text = " ".join(build_parser()._subparsers._group_actions[0].choices[command].format_help().split())
        assert "--no-limits" in text, command
        assert "folder walks" not in text and "Image folders of any size are read either way" in text
