"""`python -m bench.experiments [--epochs 5] [--jobs 2] [--mnist-root DIR] [--out PATH]`: how long the
`latent-sizes` preset (5 runs: latent 2, 4, 8, 16, 32) takes on MNIST-10k, run one at a time and
with the registry running `--jobs` at once, both in the same process one after the other (the
concurrent run's time over the serial one is the figure; a change in the machine's load between
the two shows as noise, so the load average before each is recorded too).

Each run goes through core.experiments.ExperimentManager and core.jobs.JobRegistry exactly as in
the app; the data set is loaded once and shared by both. Writes bench/experiments_results.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from core.config import DataConfig, RunConfig, TrainConfig
from core.data import load_dataset
from core.experiments import ExperimentManager, preset_experiment
from core.jobs import JobRegistry
from core.train import resolve_device

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "experiments_results.json"
DEFAULT_MNIST = REPO.parent / "shared" / "data" / "MNIST-10k"


def say(text: str) -> None:
    print(f"[bench.experiments {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run_preset(root: Path, base: RunConfig, jobs: int, load) -> dict:
    """Run latent-sizes on `base` with `jobs` at once; its wall time and each variant's result."""
    registry = JobRegistry(root=root, max_concurrent=jobs, load_data=load)
    manager = ExperimentManager(registry, poll_seconds=0.2)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    name = manager.start(preset_experiment("latent-sizes", base, f"latent-sizes-{jobs}"))
    record = manager.wait(name)
    seconds = time.perf_counter() - started
    if record["status"] != "finished":
        raise RuntimeError(f"latent-sizes with {jobs} at once ended {record['status']}: {record['message']}")
    return {"seconds": round(seconds, 2), "load_average_before": round(load_before, 2),
            "test_mse": {str(v["factors"]["model.latent"]): v["test_mse"] for v in record["variants"]}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.experiments", description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (default 5)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once in the concurrent pass (default 2)")
    parser.add_argument("--limit", type=int, default=0, help="use at most this many images (default 0: all)")
    parser.add_argument("--device", default="auto", help="training device (default auto)")
    parser.add_argument("--mnist-root", type=Path, default=DEFAULT_MNIST)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    data_cfg = DataConfig(dataset="mnist", data_root=str(args.mnist_root), limit=args.limit)
    dataset = load_dataset(data_cfg)
    base = RunConfig(data=data_cfg, train=TrainConfig(epochs=args.epochs, device=args.device))
    say(f"latent-sizes on MNIST-10k ({len(dataset.splits['train'])} training images), {args.epochs} epochs per "
        f"run, torch {torch.__version__}, {os.cpu_count()} CPUs, CUDA: {torch.cuda.is_available()}")
    with tempfile.TemporaryDirectory(prefix="ae-lab-bench-exp-") as scratch:
        serial = run_preset(Path(scratch) / "serial", base, 1, lambda cfg: dataset)
        say(f"one at a time: {serial['seconds']:.1f} s")
        concurrent = run_preset(Path(scratch) / "concurrent", base, args.jobs, lambda cfg: dataset)
        say(f"{args.jobs} at once: {concurrent['seconds']:.1f} s")
    results = {
        "preset": "latent-sizes", "dataset": "MNIST-10k", "limit": args.limit,
        "train_images": len(dataset.splits["train"]), "epochs": args.epochs, "jobs": args.jobs,
        "device": str(resolve_device(args.device)),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "serial": serial, "concurrent": concurrent,
        "concurrent_over_serial": round(concurrent["seconds"] / serial["seconds"], 3),
    }
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
