"""core.checkpoints: round trip, atomic saves, and refusal of every kind of bad run folder."""
from __future__ import annotations

import errno
import json
import os
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch

import core.checkpoints as checkpoints
from core.checkpoints import (CheckpointError, check_name, delete_run, list_runs, load_history, load_run,
                              reserve_run_name, save_run)
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import load_dataset
from core.train import train

LIST_KEYS = {"name", "dataset", "family", "preset", "latent", "vae", "conditional", "dropout", "noise",
             "optimizer", "lr", "batch_size", "epochs_run", "train_loss", "val_loss", "test_mse", "test_mae",
             "status", "created"}


def _config(**model) -> RunConfig:
    return RunConfig(data=DataConfig(dataset="digits", limit=300, seed=0),
                     model=ModelConfig(**{"family": "conv", "preset": "small", "latent": 2, **model}),
                     train=TrainConfig(epochs=2, batch_size=64, device="cpu", lr=3e-3, noise_factor=0.1))


@pytest.fixture(scope="module")
def small_digits():
    return load_dataset(DataConfig(dataset="digits", limit=300, seed=0))


@pytest.fixture(scope="module")
def trained(small_digits):
    cfg = _config()
    return cfg, train(cfg, small_digits)


@pytest.fixture(scope="module")
def trained_latent4(small_digits):
    cfg = _config(latent=4, vae=True, dropout=0.25)
    return cfg, train(cfg, small_digits)


def _one_sentence_about(message: str, name: str) -> None:
    assert f"Run {name}" in message or f"run {name}" in message, message
    assert "\n" not in message and "Traceback" not in message and message.endswith("."), message


def test_save_and_load_round_trip_everything(tmp_path, trained):
    cfg, result = trained
    path = save_run(tmp_path, "first", cfg, result, extra_info={"source": "test"})
    assert path == tmp_path / "first"
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "film.pt", "info.json", "metrics.json", "resume.pt",
                                                   "weights.pt"]
    run = load_run(tmp_path, "first")
    assert run.name == "first" and run.path == path
    assert run.config == replace(cfg, model=result.model.cfg, name="first")  # data shape filled in
    assert (run.config.model.in_channels, run.config.model.image_size) == (1, 8)
    saved, loaded = result.model.state_dict(), run.model.state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert not run.model.training
    assert run.history == [asdict(r) for r in result.history] and len(run.history) == 2
    assert run.batch_losses == result.batch_losses
    assert torch.equal(run.film_originals, result.film_originals)
    assert len(run.film) == 2 and all(torch.equal(a, b) for a, b in zip(run.film, result.film))
    assert run.test_metrics == result.test_metrics and set(run.test_metrics) == {"mse", "mae"}
    assert run.info["status"] == "finished" and run.info["message"] == result.message
    assert run.info["device"] == "cpu" and run.info["epochs_run"] == 2 and run.info["source"] == "test"
    assert run.info["seconds"] == pytest.approx(sum(r.seconds for r in result.history))
    assert "T" in run.info["created"]  # ISO time
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(run.model(x).recon, result.model.eval()(x).recon)


def test_a_vae_with_dropout_round_trips(tmp_path, trained_latent4):
    cfg, result = trained_latent4
    save_run(tmp_path, "vae", cfg, result)
    run = load_run(tmp_path, "vae")
    assert run.config.model.vae and run.config.model.latent == 4 and run.config.model.dropout == 0.25
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(run.model(x).recon, result.model.eval()(x).recon)


def test_an_existing_run_is_not_overwritten_silently(tmp_path, trained, trained_latent4):
    cfg, result = trained
    save_run(tmp_path, "taken", cfg, result)
    with pytest.raises(CheckpointError, match="A run named taken already exists"):
        save_run(tmp_path, "taken", *trained_latent4)
    assert load_run(tmp_path, "taken").config.model.latent == 2
    save_run(tmp_path, "taken", *trained_latent4, overwrite=True)
    assert load_run(tmp_path, "taken").config.model.latent == 4
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]  # nothing left aside


