"""Figures 1 and 7: training throughput through core against the homework's plain loop, and the
quality the default conv AE reaches (test MSE, frozen-encoder probe accuracy).

The homework loop is what the course's train.py does: torchvision's MNIST with ToTensor() (one PIL
image and one transform per item), a DataLoader (batch 128, shuffle), the same model, Adam 1e-3,
MSE, and the loss read every batch. core keeps the uint8 split in memory on the training device
and builds each batch by indexing it. Both run the same model, batch size and optimiser on the
same device; throughput counts only the training phase of each epoch (core's EpochRecord does the
same: validation and the film frame are outside it).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import Dataset, fill_model_shape, load_dataset
from core.models import build_model
from core.train import TrainResult, train

HOMEWORK_BATCH = 128
HOMEWORK_LR = 1e-3
QUICK_LIMIT = 2500  # images kept in --quick mode (train ~1,800)


@dataclass
class BenchData:
    name: str  # "mnist" or "digits"
    data_cfg: DataConfig
    core: Dataset  # what core trains on (train / val / test splits)
    homework: torch.utils.data.Dataset  # per-item PIL image + ToTensor, as the homework loads it
    note: str  # one line for the output: which data and why


class PilImages(torch.utils.data.Dataset):
    """What torchvision's MNIST does per item (uint8 -> PIL image -> transform), for the digits
    fallback, which torchvision does not ship."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index, 0].numpy(), mode="L")
        return self.transform(image), int(self.labels[index])


