"""core.experiments.estimate: the arithmetic of an experiment's time estimate from measured costs
(no timing assertions: the inputs are given numbers), what the measuring run trains, which settings
share one measurement, and the background CostBook that never makes a page wait."""
from __future__ import annotations

import os
import threading

import pytest

from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.experiments import ExperimentConfig, preset_experiment
from core.experiments import estimate
from core.experiments.estimate import (CostBook, JobCosts, SplitSizes, cost_config, estimate_seconds,
                                       experiment_costs, mean_costs, measure_job_costs, split_costs, variant_configs)

DIGITS = ((1, 8, 8), 10)  # shape, classes
SIZES = SplitSizes(1437, 180, 180)


def digits_base(epochs: int = 5, limit: int = 0) -> RunConfig:
    return RunConfig(data=DataConfig(dataset="digits", limit=limit), train=TrainConfig(epochs=epochs, device="cpu"))


def costs_of(exp, measure, most=estimate.MOST_MEASURED, sizes=SIZES):
    return experiment_costs(exp, measure, *DIGITS, sizes, most=most)


def test_a_run_costs_its_steps_plus_validation_every_epoch_plus_its_test_and_fixed_cost():
    costs = JobCosts(images_per_s=2000.0, eval_images_per_s=10_000.0, epoch_s=0.1, job_s=1.5)
    # 1.5 s fixed + 500 test images + 5 epochs × (0.1 s + 1,000 images at 2,000/s + 500 at 10,000/s)
    assert costs.run_seconds(5, 1000, 500, 500) == pytest.approx(1.5 + 0.05 + 5 * (0.1 + 0.5 + 0.05))
    assert costs.run_seconds(0, 1000) == pytest.approx(1.5)


def test_the_measuring_runs_timings_split_into_speeds_per_epoch_and_per_run_costs():
    # 2 epochs of 300 images: 1.2 s (cold) then 0.6 s (warm, 0.1 s of it validating 100 images at
    # 1,000/s); the whole run with its test (100 images) and saving took 3.0 s.
    costs = split_costs(3.0, [1.2, 0.6], 1000.0, 300, eval_images_per_s=1000.0, val_images=100, test_images=100)
    assert costs.images_per_s == 1000.0 and costs.eval_images_per_s == 1000.0
    assert costs.epoch_s == pytest.approx(0.6 - 0.3 - 0.1)  # the warm epoch beyond its steps and validation
    assert costs.job_s == pytest.approx(3.0 - 2 * 0.6 - 0.1)  # build, first-epoch warm-up, save
    # The measuring run predicts itself.
    assert costs.run_seconds(2, 300, 100, 100) == pytest.approx(3.0)
    # Timing noise never makes a cost negative.
    assert split_costs(0.9, [0.5, 0.5], 100.0, 100, 1000.0, 0, 0).job_s == 0.0
    assert split_costs(2.0, [0.5, 0.5], 100.0, 100, 1000.0, 0, 0).epoch_s == 0.0
    with pytest.raises(ValueError):
        split_costs(1.0, [], 100.0, 100, 1000.0, 0, 0)


def test_the_teachers_size_dropout_case_counts_every_variants_own_costs():
    """The page said 'about 1 s' (6 warm steps of the base model: 24,499 images/s, × 1.15) for
    4 runs × 5 epochs × 1,437 digits; it took about 10 s. Costs like the ones measured for it
    (small conv ~5,000 images/s in the real loop, large ~2,600, ~0.4 s per run) give ~10 s."""
    exp = preset_experiment("size-dropout", digits_base(), "size-dropout")
    small, large = JobCosts(5000.0, 1e9, 0.05, 0.4), JobCosts(2600.0, 1e9, 0.08, 0.6)
    costs = [small, small, large, large]  # variants: small/0, small/0.5, large/0, large/0.5
    sizes = SplitSizes(1437, 0, 0)
    # by hand: each small run 0.4 + 5 × (0.05 + 0.2874) = 2.087 s, each large 0.6 + 5 × (0.08 + 0.5527) = 3.7635 s
    seconds = estimate_seconds(exp, sizes, costs)
    assert seconds == pytest.approx(11.70, abs=0.01)
    assert 0.8 < 10.0 / seconds < 1.25  # the real experiment took about 10 s (the old estimate: about 1 s)
    assert estimate_seconds(exp, sizes, [large, large, small, small]) == pytest.approx(seconds)  # each its own
    # twice the images: each run adds 5 epochs of 1,437 more images at its own speed
    assert estimate_seconds(exp, SplitSizes(2 * 1437, 0, 0), costs) - seconds == pytest.approx(
        10 * 1437 * (1 / 5000 + 1 / 2600))
    with pytest.raises(ValueError):
        estimate_seconds(exp, sizes, costs[:3])