def _fail_on_film(monkeypatch, exc: Exception) -> None:
    """Make the second tensor file (film.pt, after weights.pt) fail: a crash mid-save."""
    real = checkpoints.save._torch_bytes
    calls = []

    def failing(obj):
        calls.append(obj)
        if len(calls) == 2:
            raise exc
        return real(obj)

    monkeypatch.setattr(checkpoints.save, "_torch_bytes", failing)


def test_a_save_that_fails_midway_leaves_no_run(tmp_path, trained, monkeypatch):
    cfg, result = trained
    _fail_on_film(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(CheckpointError) as info:
        save_run(tmp_path, "broken", cfg, result)
    assert str(info.value) == "Could not save run broken: the disk is full; free some space and train again."
    assert list(tmp_path.iterdir()) == []  # not even a hidden temporary folder
    assert list_runs(tmp_path) == []
    with pytest.raises(CheckpointError, match="no run named broken"):
        load_run(tmp_path, "broken")


def test_a_failed_overwrite_keeps_the_previous_run(tmp_path, trained, trained_latent4, monkeypatch):
    save_run(tmp_path, "keep", *trained)
    _fail_on_film(monkeypatch, RuntimeError("serialisation failed"))
    with pytest.raises(CheckpointError, match="Could not save run keep"):
        save_run(tmp_path, "keep", *trained_latent4, overwrite=True)
    assert load_run(tmp_path, "keep").config.model.latent == 2
    assert [r["name"] for r in list_runs(tmp_path)] == ["keep"]
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]


def test_a_folder_whose_save_never_finished_is_not_a_run(tmp_path, trained):
    # What a killed process leaves behind: every file but info.json, which is written last.
    save_run(tmp_path, "whole", *trained)
    half = tmp_path / "half"
    half.mkdir()
    for name in ("config.json", "weights.pt", "metrics.json"):
        (half / name).write_bytes((tmp_path / "whole" / name).read_bytes())
    (tmp_path / ".tmp-other-1234").mkdir()
    assert [r["name"] for r in list_runs(tmp_path)] == ["whole"]
    with pytest.raises(CheckpointError) as info:
        load_run(tmp_path, "half")
    assert "incomplete" in str(info.value)
    _one_sentence_about(str(info.value), "half")


