"""core.experiments.estimate: the arithmetic of an experiment's time estimate from measured costs
(no timing assertions: the inputs are given numbers), and what the measuring run trains."""
from __future__ import annotations

import os

import pytest

from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import load_dataset
from core.experiments import ExperimentConfig, preset_experiment
from core.experiments import estimate
from core.experiments.estimate import (JobCosts, cost_config, estimate_seconds, experiment_costs, mean_costs,
                                       measure_job_costs, split_costs, variant_configs)


def digits_base(epochs: int = 5, limit: int = 0) -> RunConfig:
    return RunConfig(data=DataConfig(dataset="digits", limit=limit), train=TrainConfig(epochs=epochs, device="cpu"))


def test_a_run_costs_its_steps_plus_validation_every_epoch_plus_its_fixed_cost():
    costs = JobCosts(images_per_s=2000.0, epoch_s=0.1, job_s=1.5)
    # 1.5 s fixed + 5 epochs × (0.1 s validation + 1,000 images at 2,000/s)
    assert costs.run_seconds(5, 1000) == pytest.approx(1.5 + 5 * (0.1 + 0.5))
    assert costs.run_seconds(0, 1000) == pytest.approx(1.5)


def test_the_measuring_runs_timings_split_into_speed_per_epoch_and_per_run_costs():
    # 2 epochs of 300 images: 1.2 s (cold) then 0.5 s (warm); the whole run with saving took 3.0 s.
    costs = split_costs(3.0, [1.2, 0.5], last_images_per_s=1000.0, images_per_epoch=300)
    assert costs.images_per_s == 1000.0
    assert costs.epoch_s == pytest.approx(0.5 - 0.3)  # the warm epoch beyond its 0.3 s of steps
    assert costs.job_s == pytest.approx(3.0 - 2 * 0.5)  # build, first-epoch warm-up, test, save
    # A run measured as 2 warm epochs and 2.0 s more predicts itself.
    assert costs.run_seconds(2, 300) == pytest.approx(3.0)
    # Timing noise never makes a cost negative.
    assert split_costs(0.9, [0.5, 0.5], 100.0, 100).job_s == 0.0
    assert split_costs(2.0, [0.5, 0.5], 100.0, 100).epoch_s == 0.0
    with pytest.raises(ValueError):
        split_costs(1.0, [], 100.0, 100)


def test_the_teachers_size_dropout_case_counts_every_variants_own_costs():
    """The page said 'about 1 s' (6 warm steps of the base model: 24,499 images/s, × 1.15) for
    4 runs × 5 epochs × 1,437 digits; it took about 10 s. Costs like the ones measured for it
    (small conv ~5,000 images/s in the real loop, large ~2,600, ~0.4 s per run) give ~10 s."""
    exp = preset_experiment("size-dropout", digits_base(), "size-dropout")
    small, large = JobCosts(5000.0, 0.05, 0.4), JobCosts(2600.0, 0.08, 0.6)
    costs = [small, small, large, large]  # variants: small/0, small/0.5, large/0, large/0.5
    # by hand: each small run 0.4 + 5 × (0.05 + 0.2874) = 2.087 s, each large 0.6 + 5 × (0.08 + 0.5527) = 3.7635 s
    seconds = estimate_seconds(exp, 1437, costs)
    assert seconds == pytest.approx(11.70, abs=0.01)
    assert 0.8 < 10.0 / seconds < 1.25  # the real experiment took about 10 s (the old estimate: about 1 s)
    assert estimate_seconds(exp, 1437, [large, large, small, small]) == pytest.approx(seconds)  # each its own
    # twice the images: each run adds 5 epochs of 1,437 more images at its own speed
    assert estimate_seconds(exp, 2 * 1437, costs) - seconds == pytest.approx(10 * 1437 * (1 / 5000 + 1 / 2600))
    with pytest.raises(ValueError):
        estimate_seconds(exp, 1437, costs[:3])