def test_each_distinct_setting_is_measured_once_and_the_rest_take_the_mean():
    exp = preset_experiment("size-dropout", digits_base(), "size-dropout")
    measured = []

    def measure(cfg: RunConfig) -> JobCosts:
        measured.append((cfg.model.preset, cfg.model.dropout))
        return JobCosts(1000.0 * len(measured), 5000.0, 0.1, float(len(measured)))

    costs = costs_of(exp, measure)
    assert measured == [("small", 0.0), ("small", 0.5), ("large", 0.0), ("large", 0.5)]
    assert [c.job_s for c in costs] == [1.0, 2.0, 3.0, 4.0]

    measured.clear()
    costs = costs_of(exp, measure, most=2)
    assert len(measured) == 2 and len(costs) == 4
    assert costs[2] == costs[3] == mean_costs(costs[:2]) == JobCosts(1500.0, 5000.0, 0.1, 1.5)


def test_an_estimate_waits_for_every_measurement_it_needs():
    exp = preset_experiment("size-dropout", digits_base(), "size-dropout")
    assert costs_of(exp, lambda cfg: None if cfg.model.preset == "large" else JobCosts(1.0, 1.0, 0.0, 0.0)) is None


def test_variants_that_differ_only_in_epochs_share_one_measurement_but_not_their_length():
    exp = ExperimentConfig(name="epochs", base=digits_base(), grid={"train.epochs": [1, 3]})
    calls = []
    costs = costs_of(exp, lambda cfg: calls.append(cfg) or JobCosts(1000.0, 1e9, 0.1, 1.0))
    assert len(calls) == 1 and calls[0].train.epochs == estimate.MEASURED_EPOCHS
    # 1 + 1 × (0.1 + 1) and 1 + 3 × (0.1 + 1) (validation and test at a near-infinite speed)
    assert estimate_seconds(exp, SplitSizes(1000, 10, 10), costs) == pytest.approx(2.1 + 4.3)


def test_a_grid_over_learning_rates_is_measured_once():
    """The learning rate (like the weight decay, the seed and beta) changes no step's work."""
    exp = ExperimentConfig(name="rates", base=digits_base(), grid={"train.lr": [1e-4, 1e-3, 1e-2]})
    calls = []
    costs_of(exp, lambda cfg: calls.append(cfg) or JobCosts(1000.0, 1000.0, 0.1, 1.0))
    assert len(calls) == 1


def test_a_search_is_its_base_once_per_trial():
    exp = preset_experiment("search", digits_base(epochs=2), "s")
    exp.search.trials = 3
    configs = variant_configs(exp)
    assert len(configs) == 3 and all(c.to_json() == exp.base.to_json() for c in configs)
    assert estimate_seconds(exp, SplitSizes(100, 0, 0), [JobCosts(100.0, 1.0, 0.0, 1.0)] * 3) == pytest.approx(9.0)


def test_the_cost_config_leaves_out_what_costs_do_not_depend_on():
    """Issue 17: each new ?limit= on Experiments measured again (15-22 s of CPU). The image limit,
    the dataset's name (of the same shape), its seed and split, the epochs, learning rate, seed and
    left-out classes make one cost config; the model, the shape and the batch size make another."""
    cfg = digits_base(epochs=40)
    cfg.name, cfg.train.patience, cfg.data.exclude_classes, cfg.train.lr = "run-7", 3, [4], 0.1
    cost = cost_config(cfg, (1, 8, 8), 10, 1437)
    assert (cost.name, cost.train.epochs, cost.train.patience) == ("", estimate.MEASURED_EPOCHS, 0)
    assert cfg.train.epochs == 40 and cfg.name == "run-7"  # the caller's config is not changed
    same = [digits_base(epochs=3, limit=300), RunConfig(data=DataConfig(dataset="mnist", limit=5000, seed=4))]
    for other in same:
        other.train.device = "cpu"
        assert cost_config(other, (1, 8, 8), 10, 900).to_json() == cost.to_json()
    other = digits_base()
    other.model.dropout = 0.5
    assert cost_config(other, (1, 8, 8), 10, 1437).to_json() != cost.to_json()
    assert cost_config(digits_base(), (3, 32, 32), 10, 1437).to_json() != cost.to_json()
    assert cost_config(digits_base(), (1, 8, 8), 10, 60).train.batch_size == 60  # full batch: the set's size


