"""Where a training batch's time goes, in core's batch path and in the homework loop:
`python -m bench.profile_training [--threads N] [--batches N] [--ops]`.

Per batch of 128 (same model, Adam 1e-3, MSE): getting the batch (homework: DataLoader +
ToTensor per item; core: indexing the in-memory uint8 split as core/train.py does), forward +
loss, backward, optimiser step. Wall and this thread's CPU time are both shown; with --threads 1
all the work runs on this thread, so its CPU time is what other processes on a busy machine
disturb least. --ops adds torch.profiler's table of the model's own operators by input shape.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from bench import training as tr
from bench.run import DEFAULT_MNIST
from core.models import build_model

PHASES = ("batch", "forward+loss", "backward", "step")


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.thread_time()


def profile_loop(batches_source, model_cfg, batches: int, skip: int) -> dict[str, tuple[float, float]]:
    """Mean (wall, CPU) microseconds per image of each phase, leaving out the first `skip` batches."""
    torch.manual_seed(0)
    model = build_model(model_cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=tr.HOMEWORK_LR)
    totals = {phase: [0.0, 0.0] for phase in PHASES}
    images_seen = 0
    source = iter(batches_source)
    for number in range(batches + skip):
        marks = [_clock()]
        x = next(source)
        marks.append(_clock())
        loss = F.mse_loss(model(x).recon, x)
        loss.item()
        marks.append(_clock())
        optimizer.zero_grad()
        loss.backward()
        marks.append(_clock())
        optimizer.step()
        marks.append(_clock())
        if number < skip:
            continue
        images_seen += x.shape[0]
        for phase, start, end in zip(PHASES, marks, marks[1:]):
            totals[phase][0] += end[0] - start[0]
            totals[phase][1] += end[1] - start[1]
    return {phase: (wall / images_seen * 1e6, cpu / images_seen * 1e6) for phase, (wall, cpu) in totals.items()}


def homework_batches(data: tr.BenchData):
    while True:
        for images, _labels in DataLoader(data.homework, batch_size=tr.HOMEWORK_BATCH, shuffle=True):
            yield images


def core_batches(data: tr.BenchData):
    train_x, _ = data.core.split("train")
    while True:
        for index in torch.split(torch.randperm(len(train_x)), tr.HOMEWORK_BATCH):
            yield train_x[index].float().div_(255)


def print_breakdown(name: str, phases: dict[str, tuple[float, float]]) -> None:
    wall_total = sum(wall for wall, _ in phases.values())
    cpu_total = sum(cpu for _, cpu in phases.values())
    print(f"\n{name}: {1e6 / wall_total:.0f} img/s wall, {1e6 / cpu_total:.0f} img per CPU-second of this thread")
    print(f"  {'phase':14s} {'wall us/img':>12s} {'CPU us/img':>11s} {'share':>6s}")
    for phase, (wall, cpu) in phases.items():
        print(f"  {phase:14s} {wall:12.1f} {cpu:11.1f} {wall / wall_total:6.0%}")


def print_ops(model_cfg, steps: int) -> None:
    from torch.profiler import ProfilerActivity, profile

    model = build_model(model_cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=tr.HOMEWORK_LR)
    x = torch.rand(tr.HOMEWORK_BATCH, model_cfg.in_channels, model_cfg.image_size, model_cfg.image_size)
    for _ in range(3):
        tr.homework_step(model, optimizer, x)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            tr.homework_step(model, optimizer, x)
    print(prof.key_averages(group_by_input_shape=True).table(
        sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=28, max_shapes_column_width=70))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--ops", action="store_true", help="also print torch.profiler's operator table")
    parser.add_argument("--mnist-root", type=Path, default=DEFAULT_MNIST)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = tr.load_bench_data(args.mnist_root, quick=False)
    model_cfg = tr.model_config(data.core)
    print(f"{data.note}; torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    tr.warm_up(model_cfg, torch.device("cpu"))
    print_breakdown("homework loop (DataLoader + ToTensor)", profile_loop(homework_batches(data), model_cfg, args.batches, 5))
    print_breakdown("core batch path (indexing the uint8 split)", profile_loop(core_batches(data), model_cfg, args.batches, 5))
    if args.ops:
        print_ops(model_cfg, steps=10)


if __name__ == "__main__":
    main()
