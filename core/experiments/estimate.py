"""How long an experiment will take here, from a short real run of each variant's settings.

A tight loop of optimiser steps alone was 10x off for small runs (it said "about 1 s" for a size ×
dropout preset on the digits that took 10 s): it measured a warm model at its best speed and left
out what every run pays besides its steps: building the model and its first slow steps (the CPU's
kernels are set up on first use), validation and the film frame every epoch, the test evaluation
and the saving at the end, the training loop's own per-batch work, and the other variants' models
(a large conv model is ~2x slower than the small one the base config names). So each distinct
variant setting is trained for real, on a few batches for MEASURED_EPOCHS epochs with the full
validation and test splits, and saved to a scratch folder; that run's timings split into a speed
and two fixed costs (JobCosts), which the estimate scales to the variant's epochs and images.
"""
from __future__ import annotations

import copy
import dataclasses
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.config import RunConfig
from core.data import Dataset
from core.experiments.config import ExperimentConfig, expand_grid, variant_config, variant_count

# The measuring run: a few batches per epoch, two epochs (the second one, warm, gives the speed).
MEASURED_BATCHES = 6
MEASURED_EPOCHS = 2
# Distinct variant settings measured for one estimate; the others are taken as the mean of those.
MOST_MEASURED = 4


@dataclass(frozen=True)
class JobCosts:
    """What one run of a setting costs on this machine."""
    images_per_s: float  # training images per second in the training loop, once warm
    epoch_s: float  # per epoch besides the training steps: validation, film frame, best weights kept
    job_s: float  # per run: model build, first (slow) steps, test evaluation, saving

    def run_seconds(self, epochs: int, train_images: int) -> float:
        """Seconds for a run of `epochs` epochs over `train_images` training images."""
        return self.job_s + epochs * (self.epoch_s + train_images / max(self.images_per_s, 1e-9))


def split_costs(total_s: float, epoch_seconds: Sequence[float], last_images_per_s: float,
                images_per_epoch: int) -> JobCosts:
    """The measuring run's timings as JobCosts. total_s: the whole run with its saving;
    epoch_seconds: the wall time of each epoch (training, validation, film frame); the last epoch
    (warm) gives the speed and the per-epoch cost, and whatever the run took beyond that many warm
    epochs is the per-run cost (the first epoch's extra time is warm-up, paid once per run)."""
    if not epoch_seconds:
        raise ValueError("The measuring run trained no epoch; there is nothing to estimate from.")
    warm_epoch = float(epoch_seconds[-1])
    train_s = images_per_epoch / max(last_images_per_s, 1e-9)
    return JobCosts(images_per_s=float(last_images_per_s), epoch_s=max(warm_epoch - train_s, 0.0),
                    job_s=max(total_s - len(epoch_seconds) * warm_epoch, 0.0))


def cost_config(cfg: RunConfig) -> RunConfig:
    """What the costs of cfg's runs depend on (its data, model and training settings), without
    what they do not: its name, epochs, early stopping, left-out classes, and the numbers that change
    no step's work (learning rate, weight decay, seed, the VAE's beta). Equal cost configs are
    measured once: a grid over learning rates costs one measurement, not one per rate."""
    cost = copy.deepcopy(cfg)
    cost.name = ""
    cost.train.epochs, cost.train.patience = MEASURED_EPOCHS, 0
    defaults = type(cost.train)()
    cost.train.lr, cost.train.weight_decay, cost.train.seed = defaults.lr, defaults.weight_decay, defaults.seed
    cost.model.beta = type(cost.model)().beta
    cost.data.exclude_classes = []
    return cost


def measure_job_costs(cfg: RunConfig, dataset: Dataset, batches: int = MEASURED_BATCHES) -> JobCosts:
    """Train cfg's model for real on `batches` batches of the dataset's training images for
    MEASURED_EPOCHS epochs (full validation and test splits), save it into a scratch folder that is
    deleted after, and split the timings (split_costs). One untimed epoch of one batch first."""
    from core.checkpoints import save_run
    from core.train import train

    cfg = cost_config(cfg)
    index = dataset.splits["train"]
    count = min(len(index), max(1, batches) * int(cfg.train.batch_size))
    small = dataclasses.replace(dataset, splits={**dataset.splits, "train": index[:count]})
    # Untimed: what a process pays once, not once per run (lazy imports, the CPU kernels set up for
    # these shapes on first use); the first measurement of a fresh server took 5-15 s more with it.
    warm_up = copy.deepcopy(cfg)
    warm_up.train.epochs = 1
    train(warm_up, dataclasses.replace(dataset, splits={**dataset.splits, "train": index[:int(cfg.train.batch_size)]}))
    started = time.perf_counter()
    result = train(cfg, small)
    with tempfile.TemporaryDirectory(prefix="ae-lab-estimate-") as scratch:
        save_run(scratch, "estimate", cfg, result)
    total = time.perf_counter() - started
    if not result.history:
        raise ValueError(f"Measuring this machine's speed failed: {result.message}")
    return split_costs(total, [r.seconds for r in result.history], result.history[-1].images_per_s, count)


def variant_configs(exp: ExperimentConfig) -> list[RunConfig]:
    """Every run the experiment will train (a search: its base, once per trial)."""
    if exp.search is not None:
        return [copy.deepcopy(exp.base) for _ in range(variant_count(exp))]
    return [variant_config(exp, factors, i) for i, factors in enumerate(expand_grid(exp))]


def experiment_costs(exp: ExperimentConfig, measure: Callable[[RunConfig], JobCosts],
                     most: int = MOST_MEASURED) -> list[JobCosts]:
    """JobCosts of every variant, in order: `measure(cost_config)` for each distinct cost config,
    up to `most` of them; a variant past those takes the mean of the measured ones."""
    configs = [cost_config(cfg) for cfg in variant_configs(exp)]
    measured: dict[str, JobCosts] = {}
    for cfg in configs:
        key = cfg.to_json()
        if key not in measured and len(measured) < most:
            measured[key] = measure(cfg)
    if not measured:
        return []
    mean = mean_costs(list(measured.values()))
    return [measured.get(cfg.to_json(), mean) for cfg in configs]


def estimate_seconds(exp: ExperimentConfig, train_images: int, costs: Sequence[JobCosts]) -> float:
    """Seconds to train every variant one after the other (each with its own epochs; a search:
    every trial, none pruned), from experiment_costs(exp, ...)."""
    configs = variant_configs(exp)
    if len(costs) != len(configs):
        raise ValueError(f"{len(costs)} measured costs for {len(configs)} variants; measure every variant.")
    return sum(c.run_seconds(cfg.train.epochs, train_images) for c, cfg in zip(costs, configs))


def mean_costs(costs: Sequence[JobCosts]) -> JobCosts:
    """The average of several variants' costs (what a variant past the measured ones takes, and
    what the page reports)."""
    if not costs:
        raise ValueError("No costs to average.")
    return JobCosts(*(sum(getattr(c, f.name) for c in costs) / len(costs) for f in dataclasses.fields(JobCosts)))
