"""`python -m bench [--quick] [--out PATH] [--json-only]`: every figure of issue 5 in one process,
each ratio against a baseline measured in the same run; a table on stdout, results.json on disk.
`python -m bench --ray [--quick]`: only the Ray section (bench/ray_jobs.py, results-ray.json).

A step that fails leaves its figures empty (null in results.json, "failed" in the table) and its
reason under "errors"; the other steps still run. The exit code is 1 when a step failed, 0
otherwise (a missed target is a finding, not a failure of the bench).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.report import Results, machine_info

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "results.json"
DEFAULT_RAY_OUT = REPO / "bench" / "results-ray.json"
DEFAULT_MNIST = REPO.parent / "shared" / "data" / "MNIST-10k"


@dataclass(frozen=True)
class Plan:
    """How much of each measurement to run; --quick shrinks every one of them."""
    quick: bool
    quality_epochs: int  # core's timed run, which also gives the model every later step uses
    baseline_epochs_before: int  # homework-loop epochs before and after core's run (drift hits both)
    baseline_epochs_after: int
    probe_epochs: int
    job_epochs: int
    watch_rounds: int  # each round: unwatched, watched, watched, unwatched
    first_metric_tries: int
    pca_tries: int
    sweep_tries: int
    cpu_cost_batches: int
    sweep_images: int = 2000


FULL = Plan(False, quality_epochs=5, baseline_epochs_before=2, baseline_epochs_after=3, probe_epochs=20,
            job_epochs=2, watch_rounds=2, first_metric_tries=5, pca_tries=5, sweep_tries=3, cpu_cost_batches=50)
QUICK = Plan(True, quality_epochs=2, baseline_epochs_before=1, baseline_epochs_after=1, probe_epochs=2,
             job_epochs=1, watch_rounds=1, first_metric_tries=3, pca_tries=3, sweep_tries=1, cpu_cost_batches=14)


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def step(results: Results, name: str, function, *args) -> bool:
    """Run one measurement; a failure is recorded under its name and the run goes on."""
    say(f"{name} ...")
    started = time.perf_counter()
    try:
        function(results, *args)
    except Exception as exc:  # the bench reports every step it can, whatever one of them hit
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        results.fail(name, f"{type(exc).__name__}: {reason}")
        say(f"{name} FAILED: {reason}")
        traceback.print_exc(file=sys.stderr)
        return False
    say(f"{name} done in {time.perf_counter() - started:.1f} s")
    return True


class Bench:
    """The state the steps share: the data, the device, the trained model and a scratch folder."""

    def __init__(self, plan: Plan, mnist_root: Path, scratch: Path):
        self.plan, self.mnist_root, self.scratch = plan, mnist_root, scratch
        self.device = None
        self.data = None
        self.result = None  # core's TrainResult of the quality run
        self.run_config = None

    # 1 and 7a
    def training(self, results: Results) -> None:
        from bench import training as tr
        from core.train import resolve_device

        self.device = resolve_device("auto")
        results.set("device", str(self.device))
        self.data = tr.load_bench_data(self.mnist_root, self.plan.quick)
        results.set("dataset", self.data.note)
        say(f"data: {self.data.note}; device: {self.device}")
        tr.warm_up(tr.model_config(self.data.core), self.device)
        baseline = tr.homework_epochs(self.data, self.plan.baseline_epochs_before, self.device)
        self.result, seconds = tr.core_training(self.data, self.plan.quality_epochs, self.device)
        self.run_config = tr.run_config(self.data, self.plan.quality_epochs, self.device)
        baseline += tr.homework_epochs(self.data, self.plan.baseline_epochs_after, self.device, seed=1)
        core = [record.images_per_s for record in self.result.history]
        loader = tr.loader_only_rate(self.data)
        core_rate, baseline_rate = statistics.median(core), statistics.median(baseline)
        results.set("core_epoch_images_per_s", [round(r, 1) for r in core])
        results.set("baseline_epoch_images_per_s", [round(r, 1) for r in baseline])
        results.set("core_images_per_s", core_rate)
        results.set("baseline_images_per_s", baseline_rate)
        results.set("baseline_loader_images_per_s", loader)
        # Share of the homework loop's time per image spent loading and transforming: the most
        # any in-memory data path can remove from it.
        results.set("baseline_data_fraction", baseline_rate / loader)
        results.set("train_speedup", core_rate / baseline_rate)
        # The same comparison in CPU time on one thread: what a busy machine barely disturbs.
        core_us, baseline_us = tr.single_thread_cpu_cost(self.data, batches=self.plan.cpu_cost_batches)
        results.set("core_cpu_us_per_image_1thread", core_us)
        results.set("baseline_cpu_us_per_image_1thread", baseline_us)
        results.set("train_speedup_1thread_cpu", baseline_us / core_us)
        results.set("quality_epochs", self.plan.quality_epochs)
        results.set("quality_train_s", seconds)
        results.set("mnist_test_mse", self.result.test_metrics.get("mse"))
        say(f"core {core_rate:.0f} img/s, homework loop {baseline_rate:.0f} img/s, its DataLoader alone "
            f"{loader:.0f} img/s; one thread: core {core_us:.0f} vs homework {baseline_us:.0f} CPU us per image; "
            f"test MSE {self.result.test_metrics.get('mse'):.4f}")

    # 7b
    def probe(self, results: Results) -> None:
        from bench.training import probe_accuracy

        self._need_model()
        accuracy, seconds = probe_accuracy(self.result.model, self.data.core, self.plan.probe_epochs)
        results.set("probe_accuracy", accuracy)
        results.set("probe_s", seconds)

    # 5
    def noise(self, results: Results) -> None:
        from bench.latent import noise_sweep_seconds
        from core.analysis import DEFAULT_NOISE_LEVELS

        self._need_model()
        test_images, _ = self.data.core.split("test")
        images = test_images[: self.plan.sweep_images]
        seconds, sweep = noise_sweep_seconds(self.result.model, images, self.plan.sweep_tries)
        if len(sweep) != len(DEFAULT_NOISE_LEVELS):
            raise RuntimeError(f"noise_sweep returned {len(sweep)} levels instead of {len(DEFAULT_NOISE_LEVELS)}.")
        results.set("noise_sweep_s", seconds)
        say(f"noise sweep over {len(images)} images: {seconds:.3f} s")

    # 4
    def latent(self, results: Results) -> None:
        from bench import latent as lt
        from core.analysis import encode

        self._need_model()
        codes = encode(self.result.model, self.data.core.images)
        results.set("codes", f"{codes.shape[0]} x {codes.shape[1]}")
        results.set("pca_s", lt.pca_seconds(codes, self.plan.pca_tries))
        embedding, seconds = lt.page_projection(codes, "tsne")
        results.set("tsne_s", seconds)
        results.set("tsne_trustworthiness", lt.quality(codes, embedding))
        say(f"page t-SNE of {len(codes)} codes: {seconds:.1f} s, trustworthiness "
            f"{results.get('tsne_trustworthiness'):.3f}; sklearn's default TSNE next")
        baseline, baseline_seconds = lt.sklearn_default_tsne(codes)
        results.set("tsne_baseline_s", baseline_seconds)
        results.set("tsne_baseline_trustworthiness", lt.quality(codes, baseline))
        results.set("tsne_baseline_points", len(codes))

    # 3
    def first_metric(self, results: Results) -> None:
        from bench.jobs_cost import first_metric_seconds
        from core.config import DataConfig, RunConfig, TrainConfig

        # What a student starts first: the built-in digits, the default model and settings.
        cfg = RunConfig(data=DataConfig(dataset="digits"), train=TrainConfig(epochs=1), name="bench-first-metric")
        tries = first_metric_seconds(self.scratch / "jobs-first-metric", cfg, self.plan.first_metric_tries)
        results.set("first_metric_tries_s", [round(t, 3) for t in tries])
        results.set("first_metric_s", statistics.median(tries))

    # 2
    def watching(self, results: Results) -> None:
        from bench.jobs_cost import watch_slowdown
        import copy

        self._need_model()
        cfg = copy.deepcopy(self.run_config)
        cfg.train.epochs = self.plan.job_epochs
        cfg.name = "bench-watch"
        slowdown, unwatched, watched = watch_slowdown(self.scratch / "jobs-watch", cfg, self.plan.watch_rounds)
        results.set("watch_slowdown", slowdown)
        results.set("unwatched_images_per_s", [round(r, 1) for r in unwatched])
        results.set("watched_images_per_s", [round(r, 1) for r in watched])

    # 6
    def app(self, results: Results) -> None:
        from bench.app_start import measure_app_start, measure_first_page
        from core.checkpoints import save_run

        self._need_model()
        root = self.scratch / "app-checkpoints"
        save_run(root, "bench-conv-z16", self.run_config, self.result)
        log = self.scratch / "streamlit.log"
        # The run's data folder allowed as the README tells a teacher to (AE_LAB_DATA_DIRS): the run
        # page loads its test images from it (the built-in digits need no folder).
        data_dirs = [Path(self.run_config.data.data_root)] if self.data.name != "digits" else []
        try:
            start = measure_app_start(REPO, root, log, data_dirs, run_name="bench-conv-z16")
        except Exception as exc:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
            raise RuntimeError(f"{exc} | server log: {' / '.join(tail)}") from exc
        results.set("app_health_s", start.health_s)
        results.set("server_rss_mb", start.rss_mb)
        # The figure: launch -> the first page's title, median of 3, against a one-line app in the same run.
        first = measure_first_page(REPO, root, self.scratch / "first-page")
        results.set("app_start_s", first.median_s)
        results.set("app_start_tries_s", [round(t, 2) for t in first.title_s])
        results.set("app_ready_s", statistics.median(first.ready_s))
        results.set("app_start_baseline_s", first.baseline_s)
        results.set("app_start_ratio", first.median_s / first.baseline_s)

    def classroom(self, results: Results, jobs: int, epochs: int) -> None:
        from bench.classroom import measure

        measure(results, self.mnist_root, self.scratch / "classroom", jobs=jobs, epochs=epochs, say=say)

    def _need_model(self) -> None:
        if self.result is None:
            raise RuntimeError("Skipped: the training step, which makes the model this step uses, failed.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a short smoke run (fewer images, epochs and tries); its figures are not the reported ones")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"where to write the results (default {DEFAULT_OUT}; with --ray {DEFAULT_RAY_OUT})")
    parser.add_argument("--json-only", action="store_true", help="print the results JSON instead of the table")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads for the measurements in this process (default: torch's choice)")
    parser.add_argument("--classroom", type=int, nargs="?", const=30, default=None, metavar="N",
                        help="only the classroom figures: N jobs (default 30) at once, CUDA graphs vs eager "
                             "(the full bench includes them, with N=30, on a CUDA GPU)")
    parser.add_argument("--classroom-epochs", type=int, default=5, help="epochs per classroom job (default 5)")
    parser.add_argument("--mnist-root", type=Path, default=DEFAULT_MNIST,
                        help="a folder in torchvision's layout holding MNIST/raw (falls back to digits when absent)")
    parser.add_argument("--ray", action="store_true",
                        help="only the Ray section (bench/ray_jobs.py): job start latency and 8 concurrent jobs on "
                             "Ray vs in this process")
    parser.add_argument("--ray-address", default="local",
                        help="with --ray: the cluster ('local' starts an embedded one; 'auto' or host:port joins one)")
    parser.add_argument("--ray-cpus-per-job", type=float, default=None,
                        help="with --ray: CPUs each Ray job asks for (default: this machine's cores / 8)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.ray:
        from bench.ray_jobs import main as ray_main

        return ray_main(args.quick, args.mnist_root, args.out or DEFAULT_RAY_OUT, args.ray_address,
                        args.ray_cpus_per_job, args.json_only)
    args.out = args.out or DEFAULT_OUT
    plan = QUICK if args.quick else FULL
    started = time.perf_counter()
    results = Results()
    results.set("mode", "quick" if plan.quick else "full")
    results.set("machine", machine_info())
    say(f"{results.get('mode')} run; torch {torch.__version__}, {torch.get_num_threads()} threads")
    load, cores = results.get("machine")["load_average_at_start"], results.get("machine")["cpu_count"]
    if load and cores and load[0] > cores / 2:
        say(f"the machine is busy (load {load[0]} on {cores} cores): wall-clock figures will be inflated and "
            "noisy; train_speedup_1thread_cpu is the figure a busy machine disturbs least")
    with tempfile.TemporaryDirectory(prefix="ae-lab-bench-") as scratch:
        bench = Bench(plan, args.mnist_root, Path(scratch))
        if args.classroom is not None:
            results.set("mode", "classroom")
            step(results, "classroom", bench.classroom, args.classroom, args.classroom_epochs)
            return _finish(results, args, started)
        # Training first: it makes the model the later steps use. The app last: its server and
        # browser would otherwise compete with the timed steps.
        step(results, "training", bench.training)
        step(results, "probe", bench.probe)
        step(results, "noise sweep", bench.noise)
        step(results, "latent projection", bench.latent)
        step(results, "first metric", bench.first_metric)
        step(results, "watching", bench.watching)
        step(results, "app start", bench.app)
        if torch.cuda.is_available():  # the classroom figures are about a GPU; a CPU has its own --classroom
            step(results, "classroom", bench.classroom, 30, 5)
    return _finish(results, args, started)


def _finish(results: Results, args: argparse.Namespace, started: float) -> int:
    results.set("wall_s", time.perf_counter() - started)
    path = results.write(args.out)
    if args.json_only:
        print(results.to_json())
    else:
        print(results.table())
        print(f"\ndata: {results.get('dataset')}; codes projected: {results.get('codes')}; "
              f"device: {results.get('device')}; mode: {results.get('mode')}; load at start: "
              f"{results.get('machine')['load_average_at_start']}; wall time {results.get('wall_s'):.0f} s")
        print(f"results: {path}")
        for name, reason in results.get("errors").items():
            print(f"FAILED {name}: {reason}")
    return 1 if results.get("errors") else 0
