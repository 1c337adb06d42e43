"""How long an experiment will take here, from a short real run of each variant's settings, measured
in the background once per setting that changes the work.

What a run costs depends on its model (family, sizes, VAE, conditional), the image shape, the batch
size, the optimiser, the loss and the device; not on which dataset gave the images, how many there
are (the image limit), the learning rate, the seed or the epochs. So a setting is measured once
(`cost_config` is its key), on random images of the data's shape: a few batches for MEASURED_EPOCHS
epochs with VALIDATION_IMAGES validation and test images, saved to a scratch folder, and its
evaluation speed timed on its own; that run splits into a training speed, an evaluation speed and
two fixed costs (JobCosts), which `run_seconds` scales to a variant's epochs and split sizes. A new
image limit or dataset of the same shape costs no new measurement (each new `?limit=` measured for
15-22 s before).

`CostBook` keeps the measured costs for the whole process (every student's page reads them) and
measures the settings asked for one at a time on its own thread, so no page waits for it (the
first visit to Experiments took 127 s while it measured on the page's thread).
"""
from __future__ import annotations

import atexit
import copy
import dataclasses
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from core.config import DataConfig, RunConfig, TrainConfig
from core.experiments.config import ExperimentConfig, variant_configs

log = logging.getLogger(__name__)

# The measuring run: a few batches per epoch, two epochs (the second one, warm, gives the speed),
# and at least MEASURED_IMAGES a warm epoch (6 batches of 32 were a 0.1 s window: noise on a busy machine).
MEASURED_BATCHES = 6
MEASURED_IMAGES = 768
MEASURED_EPOCHS = 2
VALIDATION_IMAGES = 256  # validation and test images of the measuring run (and of the timed evaluation)
# Distinct variant settings measured for one estimate; the others are taken as the mean of those.
MOST_MEASURED = 4
# Settings waiting to be measured at most (a student typing many values queues no more than this).
MOST_WAITING = 16


@dataclass(frozen=True)
class JobCosts:
    """What one run of a setting costs on this machine."""
    images_per_s: float  # training images per second in the training loop, once warm
    eval_images_per_s: float  # validation and test images per second (forward passes only)
    epoch_s: float  # per epoch besides training and validation: the film frame, the best weights kept
    job_s: float  # per run: model build, first (slow) steps, saving

    def run_seconds(self, epochs: int, train_images: int, val_images: int = 0, test_images: int = 0) -> float:
        """Seconds for a run of `epochs` epochs over these split sizes."""
        train_s = train_images / max(self.images_per_s, 1e-9)
        val_s, test_s = (n / max(self.eval_images_per_s, 1e-9) for n in (val_images, test_images))
        return self.job_s + test_s + epochs * (self.epoch_s + val_s + train_s)


@dataclass(frozen=True)
class SplitSizes:
    """The images of an experiment's data: what its runs train, validate and test on."""
    train: int
    val: int
    test: int


def split_costs(total_s: float, epoch_seconds: Sequence[float], last_images_per_s: float, images_per_epoch: int,
                eval_images_per_s: float, val_images: int, test_images: int) -> JobCosts:
    """The measuring run's timings as JobCosts. total_s: the whole run with its saving;
    epoch_seconds: the wall time of each epoch (training, validation, film frame); the last epoch
    (warm) gives the training speed, and what it took beyond its training and validation images is
    the per-epoch cost; whatever the run took beyond that many warm epochs and its test images is the
    per-run cost (the first epoch's extra time is warm-up, paid once per run)."""
    if not epoch_seconds:
        raise ValueError("The measuring run trained no epoch; there is nothing to estimate from.")
    warm_epoch = float(epoch_seconds[-1])
    train_s = images_per_epoch / max(last_images_per_s, 1e-9)
    val_s, test_s = (n / max(eval_images_per_s, 1e-9) for n in (val_images, test_images))
    return JobCosts(images_per_s=float(last_images_per_s), eval_images_per_s=float(eval_images_per_s),
                    epoch_s=max(warm_epoch - train_s - val_s, 0.0),
                    job_s=max(total_s - len(epoch_seconds) * warm_epoch - test_s, 0.0))


