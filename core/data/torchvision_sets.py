"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision: a folder that already holds them is used
as is; a download is tried only when allowed, and said plainly and fast when the network is not there."""
from __future__ import annotations

import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

from core.config import DataConfig
from core.data.base import OFFLINE_DATASETS, DataError, Dataset, Progress, one_line as _one_line, report as _report


# name -> the folder under data_root that holds its files (torchvision's layout)
TORCHVISION_FOLDERS = {"mnist": "MNIST/raw", "fashion-mnist": "FashionMNIST/raw", "cifar10": "cifar-10-batches-py"}


def _torchvision_classes():
    from torchvision import datasets

    # name -> (torchvision class, title for messages, folder under data_root that holds the files)
    return {"mnist": (datasets.MNIST, "MNIST", TORCHVISION_FOLDERS["mnist"]),
            "fashion-mnist": (datasets.FashionMNIST, "Fashion-MNIST", TORCHVISION_FOLDERS["fashion-mnist"]),
            "cifar10": (datasets.CIFAR10, "CIFAR-10", TORCHVISION_FOLDERS["cifar10"])}




def _download_address(tv_class) -> tuple[str, int]:
    """(host, port) of the first download URL. The port follows the URL: Fashion-MNIST is served
    over plain http by a host that does not answer on 443, so a fixed 443 would call it offline."""
    url = urlparse(tv_class.mirrors[0] if hasattr(tv_class, "mirrors") else tv_class.url)
    return url.hostname or "", url.port or (80 if url.scheme == "http" else 443)


def _network_reachable(host: str, port: int, timeout: float = 5.0) -> bool:
    """One quick TCP connection to the download host. It runs in a thread joined with a deadline
    because the name lookup inside create_connection ignores `timeout` and can hang offline."""
    answer: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                answer.append(True)
        except OSError:
            answer.append(False)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout + 3.0)
    return bool(answer and answer[0])


def _open_torchvision(tv_class, root: Path, download: bool):
    return tv_class(str(root), train=True, download=download), tv_class(str(root), train=False, download=download)


def load_torchvision(cfg: DataConfig, progress: Progress | None) -> tuple[Dataset, dict[str, torch.Tensor]]:
    """The dataset and its official splits (train, test) as indices."""
    tv_class, title, folder = _torchvision_classes()[cfg.dataset]
    root = Path(cfg.data_root).expanduser()
    where = root / folder
    _report(progress, 0, 2)
    try:  # a copy already on disk in torchvision's layout is used as is
        train, test = _open_torchvision(tv_class, root, download=False)
    except Exception:  # missing: RuntimeError; a damaged IDX file: AssertionError, ValueError, ...
        if not cfg.download:
            raise DataError(f"{title} was not found (or is damaged) in {where}; turn on download, put the "
                            f"files there, or use an offline dataset ({', '.join(OFFLINE_DATASETS)}).") from None
        if not _network_reachable(*_download_address(tv_class)):
            raise DataError(f"Could not download {title}: no network connection; put the files under {where} "
                            f"or use an offline dataset ({', '.join(OFFLINE_DATASETS)}).") from None
        try:
            train, test = _open_torchvision(tv_class, root, download=True)
        except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ... here
            raise DataError(f"Could not download {title} into {where} ({_one_line(exc)}); try again later or "
                            f"use an offline dataset ({', '.join(OFFLINE_DATASETS)}).") from None
    _report(progress, 1, 2)
    parts = []
    for which, part in (("training", train), ("test", test)):
        if len(part.data) != len(part.targets):  # torchvision reads the two IDX files separately
            raise DataError(f"The {title} {which} files in {where} disagree: {len(part.data):,} images but "
                            f"{len(part.targets):,} labels; replace them with a matching pair (or download again).")
        data = torch.as_tensor(np.asarray(part.data))
        # MNIST keeps N×H×W, CIFAR-10 N×H×W×C: both become N×C×H×W
        data = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)
        parts.append((data.to(torch.uint8).contiguous(), torch.as_tensor(part.targets, dtype=torch.int64)))
    _report(progress, 2, 2)
    (train_x, train_y), (test_x, test_y) = parts
    images, labels = torch.cat([train_x, test_x]), torch.cat([train_y, test_y])
    official = {"train": torch.arange(len(train_y)), "test": torch.arange(len(train_y), len(labels))}
    return Dataset(cfg.dataset, images, labels, list(train.classes), {}, source=str(where)), official