def test_each_distinct_setting_is_measured_once_and_the_rest_take_the_mean():
    exp = preset_experiment("size-dropout", digits_base(), "size-dropout")
    measured = []

    def measure(cfg: RunConfig) -> JobCosts:
        measured.append((cfg.model.preset, cfg.model.dropout))
        return JobCosts(1000.0 * len(measured), 0.1, float(len(measured)))

    costs = experiment_costs(exp, measure)
    assert measured == [("small", 0.0), ("small", 0.5), ("large", 0.0), ("large", 0.5)]
    assert [c.job_s for c in costs] == [1.0, 2.0, 3.0, 4.0]

    measured.clear()
    costs = experiment_costs(exp, measure, most=2)
    assert len(measured) == 2 and len(costs) == 4
    assert costs[2] == costs[3] == mean_costs(costs[:2]) == JobCosts(1500.0, 0.1, 1.5)


def test_variants_that_differ_only_in_epochs_share_one_measurement_but_not_their_length():
    exp = ExperimentConfig(name="epochs", base=digits_base(), grid={"train.epochs": [1, 3]})
    calls = []
    costs = experiment_costs(exp, lambda cfg: calls.append(cfg) or JobCosts(1000.0, 0.1, 1.0))
    assert len(calls) == 1 and calls[0].train.epochs == estimate.MEASURED_EPOCHS
    # 1 + 1 × (0.1 + 1) and 1 + 3 × (0.1 + 1)
    assert estimate_seconds(exp, 1000, costs) == pytest.approx(2.1 + 4.3)


def test_a_grid_over_learning_rates_is_measured_once():
    """The learning rate (like the weight decay, the seed and beta) changes no step's work."""
    exp = ExperimentConfig(name="rates", base=digits_base(), grid={"train.lr": [1e-4, 1e-3, 1e-2]})
    calls = []
    experiment_costs(exp, lambda cfg: calls.append(cfg) or JobCosts(1000.0, 0.1, 1.0))
    assert len(calls) == 1


def test_a_search_is_its_base_once_per_trial():
    exp = preset_experiment("search", digits_base(epochs=2), "s")
    exp.search.trials = 3
    configs = variant_configs(exp)
    assert len(configs) == 3 and all(c.to_json() == exp.base.to_json() for c in configs)
    assert estimate_seconds(exp, 100, [JobCosts(100.0, 0.0, 1.0)] * 3) == pytest.approx(3 * (1 + 2 * 1.0))


def test_the_cost_config_leaves_out_what_costs_do_not_depend_on():
    cfg = digits_base(epochs=40)
    cfg.name, cfg.train.patience, cfg.data.exclude_classes = "run-7", 3, [4]
    cost = cost_config(cfg)
    assert (cost.name, cost.train.epochs, cost.train.patience, cost.data.exclude_classes) == ("", 2, 0, [])
    assert cfg.train.epochs == 40 and cfg.name == "run-7"  # the caller's config is not changed
    other = digits_base(epochs=3)
    assert cost_config(other).to_json() == cost.to_json()
    other.model.dropout = 0.5
    assert cost_config(other).to_json() != cost.to_json()


def test_the_measuring_run_trains_a_few_batches_twice_and_leaves_nothing_behind(tmp_path, monkeypatch):
    from core import train as train_module

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    data_cfg = DataConfig(dataset="digits", limit=600)
    data = load_dataset(data_cfg)
    seen, results = [], []
    real_train = train_module.train

    def spying_train(cfg, dataset, *args, **kwargs):
        seen.append((cfg.train.epochs, {k: len(v) for k, v in dataset.splits.items()}))
        results.append(real_train(cfg, dataset, *args, **kwargs))
        return results[-1]

    monkeypatch.setattr(train_module, "train", spying_train)
    cfg = RunConfig(data=data_cfg, model=ModelConfig(family="dense", hidden=[16], latent=2),
                    train=TrainConfig(epochs=30, batch_size=32, device="cpu"))
    costs = measure_job_costs(cfg, data, batches=3)
    splits = {k: len(v) for k, v in data.splits.items()}
    # an untimed warm-up of one batch, then the measured run: full validation and test splits
    assert seen == [(1, {**splits, "train": 32}), (2, {**splits, "train": 3 * 32})]
    # the costs are the measured run's own: its warm epoch's speed and the rest of that epoch's time
    warm = results[-1].history[-1]
    assert costs.images_per_s == warm.images_per_s
    assert costs.epoch_s == pytest.approx(max(warm.seconds - 3 * 32 / warm.images_per_s, 0.0))
    assert not [n for n in os.listdir(tmp_path) if n.startswith("ae-lab-estimate-")]  # the scratch run was deleted
