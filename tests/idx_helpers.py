"""Tiny on-disk datasets in the exact formats torchvision reads, so tests exercise the real
torchvision loaders offline: MNIST / FashionMNIST IDX files, a CIFAR-10 `cifar-10-batches-py`
folder, and an image folder of class sub-folders. The pictures are scikit-learn digits scaled
up, so a model can actually learn something from them.

    from idx_helpers import write_mnist, write_cifar10, trust_cifar_files, write_image_folder
"""
from __future__ import annotations

import colorsys
import pickle
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class Written(NamedTuple):
    """What was written, N×C×H×W uint8 images and int64 labels, to compare with what loads."""
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def digit_images(n: int, side: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n scikit-learn digits (8×8, 0..16) scaled up to side×side uint8, centred on a black square
    with an MNIST-like margin of side/7; returns (N×side×side images, int64 labels)."""
    bunch = load_digits()
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(bunch.target), size=n, replace=n > len(bunch.target))
    inner = side - 2 * (side // 7)
    out = np.zeros((n, side, side), np.uint8)
    offset = (side - inner) // 2
    for i, k in enumerate(picks):
        small = Image.fromarray(np.rint(bunch.images[k] * 255 / 16).astype(np.uint8), "L")
        out[i, offset:offset + inner, offset:offset + inner] = np.asarray(
            small.resize((inner, inner), Image.Resampling.BILINEAR))
    return out, bunch.target[picks].astype(np.int64)


def _write_idx_images(path: Path, images: np.ndarray) -> None:
    # IDX: magic 2051 (= unsigned byte data, 3 dims), then each dim as a big-endian uint32
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes())


def _write_idx_labels(path: Path, labels: np.ndarray) -> None:
    # IDX: magic 2049 (= unsigned byte data, 1 dim), then the count
    path.write_bytes(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def write_mnist(root, n_train: int = 50, n_test: int = 20, seed: int = 0, folder: str = "MNIST") -> Written:
    """Write root/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte, the uncompressed
    files torchvision.datasets.MNIST looks for. folder="FashionMNIST" serves FashionMNIST."""
    raw = Path(root) / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    images, labels = digit_images(n_train + n_test, 28, seed)
    for prefix, part in (("train", slice(0, n_train)), ("t10k", slice(n_train, None))):
        _write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images[part])
        _write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels[part])
    return Written(images[:n_train, None], labels[:n_train], images[n_train:, None], labels[n_train:])


def write_cifar10(root, n_train: int = 50, n_test: int = 20, seed: int = 0) -> Written:
    """Write root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta} as the pickled
    dicts torchvision.datasets.CIFAR10 reads: "data" is N×3072 uint8 (the R, G and B planes of
    each 32×32 image one after another), "labels" a list of ints. The digits are drawn in a
    random bright colour. torchvision checks these files' md5 sums: see trust_cifar_files."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    grey, labels = digit_images(n_train + n_test, 32, seed)
    rng = np.random.default_rng(seed + 1)
    colours = np.array([colorsys.hsv_to_rgb(h, 0.8, 1.0) for h in rng.uniform(0, 1, len(labels))])
    images = np.rint(grey[:, None].astype(np.float64) * colours[:, :, None, None]).astype(np.uint8)  # N×3×32×32

    def dump(name: str, part: slice, batch_label: str) -> None:
        entry = {"batch_label": batch_label, "labels": labels[part].tolist(),
                 "data": images[part].reshape(-1, 3 * 32 * 32),
                 "filenames": [f"image_{i}.png" for i in range(len(labels))[part]]}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)

    bounds = np.linspace(0, n_train, 6).astype(int)
    for b in range(5):
        dump(f"data_batch_{b + 1}", slice(bounds[b], bounds[b + 1]), f"training batch {b + 1} of 5")
    dump("test_batch", slice(n_train, None), "testing batch 1 of 1")
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR10_CLASSES, "num_cases_per_batch": n_train // 5, "num_vis": 3072}, f)
    return Written(images[:n_train], labels[:n_train], images[n_train:], labels[n_train:])


def trust_cifar_files(monkeypatch) -> None:
    """Let torchvision's CIFAR10 accept the files write_cifar10 wrote. CIFAR10 compares every
    batch file (in _check_integrity) AND batches.meta (in _load_meta) with the md5 sums of the
    real 60,000-image download, which tiny generated files can never match. Both go through
    torchvision.datasets.cifar.check_integrity, so relaxing that one name to "the file exists"
    keeps the rest of torchvision's real loading code (unpickling, reshaping, class names)."""
    import os

    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))


def write_image_folder(root, classes=("circles", "squares", "bars"), per_class: int = 6,
                       size: int = 24, seed: int = 0) -> Path:
    """root/<class>/<i>.png: small RGB PNGs, one simple white-ish figure per class on a dark
    background at a random spot, so classes are learnable. Returns root."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            cx, cy = rng.uniform(size * 0.3, size * 0.7, 2)
            r = size * rng.uniform(0.15, 0.25)
            if c % 3 == 0:
                mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
            elif c % 3 == 1:
                mask = (abs(xx - cx) <= r) & (abs(yy - cy) <= r)
            else:
                mask = (abs(xx - cx) <= r / 3) & (abs(yy - cy) <= r * 1.5)
            colour = np.array(colorsys.hsv_to_rgb(rng.uniform(0, 1), 0.5, 1.0)) * 255
            image = np.where(mask[..., None], colour, 20).astype(np.uint8)
            Image.fromarray(image, "RGB").save(root / name / f"{i}.png")
    return root
