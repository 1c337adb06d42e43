"""`python -m bench.estimate [--preset size-dropout] [--dataset digits] [--epochs 5] [--out PATH]`: the
Experiments page's time estimate against the experiment's real wall time, in the same process one
after the other: the estimate is core.experiments.estimate (a short real run of each distinct
variant setting), the real run goes through core.experiments.ExperimentManager and
core.jobs.JobRegistry with one job at a time, as in the app on a CPU. The figure is real / estimate
(1.0: exact). For comparison it also reports what the old estimate (a tight loop of 6 optimiser
steps of the base model, times 1.15) said. Writes bench/estimate_results.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from core.config import DataConfig, RunConfig, TrainConfig
from core.data import fill_model_shape, load_dataset
from core.experiments import ExperimentManager, preset_experiment, variant_count
from core.experiments.estimate import estimate_seconds, experiment_costs, mean_costs, measure_job_costs
from core.jobs import JobRegistry
from core.train import resolve_device

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "estimate_results.json"
OLD_OVERHEAD, OLD_STEPS = 1.15, 6


def say(text: str) -> None:
    print(f"[bench.estimate {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def old_estimate(exp, dataset, train_images: int) -> tuple[float, float]:
    """(seconds, images/s) as the page said before: 6 warm optimiser steps of the base model."""
    from core.models import build_model
    from core.train import make_optimizer, to_float

    cfg = exp.base
    device = resolve_device(cfg.train.device)
    model = build_model(fill_model_shape(copy.deepcopy(cfg.model), dataset)).to(device).train()
    optimizer = make_optimizer(cfg.train.optimizer, model.parameters(), cfg.train.lr)
    index = dataset.splits["train"][: cfg.train.batch_size]
    x, y = to_float(dataset.images[index].to(device)), dataset.labels[index].to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(x, y).recon, x).backward()
        optimizer.step()

    step()
    started = time.perf_counter()
    for _ in range(OLD_STEPS):
        step()
    speed = OLD_STEPS * len(index) / (time.perf_counter() - started)
    return OLD_OVERHEAD * variant_count(exp) * cfg.train.epochs * train_images / speed, speed


def in_thread(work):
    """work() in a new thread, where the app measures (a Streamlit script thread) and trains (the
    registry's job threads): on the loaded 2-core machine PyTorch trained ~10x slower in the
    process's main thread than in any other (its OpenMP team there waits on a descheduled peer)."""
    result = {}
    thread = threading.Thread(target=lambda: result.update(value=work()))
    thread.start()
    thread.join()
    return result["value"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.estimate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="size-dropout")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-root", default="")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    data_cfg = DataConfig(dataset=args.dataset, data_root=args.data_root, limit=args.limit)
    dataset = load_dataset(data_cfg)
    base = RunConfig(data=data_cfg, train=TrainConfig(epochs=args.epochs, device="auto"))
    exp = preset_experiment(args.preset, base, f"bench-{args.preset}")
    train_images = len(dataset.splits["train"])
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    costs = in_thread(lambda: experiment_costs(exp, lambda cfg: measure_job_costs(cfg, dataset)))
    measuring_s = time.perf_counter() - started
    estimate = estimate_seconds(exp, train_images, costs)
    old, old_speed = in_thread(lambda: old_estimate(exp, dataset, train_images))
    say(f"estimate {estimate:.1f} s (measured in {measuring_s:.1f} s), old estimate {old:.1f} s")
    with tempfile.TemporaryDirectory(prefix="ae-lab-bench-estimate-") as scratch:
        manager = ExperimentManager(JobRegistry(root=scratch, max_concurrent=1, load_data=lambda cfg: dataset),
                                    poll_seconds=0.2)
        started = time.perf_counter()
        record = manager.wait(manager.start(exp))
        real = time.perf_counter() - started
    if record["status"] != "finished":
        raise RuntimeError(f"{args.preset} ended {record['status']}: {record['message']}")
    say(f"real {real:.1f} s")
    mean = mean_costs(costs)
    results = {
        "preset": args.preset, "dataset": args.dataset, "limit": args.limit, "epochs": args.epochs,
        "variants": variant_count(exp), "train_images": train_images, "device": str(resolve_device("auto")),
        "cpu_count": os.cpu_count(), "load_average_before": round(load_before, 2),
        "real_s": round(real, 2), "estimate_s": round(estimate, 2), "measuring_s": round(measuring_s, 2),
        "real_over_estimate": round(real / estimate, 3),
        "old_estimate_s": round(old, 2), "old_images_per_s": round(old_speed),
        "real_over_old_estimate": round(real / old, 3),
        "mean_costs": {"images_per_s": round(mean.images_per_s), "epoch_s": round(mean.epoch_s, 4),
                       "job_s": round(mean.job_s, 4)},
        "variant_costs": [{"images_per_s": round(c.images_per_s), "epoch_s": round(c.epoch_s, 4),
                           "job_s": round(c.job_s, 4)} for c in costs],
        "variant_seconds": {v["label"]: v.get("seconds") for v in record["variants"]},
    }
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