def cost_config(cfg: RunConfig, shape: tuple[int, int, int], num_classes: int, train_images: int) -> RunConfig:
    """What the costs of cfg's runs depend on, and nothing else (equal cost configs are measured once):
    its model with the data's shape (channels, side, classes), and the training settings that change
    a step's work (the batch size, no larger than the training set; optimiser, loss, denoising,
    device). Not its data's name, size or split, its epochs, early stopping, learning rate, weight
    decay, seed or the VAE's beta: a grid over learning rates or a new image limit is not measured
    again."""
    cost = RunConfig(data=DataConfig(dataset="", image_size=shape[1], channels=shape[0]),
                     model=copy.deepcopy(cfg.model))
    cost.model.in_channels, cost.model.image_size = shape[0], shape[1]
    cost.model.num_classes, cost.model.beta = num_classes, type(cost.model)().beta
    tc = cfg.train
    cost.train = TrainConfig(optimizer=tc.optimizer, batch_size=max(1, min(tc.batch_size, max(train_images, 1))),
                             epochs=MEASURED_EPOCHS, loss=tc.loss, noise_factor=0.3 if tc.noise_factor > 0 else 0.0,
                             device=tc.device, film_images=tc.film_images, cuda_graphs=tc.cuda_graphs)
    return cost


def _random_dataset(cost: RunConfig, train_images: int):
    """Random images of the cost config's shape: the work of a step does not depend on what the
    pixels show. Train first, then validation, then test."""
    from core.data import Dataset

    m = cost.model
    count = train_images + 2 * VALIDATION_IMAGES
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, m.in_channels, m.image_size, m.image_size), dtype=torch.uint8,
                           generator=generator)
    labels = torch.randint(0, max(m.num_classes, 1), (count,), generator=generator)
    ends = [0, train_images, train_images + VALIDATION_IMAGES, count]
    splits = {name: torch.arange(a, b) for name, a, b in zip(("train", "val", "test"), ends[:-1], ends[1:])}
    return Dataset("estimate", images, labels, [str(c) for c in range(max(m.num_classes, 1))], splits)


def _eval_images_per_s(model, images: torch.Tensor, labels: torch.Tensor, device) -> float:
    from core.train import evaluate

    evaluate(model, images[:32], labels[:32], device)  # untimed: the first pass sets kernels up
    fastest = float("inf")
    for _ in range(2):  # the faster of two: one pass is short enough for a neighbour's burst to double it
        started = time.perf_counter()
        evaluate(model, images, labels, device)
        fastest = min(fastest, time.perf_counter() - started)
    return len(images) / max(fastest, 1e-9)


