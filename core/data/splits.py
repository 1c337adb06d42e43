"""Seeded train/validation/test splits of a Dataset: cut from one shuffle, or with an official
test set (torchvision) or a folder's own split kept; an image limit; classes left out."""
from __future__ import annotations

import math

import numpy as np
import torch

from core.config import DataConfig
from core.data.base import DataError, Dataset
from core.validation import ConfigError, check_section


def check_fractions(cfg: DataConfig) -> None:
    """The split fractions and the image limit, by core.validation's rules (one sentence each)."""
    try:
        check_section(cfg, "data")
    except ConfigError as exc:
        raise DataError(str(exc)) from None


def _part(n: int, fraction: float) -> int:
    """round(n * fraction), but at least one item when the fraction asks for any."""
    return 0 if fraction <= 0 or n == 0 else max(1, int(math.floor(n * fraction + 0.5)))


def apply_splits(ds: Dataset, given: dict[str, torch.Tensor] | None, cfg: DataConfig) -> Dataset:
    """Seeded split. `given`: None (test and val are cut from one shuffle), or the splits the source
    has (torchvision's official test set, a folder's own train/val/test sub-folders) as indices into
    ds: those are kept, and a missing test or validation split is cut from the given training part.
    `limit` keeps the first items of each shuffled pool, proportionally, and the dataset then holds
    only the images kept."""
    n = len(ds.labels)
    limit = cfg.limit if 0 < cfg.limit < n else n
    g = torch.Generator().manual_seed(cfg.seed)
    if given is None:
        order = torch.randperm(n, generator=g)[:limit]
        n_test = _part(limit, cfg.test_fraction)
        n_val = _part(limit, cfg.val_fraction)
        test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    else:
        names = [name for name in ("train", "val", "test") if name in given]
        pools = {name: given[name][torch.randperm(len(given[name]), generator=g)] for name in names}
        kept = 0
        for name in names[:-1]:  # each pool keeps its share of the limit; the last one the rest
            share = int(math.floor(len(pools[name]) * limit / n + 0.5))
            pools[name], kept = pools[name][:share], kept + share
        pools[names[-1]] = pools[names[-1]][:limit - kept]
        train = pools["train"]
        if "test" in pools:
            test = pools["test"]
        else:
            n_test = _part(len(train), cfg.test_fraction)
            test, train = train[:n_test], train[n_test:]
        if "val" in pools:
            val = pools["val"]
        else:
            n_val = _part(len(train), cfg.val_fraction)
            val, train = train[:n_val], train[n_val:]
    if len(train) == 0 or (cfg.val_fraction > 0 and len(val) == 0) or len(test) == 0:
        raise DataError(f"{limit} images are too few to make train, validation and test splits; "
                        "raise the image limit or use a larger dataset.")
    if limit < n:  # keep only the images in use, so counts, previews and memory match the limit
        used = torch.cat([train, val, test])
        ds.images, ds.labels = ds.images[used].contiguous(), ds.labels[used]
        ds.factors = {k: v[used.numpy()] for k, v in ds.factors.items()}
        ends = np.cumsum([0, len(train), len(val), len(test)]).tolist()
        train, val, test = (torch.arange(a, b) for a, b in zip(ends[:-1], ends[1:]))
    ds.splits = {"train": train, "val": val, "test": test}
    if cfg.exclude_classes:
        exclude_classes(ds, cfg.exclude_classes)
    return ds


def exclude_classes(ds: Dataset, classes: list[int]) -> None:
    """Drop `classes` from the train and validation splits; the test split keeps every class."""
    unknown = sorted({int(c) for c in classes if not 0 <= int(c) < ds.num_classes})
    if unknown:
        raise DataError(f"Class {unknown[0]} cannot be left out: {ds.name} has classes 0 to "
                        f"{ds.num_classes - 1}; pick one of those.")
    left_out = torch.tensor(sorted({int(c) for c in classes}), dtype=torch.int64)
    for split in ("train", "val"):
        index = ds.splits[split]
        ds.splits[split] = index[~torch.isin(ds.labels[index], left_out)]
    if len(ds.splits["train"]) == 0:
        raise DataError("Leaving out those classes leaves no training images; leave out fewer classes.")


