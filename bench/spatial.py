"""The spatial-code model against conv-small on photos (issue 18): test MSE with the app's default
settings (core.defaults.suggested_training's batch and epochs, the form's other defaults) on
  - a generated folder of 200 photo-like 64-px colour images (bench/photo_folder.py), and
  - a folder of 200 real photo crops, 64 px: random squares of the two photographs scikit-learn
    ships offline (sklearn.datasets.load_sample_images: a temple in China and a flower), one class each.
The goal: spatial-small's test MSE at most half of conv-small's. With OUT, the folders stay in
OUT/data, the trained runs are saved in OUT/checkpoints (for a look in the app:
AE_LAB_DATA_DIR=OUT/data AE_LAB_CHECKPOINTS=OUT/checkpoints streamlit run app.py) and a grid per
folder (originals, then each model's reconstructions of the same test images) in OUT.

    .venv/bin/python -m bench.spatial [OUT] [--large]   (--large: spatial-large too)
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.photo_folder import write_photo_folder
from core.analysis import image_grid, reconstruct
from core.checkpoints import save_run
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import load_dataset
from core.defaults import suggested_training
from core.train import train

MODELS = {"conv-small": dict(family="conv", preset="small"), "spatial-small": dict(family="spatial", preset="small")}
LARGE = {"spatial-large": dict(family="spatial", preset="large")}
SHOWN = 8  # test images in each reconstruction grid


def write_photo_crops(root, per_class: int = 100, size: int = 64, seed: int = 0) -> Path:
    """root/<photo>/<n>.png: random square crops (a quarter to a half of the shorter side) of the
    two photographs in scikit-learn, resized to `size`."""
    from sklearn.datasets import load_sample_images

    root, rng = Path(root), np.random.default_rng(seed)
    bunch = load_sample_images()
    for name, photo in zip(("temple", "flower"), bunch.images):
        (root / name).mkdir(parents=True, exist_ok=True)
        height, width = photo.shape[:2]
        for n in range(per_class):
            side = int(rng.integers(min(height, width) // 4, min(height, width) // 2))
            top, left = int(rng.integers(0, height - side)), int(rng.integers(0, width - side))
            crop = Image.fromarray(photo[top:top + side, left:left + side])
            crop.resize((size, size), Image.Resampling.BILINEAR).save(root / name / f"{n:04d}.png")
    return root


def run(dataset, data_cfg: DataConfig, model: dict, name: str, out: Path | None) -> tuple[dict, object]:
    defaults = suggested_training(len(dataset.splits["train"]))
    cfg = RunConfig(data=data_cfg, model=ModelConfig(**model), name=name,
                    train=TrainConfig(batch_size=defaults.batch_size, epochs=defaults.epochs, device="cpu"))
    start = time.perf_counter()
    result = train(cfg, dataset)
    seconds = round(time.perf_counter() - start, 1)
    if out is not None:
        save_run(out / "checkpoints", name, cfg, result)
    return ({"test_mse": result.test_metrics["mse"], "code_size": result.model.code_size,
             "parameters": sum(p.numel() for p in result.model.parameters()), "batch": defaults.batch_size,
             "epochs": defaults.epochs, "seconds": seconds}, result.model)


def compare(folder: str, models: dict, out: Path | None) -> dict:
    """Every model on OUT/data/<folder> (a served data root, so the app can load the saved runs)."""
    data_cfg = DataConfig(dataset="folder", folder_root="data", folder=folder, image_size=64, channels=3)
    dataset = load_dataset(data_cfg)
    report, rows = {"train_images": len(dataset.splits["train"]), "test_images": len(dataset.splits["test"])}, []
    test_x, test_y = dataset.split("test")
    for name, model in models.items():
        report[name], trained = run(dataset, data_cfg, model, f"{folder}-{name}", out)
        rows.append(reconstruct(trained, test_x[:SHOWN], test_y[:SHOWN])[1])
    report["spatial_small_over_conv_small"] = report["spatial-small"]["test_mse"] / report["conv-small"]["test_mse"]
    if out is not None:
        grid = image_grid([test_x[:SHOWN], *rows], nrow=SHOWN, scale=2)
        Image.fromarray(grid).save(out / f"spatial-vs-conv-{folder}.png")
    return report


def main(out: Path | None = None, large: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = (out or Path(tmp)) / "data"
        os.environ["AE_LAB_DATA_DIR"] = str(root)  # the folders are named inside it, as the app names them
        write_photo_folder(root / "generated", per_class=100, size=64)
        write_photo_crops(root / "crops", per_class=100, size=64)
        models = {**MODELS, **(LARGE if large else {})}
        return {"generated_photos": compare("generated", models, out), "photo_crops": compare("crops", models, out),
                "rows_of_the_grids": ["originals", *models], "torch_threads": torch.get_num_threads()}


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    print(json.dumps(main(Path(args[0]) if args else None, "--large" in sys.argv), indent=2))