def measure_job_costs(cost: RunConfig, batches: int = MEASURED_BATCHES) -> JobCosts:
    """Train the cost config's model for real on `batches` batches (at least MEASURED_IMAGES images)
    of random images for MEASURED_EPOCHS epochs (VALIDATION_IMAGES validation and test images), save it into a scratch
    folder that is deleted after, time its evaluation on its own, and split the timings
    (split_costs). One untimed epoch of one batch first."""
    from core.checkpoints import save_run
    from core.train import resolve_device, train

    batch = int(cost.train.batch_size)
    batches = max(1, batches, -(-MEASURED_IMAGES // batch))
    dataset = _random_dataset(cost, batches * batch)
    # Untimed: what a process pays once, not once per run (lazy imports, the CPU kernels set up for
    # these shapes on first use); the first measurement of a fresh server took 5-15 s more with it.
    warm_up = copy.deepcopy(cost)
    warm_up.train.epochs = 1
    train(warm_up, dataclasses.replace(dataset, splits={**dataset.splits, "train": dataset.splits["train"][:batch]}))
    started = time.perf_counter()
    result = train(cost, dataset)
    with tempfile.TemporaryDirectory(prefix="ae-lab-estimate-") as scratch:
        save_run(scratch, "estimate", cost, result)
    total = time.perf_counter() - started
    if not result.history:
        raise ValueError(f"Measuring this machine's speed failed: {result.message}")
    images, labels = dataset.split("val")
    eval_speed = _eval_images_per_s(result.model, images, labels, resolve_device(cost.train.device))
    return split_costs(total, [r.seconds for r in result.history], result.history[-1].images_per_s,
                       len(dataset.splits["train"]), eval_speed, VALIDATION_IMAGES, VALIDATION_IMAGES)


def experiment_cost_configs(exp: ExperimentConfig, shape: tuple[int, int, int], num_classes: int,
                            sizes: SplitSizes) -> list[RunConfig]:
    """The cost config of every variant, in order."""
    return [cost_config(cfg, shape, num_classes, sizes.train) for cfg in variant_configs(exp)]


def experiment_costs(exp: ExperimentConfig, measure: Callable[[RunConfig], JobCosts | None],
                     shape: tuple[int, int, int], num_classes: int, sizes: SplitSizes,
                     most: int = MOST_MEASURED) -> list[JobCosts] | None:
    """JobCosts of every variant, in order: `measure(cost_config)` for each distinct cost config,
    up to `most` of them; a variant past those takes the mean of the measured ones. None while any
    of those is not known yet (`measure` returned None: still being measured)."""
    configs = [cfg.to_json() for cfg in experiment_cost_configs(exp, shape, num_classes, sizes)]
    measured: dict[str, JobCosts | None] = {}
    for key in configs:
        if key not in measured and len(measured) < most:
            measured[key] = measure(RunConfig.from_json(key))
    if not measured or any(c is None for c in measured.values()):
        return None
    mean = mean_costs(list(measured.values()))
    return [measured.get(key) or mean for key in configs]


def estimate_seconds(exp: ExperimentConfig, sizes: SplitSizes, costs: Sequence[JobCosts]) -> float:
    """Seconds to train every variant one after the other (each with its own epochs; a search:
    every trial, none pruned), from experiment_costs(exp, ...)."""
    configs = variant_configs(exp)
    if len(costs) != len(configs):
        raise ValueError(f"{len(costs)} measured costs for {len(configs)} variants; measure every variant.")
    return sum(c.run_seconds(cfg.train.epochs, sizes.train, sizes.val, sizes.test) for c, cfg in zip(costs, configs))


def mean_costs(costs: Sequence[JobCosts]) -> JobCosts:
    """The average of several variants' costs (what a variant past the measured ones takes, and
    what the page reports)."""
    if not costs:
        raise ValueError("No costs to average.")
    return JobCosts(*(sum(getattr(c, f.name) for c in costs) / len(costs) for f in dataclasses.fields(JobCosts)))


class CostBook:
    """Measured JobCosts by cost config, for the whole process; `costs(cfg)` answers at once (the
    costs, or None while they are measured) and asks for what is missing, which one daemon thread
    measures one setting at a time. A setting whose measurement failed keeps its one-sentence reason
    (`problem`) and is not measured again."""

    def __init__(self, measure: Callable[[RunConfig], JobCosts] | None = None):
        self._measure = measure or (lambda cost: measure_job_costs(cost))  # looked up when called
        self._lock = threading.Lock()
        self._known: dict[str, JobCosts] = {}
        self._problems: dict[str, str] = {}
        self._waiting: dict[str, None] = {}  # keys asked for, in order (a dict: ordered, no repeats)
        self._wake = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closing = False
        self.measured = 0  # measuring runs made (tests, logs)
        # A daemon thread still inside PyTorch when the interpreter ends aborts the process ("terminate
        # called without an active exception", exit 134): at exit, the measurement under way finishes first.
        atexit.register(self.close)

    def close(self, timeout: float = 60.0) -> None:
        """Measure nothing more; wait (at most `timeout` s) for the measurement under way."""
        with self._lock:
            self._closing = True
            self._waiting.clear()
            thread = self._thread
        self._wake.put(True)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def costs(self, cost: RunConfig) -> JobCosts | None:
        key = cost.to_json()
        with self._lock:
            if key in self._known:
                return self._known[key]
            if (not self._closing and key not in self._problems and key not in self._waiting
                    and len(self._waiting) < MOST_WAITING):
                self._waiting[key] = None
                self._start_thread()
                self._wake.put(True)
        return None

    def problem(self, cost: RunConfig) -> str | None:
        """Why measuring this setting failed (one sentence), or None."""
        with self._lock:
            return self._problems.get(cost.to_json())

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def _start_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="ae-lab-estimate", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                if self._closing:
                    return
                key = next(iter(self._waiting), None)
            if key is None:
                try:
                    self._wake.get(timeout=30)
                except queue.Empty:
                    return  # idle: a later request starts a new thread
                continue
            started = time.perf_counter()
            try:
                costs, problem = self._measure(RunConfig.from_json(key)), None
            except Exception as exc:  # any failure is said on the page, never a dead thread
                costs, problem = None, " ".join(str(exc).split()) or type(exc).__name__
                log.warning("measuring a setting's speed failed: %s", problem, exc_info=not isinstance(exc, ValueError))
            with self._lock:
                self._waiting.pop(key, None)
                self.measured += 1
                if costs is not None:
                    self._known[key] = costs
                else:
                    self._problems[key] = problem
            log.info("measured a setting's speed in %.1f s", time.perf_counter() - started)
