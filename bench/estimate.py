"""`python -m bench.estimate [--presets size-dropout,latent-sizes] [--dataset digits] [--epochs 3] [--out PATH]`:
the Experiments page's time estimate against each experiment's real wall time, in one process one
after the other. The estimate is core.experiments.estimate as the page uses it (a CostBook measuring
each setting that changes the work once, on random images of the data's shape, in a background
thread); the real run goes through core.experiments.ExperimentManager and core.jobs.JobRegistry with
one job at a time, as in the app on a CPU. Each experiment starts from the student's defaults fitted
to the data (core.experiments.presets.experiment_base), with --epochs if given. The figure is
real / estimate (1.0: exact; the target is between 0.5 and 2). Writes bench/estimate_results.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from core.config import DataConfig, RunConfig
from core.data import load_dataset
from core.experiments import PRESETS, ExperimentManager, preset_experiment, variant_count
from core.experiments.estimate import CostBook, SplitSizes, estimate_seconds, experiment_costs
from core.experiments.presets import experiment_base
from core.jobs import JobRegistry
from core.train import resolve_device

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "estimate_results.json"
DEFAULT_PRESETS = "size-dropout,latent-sizes,activations,denoising,ae-vs-vae,conditional,anomaly,optimisers"


def say(text: str) -> None:
    print(f"[bench.estimate {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def estimate_of(exp, dataset, book: CostBook) -> tuple[float, float]:
    """(estimate in seconds, seconds spent measuring) from the background book, as the page does."""
    sizes = SplitSizes(*(len(dataset.splits[s]) for s in ("train", "val", "test")))
    started = time.perf_counter()
    while True:
        costs = experiment_costs(exp, book.costs, dataset.shape, dataset.num_classes, sizes)
        if costs is not None:
            return estimate_seconds(exp, sizes, costs), time.perf_counter() - started
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.estimate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default=DEFAULT_PRESETS)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-root", default="")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=0, help="epochs per run (default: fitted to the data)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    data_cfg = DataConfig(dataset=args.dataset, data_root=args.data_root, limit=args.limit)
    dataset = load_dataset(data_cfg)
    base = experiment_base(RunConfig(data=data_cfg), len(dataset.splits["train"]))
    if args.epochs:
        base.train.epochs = args.epochs
    book = CostBook()
    rows = []
    for name in args.presets.split(","):
        if name not in PRESETS or PRESETS[name].search is not None:
            raise SystemExit(f"{name}: not a grid preset; choose from {', '.join(PRESETS)} (not search).")
        exp = preset_experiment(name, base, f"bench-{name}")
        load_before = os.getloadavg()[0]
        estimate, measuring = estimate_of(exp, dataset, book)
        with tempfile.TemporaryDirectory(prefix="ae-lab-bench-estimate-") as scratch:
            manager = ExperimentManager(JobRegistry(root=scratch, max_concurrent=1, load_data=lambda cfg: dataset),
                                        poll_seconds=0.2)
            started = time.perf_counter()
            record = manager.wait(manager.start(exp))
            real = time.perf_counter() - started
        if record["status"] != "finished":
            raise RuntimeError(f"{name} ended {record['status']}: {record['message']}")
        row = {"preset": name, "variants": variant_count(exp), "epochs": base.train.epochs,
               "batch_size": base.train.batch_size, "real_s": round(real, 2), "estimate_s": round(estimate, 2),
               "real_over_estimate": round(real / estimate, 3), "measuring_s": round(measuring, 2),
               "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2)}
        say(json.dumps(row))
        rows.append(row)
    results = {"dataset": args.dataset, "limit": args.limit, "train_images": len(dataset.splits["train"]),
               "device": str(resolve_device("auto")), "cpu_count": os.cpu_count(),
               "settings_measured": book.measured, "rows": rows,
               "worst_ratio": max((max(r["real_over_estimate"], 1 / r["real_over_estimate"]) for r in rows), default=None)}
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
