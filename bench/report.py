"""The figures, their targets, the printed table and bench/results.json.

Pure bookkeeping, no measuring: every measurement module hands its numbers to a Results object,
which knows which figures the issue asks for, what each target is, and how to print and save them.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class Target:
    op: str  # ">=" | "<" | "<="
    value: float

    def met(self, measured: float) -> bool:
        if self.op == ">=":
            return measured >= self.value
        if self.op == "<":
            return measured < self.value
        if self.op == "<=":
            return measured <= self.value
        raise ValueError(f"Unknown comparison '{self.op}'; use >=, < or <=.")

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass(frozen=True)
class Figure:
    key: str  # the results.json key
    label: str  # what the table calls it
    unit: str
    target: Target | None  # None: reported, no pass/fail (e.g. the app's memory)
    reference: str = ""  # what it is compared with, for the table's last column


# The order is the table's order; the keys are exactly the ones issue 5 asks results.json to hold.
FIGURES: tuple[Figure, ...] = (
    # On a CPU the model's own compute bounds this at about 1.2-1.3x: removing the homework's whole
    # data path saves ~21 of ~121 us per image (BENCHMARKS.md, "Reading these figures").
    Figure("train_speedup", "1. training speed, core / homework loop", "x", Target(">=", 1.2),
           "core img/s over DataLoader+ToTensor img/s, same model and optimiser (CPU ceiling ~1.2-1.3x)"),
    Figure("watch_slowdown", "2. slowdown while a reader polls twice a second", "fraction", Target("<", 0.05),
           "job img/s watched vs unwatched"),
    Figure("first_metric_s", "3. start() to first batch loss (digits)", "s", Target("<", 1.5), "median of tries"),
    Figure("tsne_s", "4. t-SNE of 10,000 codes (Latent page)", "s", Target("<", 15.0),
           "sklearn TSNE defaults: see tsne_baseline_s"),
    Figure("tsne_trustworthiness", "4. t-SNE trustworthiness (10 neighbours)", "", Target(">=", 0.9),
           "see tsne_baseline_trustworthiness"),
    Figure("pca_s", "4. PCA of 10,000 codes (Latent page)", "s", Target("<", 0.5), ""),
    Figure("noise_sweep_s", "5. noise sweep, 11 levels x 2,000 images", "s", Target("<", 1.0), ""),
    Figure("app_start_s", "6. streamlit run to the first page's title (median of 3)", "s", Target("<=", 3.0),
           "one-line st.title app: app_start_baseline_s (ratio app_start_ratio); script done: app_ready_s"),
    Figure("server_rss_mb", "6. server memory with one run loaded", "MiB", None, "RSS of the server process"),
    Figure("mnist_test_mse", "7. test MSE, conv AE z=16, 5 epochs (--quick: 2)", "", Target("<", 0.016),
           "homework: about 0.016 (z=10, 60k images, longer training)"),
    Figure("probe_accuracy", "7. frozen encoder + linear head, test accuracy", "", None,
           "homework: 0.967 to 0.989 (60k train images)"),
    Figure("device", "device", "", None, ""),
)
REQUIRED_KEYS: tuple[str, ...] = tuple(f.key for f in FIGURES)

# `python -m bench --classroom N` (issue 11): a class of N jobs at once; the targets are for an
# H200-class GPU (on a CPU only the eager figures exist and the ratios stay empty).
CLASSROOM_FIGURES: tuple[Figure, ...] = (
    Figure("graph_speedup_1job", "11. one job: CUDA-graph img/s / eager img/s", "x", Target(">=", 4.0),
           "graph_img_s_1job over eager_img_s_1job, epochs after the first"),
    Figure("classroom_speedup", "11. N jobs at once: graph total / eager total", "x", Target(">=", 15.0),
           "classroom_img_s_total over classroom_eager_img_s_total"),
    Figure("classroom_job_spread", "11. slowest job / fastest job (graphs)", "x", Target("<=", 2.0),
           "classroom_slowest_job_s over classroom_fastest_job_s"),
    Figure("snapshot_p99_ms", "11. registry.snapshot() p99 while N jobs train", "ms", Target("<", 5.0),
           "what each Train page's poll costs"),
    Figure("graph_val_loss_gap", "11. final val loss, graph vs eager, same seeds", "fraction", Target("<", 0.02),
           "mean relative gap over the N + 1 seeds; see graph_val_loss_gap_max, eager_repeat_val_loss_gap"),
)
CLASSROOM_KEYS: tuple[str, ...] = tuple(f.key for f in CLASSROOM_FIGURES) + (
    "classroom_jobs", "classroom_epochs", "classroom_dataset", "classroom_img_s_total", "classroom_eager_img_s_total",
    "classroom_slowest_job_s", "classroom_fastest_job_s", "classroom_wall_s", "classroom_eager_wall_s",
    "graph_img_s_1job", "eager_img_s_1job", "graph_val_loss_gap_max", "eager_repeat_val_loss_gap", "classroom_note",
    "classroom_steady_img_s_total", "classroom_eager_steady_img_s_total", "classroom_first_epoch_extra_s_max",
    "classroom_outside_epochs_s_max",
    "gpu",
)

# Extra keys: the raw figures behind the ratios and what the run was (top level, next to the
# required ones, so a reader of results.json sees how each ratio came about).
EXTRA_KEYS: tuple[str, ...] = (
    "core_images_per_s", "baseline_images_per_s", "baseline_loader_images_per_s", "baseline_data_fraction",
    "core_epoch_images_per_s", "baseline_epoch_images_per_s",
    "core_cpu_us_per_image_1thread", "baseline_cpu_us_per_image_1thread", "train_speedup_1thread_cpu",
    "watched_images_per_s", "unwatched_images_per_s",
    "first_metric_tries_s",
    "codes", "tsne_baseline_s", "tsne_baseline_trustworthiness", "tsne_baseline_points",
    "app_health_s", "app_start_tries_s", "app_ready_s", "app_start_baseline_s", "app_start_ratio", "probe_s", "quality_epochs", "quality_train_s",
    "dataset", "mode", "machine", "errors", "wall_s",
)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Results:
    """The figures of one bench run. A figure whose measurement failed stays None and its
    reason goes to errors, so one broken step never hides the others' numbers."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {key: None for key in (*REQUIRED_KEYS, *EXTRA_KEYS, *CLASSROOM_KEYS)}
        self.values["errors"] = {}

    def set(self, key: str, value: Any) -> None:
        if key not in self.values:
            raise KeyError(f"'{key}' is not a bench figure; add it to REQUIRED_KEYS or EXTRA_KEYS first.")
        self.values[key] = value

    def get(self, key: str) -> Any:
        return self.values[key]

    def fail(self, step: str, reason: str) -> None:
        self.values["errors"][step] = reason

    def verdict(self, figure: Figure) -> str:
        value = self.values[figure.key]
        if figure.target is None:
            return "-"
        if not _finite(value):
            return "n/a"
        return "yes" if figure.target.met(value) else "NO"

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(figure, value, target, met?, compared with) per figure, as text."""
        rows = []
        classroom = CLASSROOM_FIGURES if self.values.get("classroom_jobs") is not None else ()
        main = FIGURES if self.values.get("mode") != "classroom" else ()
        for figure in (*main, *classroom):
            value = self.values[figure.key]
            rows.append((figure.label, format_value(value, figure.unit), str(figure.target or "-"),
                         self.verdict(figure), figure.reference))
        return rows

    def table(self) -> str:
        return format_table(("figure", "value", "target", "met?", "compared with"), self.rows())

    def to_json(self) -> str:
        return json.dumps(self.values, indent=2, sort_keys=False, default=_json_default)

    def write(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        tmp.replace(path)  # a reader never sees half a file
        return path


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy / torch arrays and scalars
        return value.tolist()
    raise TypeError(f"Cannot write {type(value).__name__} to results.json.")


def format_value(value: Any, unit: str = "") -> str:
    if value is None:
        return "failed"
    if isinstance(value, str):
        return value
    if not _finite(value):
        return str(value)
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "fraction":
        return f"{value * 100:+.1f}%"
    if unit == "ms":
        return f"{value:.3g} ms"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    if unit == "s":
        return f"{value:.3g} s" if value < 10 else f"{value:.1f} s"
    return f"{value:.4g}"


def format_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [" | ".join(str(cell).ljust(w) for cell, w in zip(header, widths)).rstrip(),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:  # not Linux: platform's answer stands
        pass
    info = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "load_average_at_start": _load_average(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