def mnist_available(root: Path) -> bool:
    raw = Path(root) / "MNIST" / "raw"
    return all((raw / f"{part}-ubyte").is_file() for part in
               ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1"))


def load_bench_data(mnist_root: Path, quick: bool) -> BenchData:
    limit = QUICK_LIMIT if quick else 0
    if mnist_available(mnist_root):
        cfg = DataConfig(dataset="mnist", data_root=str(mnist_root), limit=limit)
        core = load_dataset(cfg)
        homework = datasets.MNIST(str(mnist_root), train=True, transform=transforms.ToTensor())
        note = f"MNIST from {mnist_root} ({len(homework)} official train images; core trains on {len(core.splits['train'])})"
    else:
        cfg = DataConfig(dataset="digits", limit=limit)
        core = load_dataset(cfg)
        train_x, train_y = core.split("train")
        homework = PilImages(train_x, train_y, transforms.ToTensor())
        note = f"digits (no MNIST under {mnist_root}; figures are not comparable with MNIST ones)"
    if quick:  # the same number of training images on both sides
        homework = Subset(homework, range(min(len(homework), len(core.splits["train"]))))
    return BenchData(cfg.dataset, cfg, core, homework, note)


def model_config(dataset: Dataset) -> ModelConfig:
    """core.config's defaults (conv small, latent 16), shaped for the data."""
    return fill_model_shape(ModelConfig(), dataset)


def run_config(data: BenchData, epochs: int, device: torch.device, seed: int = 0) -> RunConfig:
    return RunConfig(data=data.data_cfg, model=model_config(data.core),
                     train=TrainConfig(epochs=epochs, device=str(device), seed=seed), name="bench-conv-z16")


def homework_step(model, optimizer, x: torch.Tensor) -> torch.Tensor:
    """One step of the homework loop on batch x: MSE of the reconstruction, zero_grad, backward,
    step. Returns the loss (reading it with .item() waits for the device, as the homework does)."""
    loss = F.mse_loss(model(x).recon, x)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def warm_up(model_cfg: ModelConfig, device: torch.device, batches: int = 5) -> None:
    """A few steps on random data so kernel selection and allocator growth, which both paths
    would otherwise pay in their first batches, are paid before either is timed."""
    model = build_model(model_cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=HOMEWORK_LR)
    x = torch.rand(HOMEWORK_BATCH, model_cfg.in_channels, model_cfg.image_size, model_cfg.image_size, device=device)
    for _ in range(batches):
        homework_step(model, optimizer, x)
    _sync(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def homework_epochs(data: BenchData, epochs: int, device: torch.device, seed: int = 0) -> list[float]:
    """The plain loop; returns the training images/s of each epoch."""
    torch.manual_seed(seed)
    model = build_model(model_config(data.core)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=HOMEWORK_LR)
    loader = DataLoader(data.homework, batch_size=HOMEWORK_BATCH, shuffle=True)
    rates = []
    for _ in range(epochs):
        model.train()
        started = time.perf_counter()
        seen = 0
        for images, _labels in loader:
            images = images.to(device)
            homework_step(model, optimizer, images).item()
            seen += images.shape[0]
        _sync(device)
        rates.append(seen / (time.perf_counter() - started))
    return rates


def loader_only_rate(data: BenchData) -> float:
    """Images/s of the homework's data path alone (DataLoader + ToTensor, no model)."""
    loader = DataLoader(data.homework, batch_size=HOMEWORK_BATCH, shuffle=True)
    started = time.perf_counter()
    seen = sum(images.shape[0] for images, _labels in loader)
    return seen / (time.perf_counter() - started)


def core_training(data: BenchData, epochs: int, device: torch.device, seed: int = 0) -> tuple[TrainResult, float]:
    """core.train.train on the loaded Dataset; returns the result and its wall time."""
    started = time.perf_counter()
    result = train(run_config(data, epochs, device, seed), data.core)
    seconds = time.perf_counter() - started
    if result.status != "finished":
        raise RuntimeError(f"core training ended as {result.status}: {result.message}")
    return result, seconds


class _BatchClock:
    """A TrainReporter that notes this thread's CPU time at every batch loss and stops the run
    after `batches` of them."""

    def __init__(self, batches: int, stop_event: threading.Event):
        self.batches, self.stop_event, self.stamps = batches, stop_event, []

    def on_start(self, total_epochs, batches_per_epoch, film_originals) -> None:
        pass

    def on_batch(self, epoch: int, batch: int, loss: float) -> None:
        self.stamps.append(time.thread_time())
        if len(self.stamps) >= self.batches:
            self.stop_event.set()

    def on_epoch(self, record, film_frame) -> None:
        pass


def _steady_cost(stamps: list[float], skip: int) -> float:
    """CPU seconds per batch from consecutive stamps, leaving out the first `skip` intervals."""
    intervals = [b - a for a, b in zip(stamps, stamps[1:])][skip:]
    return sum(intervals) / len(intervals)


def single_thread_cpu_cost(data: BenchData, batches: int = 40, skip: int = 5) -> tuple[float, float]:
    """CPU microseconds per training image, (core, homework loop), on one thread of the CPU.

    The wall-clock figure is only as quiet as the machine; this one counts the CPU time the
    training thread itself spends per batch (torch set to one thread, so all the work is on it),
    which other processes barely move. Both sides are stamped once per batch and the first
    `skip` intervals are left out."""
    # Both sides stay within one epoch (the smaller of the two), so no epoch boundary is timed.
    batches = min(batches, len(data.core.splits["train"]) // HOMEWORK_BATCH, len(data.homework) // HOMEWORK_BATCH)
    skip = min(skip, batches // 4)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        stop = threading.Event()
        clock = _BatchClock(batches, stop)
        cfg = run_config(data, 1, torch.device("cpu"))
        train(cfg, data.core, reporter=clock, stop_event=stop)
        core = _steady_cost(clock.stamps, skip)

        torch.manual_seed(0)
        model = build_model(model_config(data.core))
        optimizer = torch.optim.Adam(model.parameters(), lr=HOMEWORK_LR)
        stamps = []
        for images, _labels in DataLoader(data.homework, batch_size=HOMEWORK_BATCH, shuffle=True):
            homework_step(model, optimizer, images).item()
            stamps.append(time.thread_time())
            if len(stamps) >= batches:
                break
        homework = _steady_cost(stamps, skip)
    finally:
        torch.set_num_threads(threads)
    return core / HOMEWORK_BATCH * 1e6, homework / HOMEWORK_BATCH * 1e6


def probe_accuracy(model, dataset: Dataset, epochs: int) -> tuple[float, float]:
    """core.analysis.train_probe with a linear head on the frozen encoder: (accuracy, seconds)."""
    from core.analysis import ProbeConfig, train_probe  # landing while bench is written

    started = time.perf_counter()
    result = train_probe(model, dataset, ProbeConfig(epochs=epochs, hidden=0, fine_tune=False))
    return float(result.accuracy), time.perf_counter() - started
