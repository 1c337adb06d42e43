"""Does the default VAE learn? Before and after the KL part's floor (core.train.MIN_KL_VALUES), in one run.

For each dataset and model: a plain AE, the VAE trained with the old loss (MSE + β·KL/(C·H·W)) and
with today's (MSE + β·KL/max(C·H·W, 784): the same for 28×28 and larger images, 64/784 of the old KL
weight for 8×8 digits); β = 1 and the Train page's suggested batch size and epochs. Reported:
  spread   mean over pixels of the std across 64 decoded codes z ~ N(0, I) (one grey blob: ~0)
  kl_image KL(q(z|x) || N(0, I)) per test image, in nats (0: the codes carry nothing)
  test_mse the test reconstruction MSE (the AE's is the floor a VAE pays a little above)
  sample_nn the mean, over those 64 samples, of the MSE to the nearest test image: how data-like the
           samples are (lower is better; one blob or off-manifold smudges score high)

    .venv/bin/python -m bench.vae [--mnist ../shared/data/MNIST-10k] [--out bench/results-vae.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch

from bench.photo_folder import write_photo_folder
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import fill_model_shape, load_dataset
from core.defaults import suggested_training
from core.models import kl_divergence
from core.train import to_float, train

REPO = Path(__file__).resolve().parent.parent
MODELS = {"dense z2": dict(family="dense", hidden=[256, 128], latent=2),
          "conv-small z16": dict(family="conv", preset="small", latent=16)}


def prior_spread(model, samples: int = 64, seed: int = 0) -> float:
    z = torch.randn(samples, model.cfg.latent, generator=torch.Generator().manual_seed(seed))
    y = torch.zeros(samples, dtype=torch.long) if model.cfg.conditional else None
    with torch.no_grad():
        return float(model.eval().decode(z, y).std(dim=0).mean())


def sample_nearest_mse(model, dataset, samples: int = 64, seed: int = 0) -> float:
    z = torch.randn(samples, model.cfg.latent, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        drawn = model.eval().decode(z).flatten(1)
    test = to_float(dataset.split("test")[0]).flatten(1)
    return float((torch.cdist(drawn, test) ** 2 / test.shape[1]).min(dim=1).values.mean())


def kl_per_image(model, dataset) -> float:
    x, y = dataset.split("test")
    with torch.no_grad():
        out = model.eval()(to_float(x), y)
    return float(kl_divergence(out.mu, out.logvar))


def measure(dataset, data_cfg: DataConfig, model: dict, kind: str) -> dict:
    defaults = suggested_training(len(dataset.splits["train"]))
    cfg = RunConfig(data=data_cfg, model=ModelConfig(**model, vae=kind != "ae", beta=1.0),
                    train=TrainConfig(batch_size=defaults.batch_size, epochs=defaults.epochs, device="cpu"))
    fill_model_shape(cfg.model, dataset)
    started = time.perf_counter()
    if kind == "vae before":  # the old KL part: KL / (C·H·W) whatever the image size
        with mock.patch("core.models.base.MIN_KL_VALUES", 0):
            result = train(cfg, dataset)
    else:
        result = train(cfg, dataset)
    row = {"kind": kind, "epochs": defaults.epochs, "batch": defaults.batch_size,
           "test_mse": round(result.test_metrics["mse"], 4), "spread": round(prior_spread(result.model), 4),
           "sample_nn": round(sample_nearest_mse(result.model, dataset), 4),
           "kl_image": round(kl_per_image(result.model, dataset), 2) if kind != "ae" else None,
           "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def main(argv=None) -> dict:
    torch.set_num_threads(1)  # a shared 2-core machine: one thread each is faster than two fighting
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=REPO.parent / "shared" / "data" / "MNIST-10k")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results-vae.json")
    args = parser.parse_args(argv)
    scratch = tempfile.TemporaryDirectory()
    cases = [("digits", DataConfig(dataset="digits"), list(MODELS))]
    if (args.mnist / "MNIST" / "raw").is_dir():
        cases.append(("MNIST-10k", DataConfig(dataset="mnist", data_root=str(args.mnist)), list(MODELS)))
    cases.append(("shapes (1,000, 32 px colour)", DataConfig(dataset="shapes", shapes_count=1000), ["conv-small z16"]))
    folder = write_photo_folder(scratch.name, per_class=150, size=32)
    cases.append(("colour folder (300 photos, 32 px)",
                  DataConfig(dataset="folder", folder=str(folder), image_size=32, channels=3), ["conv-small z16"]))
    report = {"torch_threads": torch.get_num_threads(), "cases": []}
    for name, data_cfg, models in cases:
        dataset = load_dataset(data_cfg)
        for model in models:
            print(f"{name} · {model}", file=sys.stderr, flush=True)
            rows = [measure(dataset, data_cfg, MODELS[model], kind) for kind in ("ae", "vae before", "vae after")]
            report["cases"].append({"data": name, "model": model, "rows": rows})
    args.out.write_text(json.dumps(report, indent=2))
    print("| data | model | kind | test MSE | prior spread | sample→nearest test MSE | KL/image (nats) | epochs |")
    print("|---|---|---|---|---|---|---|---|")
    for case in report["cases"]:
        for r in case["rows"]:
            kl = "–" if r["kl_image"] is None else f"{r['kl_image']:.2f}"
            print(f"| {case['data']} | {case['model']} | {r['kind']} | {r['test_mse']:.4f} | {r['spread']:.3f} "
                  f"| {r['sample_nn']:.4f} | {kl} | {r['epochs']} |")
    scratch.cleanup()
    return report


if __name__ == "__main__":
    main()