def test_the_measuring_run_trains_a_few_batches_of_the_shape_twice_and_leaves_nothing_behind(tmp_path, monkeypatch):
    from core import train as train_module

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    seen, results = [], []
    real_train = train_module.train

    def spying_train(cfg, dataset, *args, **kwargs):
        seen.append((cfg.train.epochs, dataset.shape, {k: len(v) for k, v in dataset.splits.items()}))
        results.append(real_train(cfg, dataset, *args, **kwargs))
        return results[-1]

    monkeypatch.setattr(train_module, "train", spying_train)
    cfg = RunConfig(model=ModelConfig(family="dense", hidden=[16], latent=2),
                    train=TrainConfig(epochs=30, batch_size=32, device="cpu"))
    costs = measure_job_costs(cost_config(cfg, (3, 12, 12), 4, 5000), batches=3)  # 3 × 32 < MEASURED_IMAGES: more
    checks = {"val": estimate.VALIDATION_IMAGES, "test": estimate.VALIDATION_IMAGES}
    # an untimed warm-up of one batch, then the measured run
    assert seen == [(1, (3, 12, 12), {"train": 32, **checks}), (2, (3, 12, 12), {"train": estimate.MEASURED_IMAGES, **checks})]
    assert costs.eval_images_per_s > 0 and costs.job_s >= 0
    # the training speed is the measured run's own: its warm epoch's
    assert costs.images_per_s == results[-1].history[-1].images_per_s > 0
    assert not [n for n in os.listdir(tmp_path) if n.startswith("ae-lab-estimate-")]  # the scratch run was deleted


def test_the_cost_book_answers_at_once_and_measures_each_setting_once_in_the_background():
    release = threading.Event()
    calls = []

    def slow_measure(cost: RunConfig) -> JobCosts:
        calls.append(cost.model.latent)
        release.wait(10)
        if cost.model.latent == 3:
            raise ValueError("This model is too large to measure.")
        return JobCosts(100.0, 100.0, 0.0, 1.0)

    book = CostBook(slow_measure)
    two, three = (cost_config(RunConfig(model=ModelConfig(latent=z)), (1, 8, 8), 10, 100) for z in (2, 3))
    assert book.costs(two) is None and book.costs(two) is None  # asked twice, queued once
    assert book.costs(three) is None and book.waiting() == 2
    release.set()
    deadline = threading.Event()
    for _ in range(200):
        if book.waiting() == 0:
            break
        deadline.wait(0.05)
    assert book.costs(two) == JobCosts(100.0, 100.0, 0.0, 1.0)
    assert book.costs(three) is None and book.problem(three) == "This model is too large to measure."
    assert calls == [2, 3] and book.measured == 2  # a failed setting is not measured again


def test_closing_the_cost_book_waits_for_the_measurement_under_way_and_drops_the_rest():
    """At the interpreter's exit (atexit) a daemon thread inside PyTorch would abort the process
    (exit 134): close() lets the measurement under way finish and measures nothing more."""
    started, finished = threading.Event(), threading.Event()
    calls = []

    def slow_measure(cost: RunConfig) -> JobCosts:
        calls.append(cost.model.latent)
        started.set()
        threading.Event().wait(0.5)
        finished.set()
        return JobCosts(100.0, 100.0, 0.0, 1.0)

    book = CostBook(slow_measure)
    two, three = (cost_config(RunConfig(model=ModelConfig(latent=z)), (1, 8, 8), 10, 100) for z in (2, 3))
    assert book.costs(two) is None and book.costs(three) is None
    assert started.wait(10)
    book.close(timeout=10)
    assert finished.is_set() and calls == [2]  # the one under way finished; the waiting one was dropped
    assert book.costs(three) is None and book.waiting() == 0  # and nothing more is measured