class RunsCode:
    """Unpickling this calls open(marker, "w"): proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("file_name", ["weights.pt", "film.pt"])
def test_a_checkpoint_with_pickled_code_is_refused_and_the_code_never_runs(tmp_path, trained, file_name):
    save_run(tmp_path, "evil", *trained)
    marker = tmp_path / "code-ran"
    state = trained[1].model.state_dict()
    payload = {**state, "extra": RunsCode(marker)} if file_name == "weights.pt" else {"originals": RunsCode(marker)}
    torch.save(payload, tmp_path / "evil" / file_name)
    assert not marker.exists()
    with pytest.raises(CheckpointError) as info:
        load_run(tmp_path, "evil")
    assert f"its {file_name} contains code or objects that are not plain weights" in str(info.value)
    _one_sentence_about(str(info.value), "evil")
    assert not marker.exists()


@pytest.mark.parametrize("content, reason", [
    ("truncated", "is truncated or damaged"),
    ("random", "is not a PyTorch weights file"),
    ("json", "is not a PyTorch weights file"),
    ("empty", "is empty"),
    ("list", "does not hold a model's weights"),
    ("missing", "is missing"),
])
def test_damaged_or_foreign_weights_are_refused_in_one_sentence(tmp_path, trained, content, reason):
    save_run(tmp_path, "bad", *trained)
    weights = tmp_path / "bad" / "weights.pt"
    data = weights.read_bytes()
    if content == "truncated":
        weights.write_bytes(data[: len(data) // 2])
    elif content == "random":
        weights.write_bytes(os.urandom(4096))
    elif content == "json":
        weights.write_text(json.dumps({"weights": [1, 2, 3]}))
    elif content == "empty":
        weights.write_bytes(b"")
    elif content == "list":
        torch.save([torch.zeros(2)], weights)
    else:
        weights.unlink()
    with pytest.raises(CheckpointError) as info:
        load_run(tmp_path, "bad")
    message = str(info.value)
    assert message.startswith("Run bad cannot be loaded: its weights.pt") and reason in message
    _one_sentence_about(message, "bad")


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path, trained):
    save_run(tmp_path, "mismatch", *trained)  # latent 2
    config_file = tmp_path / "mismatch" / "config.json"
    config = json.loads(config_file.read_text())
    config["model"]["latent"] = 4
    config_file.write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as info:
        load_run(tmp_path, "mismatch")
    message = str(info.value)
    assert "weights do not fit its config (conv-small, latent 4)" in message
    assert "layer decoder.0.weight has shape 128×2 but the model expects 128×4" in message
    _one_sentence_about(message, "mismatch")


def test_weights_of_another_architecture_are_refused(tmp_path, trained, trained_latent4):
    save_run(tmp_path, "plain", *trained)
    torch.save(trained_latent4[1].model.state_dict(), tmp_path / "plain" / "weights.pt")  # a VAE's weights
    with pytest.raises(CheckpointError) as info:
        load_run(tmp_path, "plain")
    assert "weights do not fit its config" in str(info.value)
    _one_sentence_about(str(info.value), "plain")


@pytest.mark.parametrize("damage, words", [
    ("garbage", "config.json is damaged or from another version"),
    ("unknown key", "config.json is damaged or from another version"),
    ("bad model", "config describes a model that cannot be built"),
    ("missing", "config.json is missing"),
])
def test_a_damaged_config_is_refused(tmp_path, trained, damage, words):
    save_run(tmp_path, "cfg", *trained)
    config_file = tmp_path / "cfg" / "config.json"
    config = json.loads(config_file.read_text())
    if damage == "garbage":
        config_file.write_text("{not json")
    elif damage == "unknown key":
        config["model"]["colour"] = "blue"
        config_file.write_text(json.dumps(config))
    elif damage == "bad model":
        config["model"]["activation"] = "gelu"
        config_file.write_text(json.dumps(config))
    else:
        config_file.unlink()
    with pytest.raises(CheckpointError) as info:
        load_run(tmp_path, "cfg")
    assert words in str(info.value)
    _one_sentence_about(str(info.value), "cfg")


def test_damaged_metrics_or_film_still_load_the_model_with_a_warning(tmp_path, trained):
    save_run(tmp_path, "partial", *trained)
    (tmp_path / "partial" / "metrics.json").write_text("[broken")
    (tmp_path / "partial" / "film.pt").write_bytes(b"nope")
    run = load_run(tmp_path, "partial")
    assert run.history == [] and run.film == [] and run.film_originals is None
    assert len(run.info["load_warnings"]) == 2
    assert run.info["status"] == "finished"


def test_list_runs_gives_key_settings_and_metrics_newest_first(tmp_path, trained, trained_latent4):
    assert list_runs(tmp_path / "does-not-exist") == []
    save_run(tmp_path, "older", *trained)
    save_run(tmp_path, "newer", *trained_latent4)
    rows = list_runs(tmp_path)
    assert [r["name"] for r in rows] == ["newer", "older"]
    assert all(LIST_KEYS <= set(r) for r in rows)
    newer, older = rows
    cfg, result = trained
    best = min(result.history, key=lambda r: r.val_loss)
    assert older["dataset"] == "digits" and older["family"] == "conv" and older["preset"] == "small"
    assert (older["latent"], older["vae"], older["conditional"], older["dropout"]) == (2, False, False, 0.0)
    assert (older["noise"], older["optimizer"], older["lr"], older["batch_size"]) == (0.1, "adam", 3e-3, 64)
    assert older["epochs_run"] == 2 and older["status"] == "finished"
    assert older["val_loss"] == pytest.approx(best.val_loss) and older["train_loss"] == pytest.approx(best.train_loss)
    assert older["test_mse"] == pytest.approx(result.test_metrics["mse"])
    assert older["test_mae"] == pytest.approx(result.test_metrics["mae"])
    assert (newer["latent"], newer["vae"], newer["dropout"]) == (4, True, 0.25)
    json.dumps(rows)  # plain values only: the UI can put them in a table


def test_a_complete_but_unreadable_run_is_listed_as_damaged(tmp_path, trained):
    save_run(tmp_path, "rotten", *trained)
    (tmp_path / "rotten" / "config.json").write_text("{")
    (row,) = list_runs(tmp_path)
    assert row["name"] == "rotten" and row["status"] == "damaged" and "delete it" in row["message"]


def test_delete_run(tmp_path, trained):
    save_run(tmp_path, "gone", *trained)
    save_run(tmp_path, "stays", *trained)
    delete_run(tmp_path, "gone")
    assert [r["name"] for r in list_runs(tmp_path)] == ["stays"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stays"]
    with pytest.raises(CheckpointError, match="There is no run named gone"):
        delete_run(tmp_path, "gone")


def test_default_run_names_say_the_settings_that_differ_from_the_datasets_defaults():
    """Issue 21: Adam vs SGD on the same dense model were named "...-z2" and "...-z2-2"."""
    from core.checkpoints import default_run_name

    dense = RunConfig(model=ModelConfig(family="dense", hidden=[1000, 500, 250], latent=2))
    adam = default_run_name(dense)
    assert adam == "digits-dense-1000-500-250-z2"
    names = {adam}
    for section, field, value in (("train", "optimizer", "sgd"), ("train", "lr", 0.01), ("model", "activation", "sigmoid"),
                                  ("model", "dropout", 0.5), ("train", "loss", "mae"), ("train", "weight_decay", 1e-4),
                                  ("train", "seed", 3)):
        other = RunConfig.from_json(dense.to_json())
        setattr(getattr(other, section), field, value)
        names.add(default_run_name(other))
    assert len(names) == 8, names  # every change is in the name
    fitted = RunConfig(train=TrainConfig(batch_size=16, epochs=39))  # a small folder's defaults
    small = RunConfig(train=TrainConfig(batch_size=16, epochs=39))
    assert default_run_name(small, fitted) == "digits-conv-small-z16"  # the dataset's defaults say nothing
    small.train.batch_size = 160
    assert default_run_name(small, fitted) == "digits-conv-small-z16-b160"  # full batch vs 16


def test_reserving_the_next_free_name(tmp_path, trained):
    assert reserve_run_name(tmp_path, "digits-conv", "next") == "digits-conv"  # its folder now holds the name
    assert reserve_run_name(tmp_path, "digits-conv", "next") == "digits-conv-2"
    save_run(tmp_path, "digits-conv-3", *trained)
    assert reserve_run_name(tmp_path, "digits-conv", "next") == "digits-conv-4"
    assert reserve_run_name(tmp_path, "my run / v1", "next") == "my-run-v1"  # made a valid name
    assert reserve_run_name(tmp_path, "../..", "next") == "run"
    assert reserve_run_name(tmp_path, "-v", "next") == "v"  # a leading dash would read as a CLI option
    check_name(reserve_run_name(tmp_path, "x" * 300, "next"))
    with pytest.raises(CheckpointError, match="already exists"):
        reserve_run_name(tmp_path, "digits-conv")


@pytest.mark.parametrize("name", ["../outside", ".hidden", "a/b", "", "x" * 101, "spaced name"])
def test_unsafe_run_names_are_refused(tmp_path, trained, name):
    with pytest.raises(CheckpointError, match="name"):
        save_run(tmp_path, name, *trained)
    with pytest.raises(CheckpointError):
        load_run(tmp_path, name)
    assert not (tmp_path.parent / "outside").exists()


def test_load_history_reads_the_epochs_without_the_weights(tmp_path, trained):
    save_run(tmp_path, "h", *trained)
    (tmp_path / "h" / "weights.pt").write_bytes(b"")  # the weights are not needed for the history
    history = load_history(tmp_path, "h")
    assert [r["epoch"] for r in history] == [r.epoch for r in trained[1].history]
    (tmp_path / "h" / "metrics.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="Run h has no loss history"):
        load_history(tmp_path, "h")


# ---------------------------------------------------------------- issue 9: damaged files, names, races

def test_a_run_name_with_a_trailing_newline_is_refused(tmp_path, trained):
    with pytest.raises(CheckpointError, match="not a valid run name"):
        check_name("good\n")
    with pytest.raises(CheckpointError):
        save_run(tmp_path, "good\n", *trained)
    assert not any(tmp_path.iterdir()) if tmp_path.exists() else True


def test_a_config_field_of_the_wrong_type_is_one_sentence(tmp_path, trained):
    save_run(tmp_path, "typed", *trained)
    config_file = tmp_path / "typed" / "config.json"
    config = json.loads(config_file.read_text())
    config["model"]["dropout"] = "0.5"
    config_file.write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as info:
        load_run(tmp_path, "typed")
    message = str(info.value)
    assert 'model.dropout must be a number, not "0.5"' in message
    _one_sentence_about(message, "typed")
    (row,) = list_runs(tmp_path)
    assert row["status"] == "damaged" and "model.dropout" in row["message"]


@pytest.mark.parametrize("file_name, content, words", [
    ("metrics.json", {"history": 5}, "history in metrics.json is not a list"),
    ("metrics.json", {"history": [{"epoch": 1, "val_loss": "low"}]}, "val_loss that is not a number"),
    ("metrics.json", {"history": [], "batch_losses": ["a"]}, "batch losses"),
    ("metrics.json", {"history": [], "test_metrics": {"mse": [1]}}, "test metrics"),
    ("metrics.json", [1, 2], "not a JSON object"),
    ("info.json", {"status": 3}, "status in info.json"),
    ("info.json", {"epochs_run": "many"}, "epochs_run in info.json"),
    ("info.json", "text", "info.json is not a JSON object"),
])
def test_a_damaged_run_file_lists_as_damaged_and_the_rest_normally(tmp_path, trained, file_name, content, words):
    save_run(tmp_path, "good", *trained)
    save_run(tmp_path, "bad", *trained)
    path = tmp_path / "bad" / file_name
    current = json.loads(path.read_text())
    path.write_text(json.dumps({**current, **content} if isinstance(content, dict) and file_name == "info.json"
                               else content))
    rows = {row["name"]: row for row in list_runs(tmp_path)}
    assert rows["good"]["status"] != "damaged" and rows["good"]["val_loss"] is not None
    assert rows["bad"]["status"] == "damaged" and words in rows["bad"]["message"]
    assert rows["bad"]["message"].startswith("Run bad is damaged (") and rows["bad"]["message"].endswith("delete it.")
    # Loading still gives the model (the weights are fine) with a warning, never a TypeError.
    run = load_run(tmp_path, "bad")
    assert run.info.get("load_warnings") or file_name == "info.json"
    assert all(isinstance(x, float) for x in run.batch_losses)
    delete_run(tmp_path, "bad")
    assert [row["name"] for row in list_runs(tmp_path)] == ["good"]


def test_a_named_run_whose_name_was_taken_keeps_its_weights_under_a_new_name(tmp_path, trained):
    save_run(tmp_path, "mine", *trained)
    path = save_run(tmp_path, "mine", *trained, on_taken="rename")
    assert path.name == "mine-2"
    info = json.loads((path / "info.json").read_text())
    assert "The name mine was taken, so the run was saved as mine-2." in info["message"]
    assert load_run(tmp_path, "mine-2").config.name == "mine-2"
    assert save_run(tmp_path, "mine", *trained, on_taken="next").name == "mine-3"
    with pytest.raises(CheckpointError, match="already exists"):
        save_run(tmp_path, "mine", *trained)
    # a failed save gives its reserved name back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "mine-2", "mine-3"]


def _save_unnamed_at_once(root: str, barrier, results) -> None:
    """In its own process: build a tiny model and save it unnamed the moment every process is ready."""
    from types import SimpleNamespace

    from core.checkpoints import save_run as save
    from core.models import build_model

    cfg = RunConfig(data=DataConfig(dataset="digits"),
                    model=ModelConfig(family="dense", hidden=[4], latent=2, in_channels=1, image_size=8))
    result = SimpleNamespace(model=build_model(cfg.model), status="finished", message="Finished 1 epoch.",
                             device="cpu", history=[{"epoch": 1, "train_loss": 0.1, "val_loss": 0.1, "seconds": 0.1}],
                             batch_losses=[0.1], test_metrics={}, film_originals=None, film=[])
    barrier.wait()
    try:
        results.put(save(root, "digits-dense-4-z2", cfg, result, on_taken="next").name)
    except Exception as exc:  # the failure the test must not see
        results.put(f"error: {exc}")


def test_unnamed_runs_saved_at_once_by_several_processes_are_all_kept(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # real, separate processes
    processes_count = 3  # each imports torch (spawn): a few seconds apiece
    barrier, results = context.Barrier(processes_count), context.Queue()
    processes = [context.Process(target=_save_unnamed_at_once, args=(str(tmp_path), barrier, results))
                 for _ in range(processes_count)]
    for process in processes:
        process.start()
    names = sorted(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    assert names == ["digits-dense-4-z2", "digits-dense-4-z2-2", "digits-dense-4-z2-3"]
    assert sorted(row["name"] for row in list_runs(tmp_path)) == names
    assert all(row["status"] == "finished" for row in list_runs(tmp_path))


def test_a_reservation_left_by_a_killed_save_is_cleaned_on_restart(tmp_path, trained):
    import os
    import time

    from core.checkpoints import reserve_run_name
    from core.jobs.restart import clean_leftovers

    save_run(tmp_path, "kept", *trained)
    assert reserve_run_name(tmp_path, "orphan") == "orphan"  # the save that would fill it never came
    old = time.time() - 3600
    for name in ("kept", "orphan"):
        os.utime(tmp_path / name, (old, old))
    assert "orphan" in clean_leftovers(tmp_path, older_than=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]  # a complete run is never touched
    assert reserve_run_name(tmp_path, "orphan") == "orphan"  # the name is free again


# ---------------------------------------------------------------- issue 16: a kill at the worst moment

def _overwrite_and_die_between_the_renames(root: str, cfg, result) -> None:
    """In a forked child: overwrite run "keep" and be killed (SIGKILL: no cleanup of any kind runs)
    the moment the new run's staging folder is about to be renamed into place, i.e. after the
    previous run was moved aside."""
    import signal

    real_rename = os.rename

    def rename(src, dst, *args, **kwargs):
        if Path(src).name.startswith((".tmp-", ".new-")):  # the new run's staging folder
            os.kill(os.getpid(), signal.SIGKILL)
        return real_rename(src, dst, *args, **kwargs)

    os.rename = rename
    save_run(root, "keep", cfg, result, overwrite=True)


def _restart_later(root: Path) -> None:
    """What a server starting an hour later does: its clean-up finds every folder old enough to judge."""
    import time

    from core.jobs.restart import clean_leftovers

    long_ago = time.time() - 3600
    for folder in root.iterdir():
        for path in [folder, *folder.iterdir()]:
            os.utime(path, (long_ago, long_ago))
    clean_leftovers(root, older_than=60)


def test_a_kill_between_the_renames_of_an_overwrite_loses_nothing(tmp_path, trained, trained_latent4):
    import multiprocessing

    save_run(tmp_path, "keep", *trained)  # latent 2; the overwrite brings latent 4
    child = multiprocessing.get_context("fork").Process(
        target=_overwrite_and_die_between_the_renames, args=(str(tmp_path), *trained_latent4))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == -9  # killed, not finished
    hidden = sorted(p.name[:5] for p in tmp_path.iterdir())
    assert len(hidden) == 2 and ".old-" in hidden and not (tmp_path / "keep").exists()  # the worst moment
    _restart_later(tmp_path)
    run = load_run(tmp_path, "keep")  # the new run, finished by the clean-up
    assert run.config.model.latent == 4 and not run.info.get("load_warnings")
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]


def test_the_clean_up_puts_a_replaced_run_back_when_its_successor_never_arrived(tmp_path, trained):
    import shutil

    save_run(tmp_path, "keep", *trained)
    os.rename(tmp_path / "keep", tmp_path / ".old-keep-0badf00d")  # moved aside ...
    half = tmp_path / ".tmp-keep-1234abcd"  # ... and the new one killed before its info.json
    half.mkdir()
    shutil.copy(tmp_path / ".old-keep-0badf00d" / "weights.pt", half / "weights.pt")
    deleting = tmp_path / ".deleting-gone-5678abcd"  # a delete killed midway: never comes back
    shutil.copytree(tmp_path / ".old-keep-0badf00d", deleting)
    _restart_later(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]
    assert load_run(tmp_path, "keep").config.model.latent == 2


def test_an_overwrite_killed_before_its_first_rename_is_finished_by_the_clean_up(tmp_path, trained, trained_latent4):
    import shutil

    save_run(tmp_path, "keep", *trained)  # latent 2
    save_run(tmp_path / "elsewhere", "keep", *trained_latent4)
    shutil.move(tmp_path / "elsewhere" / "keep", tmp_path / ".new-keep-0badf00d")  # complete, not yet renamed
    shutil.rmtree(tmp_path / "elsewhere")
    _restart_later(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]
    assert load_run(tmp_path, "keep").config.model.latent == 4  # the overwrite the student asked for


# ---------------------------------------------------------------- issue 17: runs have owners

ALICE, BOB = "alice-owner-id-00000001", "bob-owner-id-0000000002"


def test_a_run_records_its_owner_and_only_they_or_the_teacher_change_it(tmp_path, trained, trained_latent4):
    from core.serving.access import OwnerError, owner_key

    save_run(tmp_path, "alices", *trained, owner=ALICE)
    info = json.loads((tmp_path / "alices" / "info.json").read_text())
    assert info["owner"] == owner_key(ALICE) and ALICE not in json.dumps(info)  # a salted key, never the id
    assert list_runs(tmp_path)[0]["owner"] == owner_key(ALICE)
    with pytest.raises(OwnerError, match="Only the student who made run alices .or the teacher. can delete it"):
        delete_run(tmp_path, "alices", by=BOB)
    with pytest.raises(OwnerError, match="can overwrite it"):
        save_run(tmp_path, "alices", *trained_latent4, overwrite=True, owner=BOB)
    assert load_run(tmp_path, "alices").config.model.latent == 2  # untouched
    # The teacher continues it: it stays Alice's.
    save_run(tmp_path, "alices", *trained_latent4, overwrite=True, owner=BOB, teacher=True)
    assert load_run(tmp_path, "alices").info["owner"] == owner_key(ALICE)
    delete_run(tmp_path, "alices", by=ALICE)
    assert list_runs(tmp_path) == []
    # A run without an owner (the CLI's, or older) is the teacher's: students look, not delete.
    save_run(tmp_path, "teachers", *trained)
    with pytest.raises(OwnerError):
        delete_run(tmp_path, "teachers", by=ALICE)
    delete_run(tmp_path, "teachers", by=ALICE, teacher=True)
    save_run(tmp_path, "cli", *trained)
    delete_run(tmp_path, "cli")  # by=None: the CLI itself
    assert list_runs(tmp_path) == []


# ---------------------------------------------------------------- issue 17: hostile run files

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("file_name, content, words", [
    ("metrics.json", DEEP, "its metrics.json is nested too deeply"),
    ("info.json", '{"status": "finished", "x": ' + DEEP + "}", "its info.json is nested too deeply"),
    ("config.json", DEEP, "its config.json is damaged or from another version: it is nested too deeply"),
    ("metrics.json", json.dumps({"history": [], "batch_losses": [0.5] * 600_000}), "more than 500,000 batch losses"),
    ("metrics.json", json.dumps({"history": [], "batch_losses": [], "pad": "x" * (17 << 20)}), "larger than 16 MB"),
])
def test_a_hostile_run_file_lists_the_run_as_damaged_in_one_sentence(tmp_path, trained, file_name, content, words):
    save_run(tmp_path, "good", *trained)
    save_run(tmp_path, "bad", *trained)
    (tmp_path / "bad" / file_name).write_text(content)
    rows = {row["name"]: row for row in list_runs(tmp_path)}
    assert rows["good"]["status"] == "finished"
    assert rows["bad"]["status"] == "damaged" and words in rows["bad"]["message"], rows["bad"]["message"]
    assert rows["bad"]["message"].startswith("Run bad is damaged (") and "\n" not in rows["bad"]["message"]
    if file_name != "config.json":  # the model still loads, with a warning
        assert load_run(tmp_path, "bad").info["load_warnings"]
    else:
        with pytest.raises(CheckpointError, match="nested too deeply"):
            load_run(tmp_path, "bad")


@pytest.mark.parametrize("field, value", [
    ("experiment", {"name": ["a", {"b": 1}]}),
    ("factors", {"model.latent": {"deep": [1]}}),
    ("owner", "not-a-key"),
    ("message", ["a list"]),
])
def test_info_fields_of_the_wrong_type_never_reach_a_page(tmp_path, trained, field, value):
    save_run(tmp_path, "bad", *trained)
    info_file = tmp_path / "bad" / "info.json"
    info = json.loads(info_file.read_text())
    info[field] = value
    info["harmless_extra"] = "kept"
    info["nested_extra"] = {"dropped": [1, 2]}
    info_file.write_text(json.dumps(info))
    (row,) = list_runs(tmp_path)
    assert row["status"] == "damaged" and f"the {field} in info.json is not" in row["message"]
    assert row["experiment"] is None and row["factors"] == {} and row["owner"] is None
    info.pop(field)
    info_file.write_text(json.dumps(info))
    run = load_run(tmp_path, "bad")
    assert run.info["harmless_extra"] == "kept" and "nested_extra" not in run.info


def test_listing_reads_a_run_s_files_again_only_when_they_change(tmp_path, trained, monkeypatch):
    import core.checkpoints.listing as listing

    save_run(tmp_path, "a", *trained)
    save_run(tmp_path, "b", *trained)
    first = list_runs(tmp_path)
    reads = []
    real = listing._read_row
    monkeypatch.setattr(listing, "_read_row", lambda path, mtime: reads.append(path.name) or real(path, mtime))
    assert list_runs(tmp_path) == first and reads == []  # every row from the cache
    metrics = tmp_path / "b" / "metrics.json"
    metrics.write_text(json.dumps({"history": [], "batch_losses": [], "test_metrics": {"mse": 0.5}}))
    rows = {row["name"]: row for row in list_runs(tmp_path)}
    assert reads == ["b"] and rows["b"]["test_mse"] == 0.5
