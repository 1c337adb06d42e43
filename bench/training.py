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


def warm_up(model_cfg: ModelConfig, device: torch.device, batches: int = 5) -> None:
    """A few steps on random data so kernel selection and allocator growth, which both paths
    would otherwise pay in their first batches, are paid before either is timed."""
    model = build_model(model_cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=HOMEWORK_LR)
    x = torch.rand(HOMEWORK_BATCH, model_cfg.in_channels, model_cfg.image_size, model_cfg.image_size, device=device)
    for _ in range(batches):
        loss = F.mse_loss(model(x).recon, x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
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
        seen, running_loss = 0, 0.0
        for images, _labels in loader:
            images = images.to(device)
            loss = F.mse_loss(model(images).recon, images)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
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


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def probe_accuracy(model, dataset: Dataset, epochs: int) -> tuple[float, float]:
    """core.analysis.train_probe with a linear head on the frozen encoder: (accuracy, seconds)."""
    from core.analysis import ProbeConfig, train_probe  # landing while bench is written

    started = time.perf_counter()
    result = train_probe(model, dataset, ProbeConfig(epochs=epochs, hidden=0, fine_tune=False))
    return float(result.accuracy), time.perf_counter() - started
