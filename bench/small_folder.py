"""Quality of the data-fitted defaults on a small colour folder (the "few hundred photos" lesson):
conv-small trained with core.defaults.suggested_training's batch size and epochs on a generated
folder of 300 64-px photos of two classes, against the mean-image baseline (predicting the
training set's mean image for every test image), against the old fixed defaults (batch 128,
10 epochs, output bias -2), and `python -m core.cli train` with its defaults (it fits the same
batch size and epochs; before, it trained batch 128 for 10 epochs: old_cli_defaults).

    .venv/bin/python -m bench.small_folder
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch

from bench.photo_folder import write_photo_folder
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import load_dataset
from core.defaults import suggested_training
from core.train import evaluate, to_float, train


def mean_image_mse(dataset) -> float:
    train_x, _ = dataset.split("train")
    test_x, _ = dataset.split("test")
    mean = to_float(train_x).mean(dim=0, keepdim=True)
    return float(((to_float(test_x) - mean) ** 2).mean())


def run(dataset, data_cfg: DataConfig, batch: int, epochs: int, fitted_bias: bool = True) -> dict:
    cfg = RunConfig(data=data_cfg,
                    model=ModelConfig(family="conv", preset="small", latent=16),
                    train=TrainConfig(batch_size=batch, epochs=epochs, device="cpu", seed=0))
    start = time.perf_counter()
    if fitted_bias:
        result = train(cfg, dataset)
    else:  # the old start: a fixed -2 whatever the data
        with mock.patch("core.train.setup.fit_output_bias", lambda model, means: None):
            result = train(cfg, dataset)
    test_x, test_y = dataset.split("test")
    metrics = evaluate(result.model, test_x, test_y, torch.device("cpu"))
    return {"batch": batch, "epochs": epochs, "fitted_bias": fitted_bias, "test_mse": metrics["mse"],
            "seconds": round(time.perf_counter() - start, 1)}


def cli_defaults(folder, out) -> dict:
    """`python -m core.cli train` on the folder with nothing but the data and the device given: the
    batch size and epochs it fits must be the page's, and so must the result."""
    import io

    from core.checkpoints import load_run
    from core.cli import main as cli

    printed = io.StringIO()
    start = time.perf_counter()
    code = cli(["train", "--dataset", "folder", "--folder", str(folder), "--image-size", "64", "--channels", "3",
                "--model", "conv-small", "--device", "cpu", "--out", str(out), "--name", "cli-defaults"],
               out=printed, err=io.StringIO())
    if code != 0:
        raise RuntimeError(f"the CLI exited with code {code}")
    summary = json.loads(printed.getvalue().strip().splitlines()[-1])
    train_cfg = load_run(out, "cli-defaults").config.train
    return {"batch": train_cfg.batch_size, "epochs": train_cfg.epochs, "test_mse": summary["test_mse"],
            "seconds": round(time.perf_counter() - start, 1)}


def main(per_class: int = 150) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_photo_folder(tmp, per_class=per_class, size=64)
        data_cfg = DataConfig(dataset="folder", folder=str(folder), image_size=64, channels=3)
        dataset = load_dataset(data_cfg)
        train_count = len(dataset.splits["train"])
        defaults = suggested_training(train_count)
        report = {
            "train_images": train_count, "test_images": len(dataset.splits["test"]),
            "mean_image_mse": mean_image_mse(dataset),
            "defaults": run(dataset, data_cfg, defaults.batch_size, defaults.epochs),
            "old_defaults": run(dataset, data_cfg, 128, 10, fitted_bias=False),
            # the CLI before it fitted its defaults: batch 128, 10 epochs (with the fitted bias)
            "old_cli_defaults": run(dataset, data_cfg, 128, 10),
            "cli_defaults": cli_defaults(folder, Path(tmp) / "runs"),
            "reason": defaults.reason,
        }
    report["ratio_to_mean_image"] = report["defaults"]["test_mse"] / report["mean_image_mse"]
    return report


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 150), indent=2))
