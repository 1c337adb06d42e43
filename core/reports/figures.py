"""A step's figures, the same on the Lessons page, in a report (HTML, Markdown) and in a lesson's
notebook: Altair charts from core.charts and image grids, computed from the step's saved runs.

    figures = step_figures(StepRuns(root, rows, load), ["runs", "reconstructions"], record)

A Figure is a chart, or a grid of images (rows of N×C×H×W batches), or only a sentence (a view
that has nothing to show yet says why). Each view's builder is bounded: at most LATENT_POINTS codes,
SWEEP_IMAGES images in a sweep, one row of SHOWN images per run, so a report of five steps stays
within seconds (BENCHMARKS.md).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from core import analysis
from core.charts.palette import colors_for

SHOWN = 8  # test images per row of a reconstruction or noise grid
SAMPLES = 16
LATENT_POINTS = 600  # codes in a latent scatter (t-SNE of more would keep a report waiting)
SMALL_TEST_SET = 300  # below this, a latent scatter adds training images
SWEEP_IMAGES = 400
SWEEP_LEVELS = tuple(round(0.1 * i, 1) for i in range(11))
NOISY_SHOWN = 0.5
MANIFOLD_STEPS = 9
PROJECTION_TITLES = {"raw": "first two coordinates", "pca": "PCA", "tsne": "t-SNE"}


# A figure's chart: the page fits the whole chart (title, axes and a legend below) into its height, so
# 300 px left about 50 px of plot under a five-run legend; the figure's own title is above the chart,
# so the chart draws none (it said the same thing twice).
FIGURE_CHART = {"height": 440, "title": ""}


@dataclass
class Figure:
    key: str  # unique within a report, usable in a file name
    title: str
    caption: str = ""
    chart: Any = None  # an Altair chart
    images: Any = None  # N×C×H×W (uint8 or float), or a list of such batches laid out one after another
    nrow: int = SHOWN
    side: int = 0  # one image's side in pixels (the page and the report enlarge small ones)
    plane: dict | None = None  # a 2-D latent the page lets a student click: {"run": name}

    @property
    def kind(self) -> str:
        return "chart" if self.chart is not None else "images" if self.images is not None else "note"


class StepRuns:
    """The saved runs of one step (rows from core.lessons.runner.variant_rows), each loaded once,
    with their data (through `load`, e.g. the app's shared dataset store) and a colour per run."""

    def __init__(self, root, rows: list[dict], load: Callable, record: dict | None = None):
        self.root, self.rows, self.load, self.record = root, rows, load, record
        self.colors = dict(zip([r["label"] for r in rows], colors_for(len(rows))))
        self._runs: dict[str, Any] = {}
        self._data: dict[str, Any] = {}

    def run(self, name: str):
        if name not in self._runs:
            from core.checkpoints import load_run

            self._runs[name] = load_run(self.root, name)
        return self._runs[name]

    def data(self, run):
        key = json.dumps(run.config.data.__dict__, sort_keys=True, default=str)
        if key not in self._data:
            self._data[key] = self.load(run.config.data)
        return self._data[key]

    def test(self, run, count: int):
        """(images, labels) of the run's first `count` test images."""
        images, labels = self.data(run).split("test")
        return images[:count], labels[:count]


def step_figures(runs: StepRuns, views: list[str], prefix: str = "") -> list[Figure]:
    """Every figure of the views, in order (a step with no saved run yet: none)."""
    if not runs.rows:
        return []
    figures = []
    for view in views:
        for n, figure in enumerate(BUILDERS[view](runs), start=1):
            figure.key = f"{prefix}{view}-{n}"
            figures.append(figure)
    return figures


# ---------------------------------------------------------------- runs compared, the answer

def runs_figures(runs: StepRuns) -> list[Figure]:
    from core.charts.training import compare_chart, compare_frame, final_metric_chart
    from core.checkpoints import CheckpointError, load_history

    histories, best = {}, {}
    for row in runs.rows:
        try:
            history = load_history(runs.root, row["run"])
        except CheckpointError:
            continue
        histories[row["label"]] = history
        finite = [h for h in history if h.get("val_loss") is not None and np.isfinite(h["val_loss"])]
        best[row["label"]] = min(finite, key=lambda h: h["val_loss"])["epoch"] if finite else 0
    figures = [Figure("", "Loss per epoch of every run",
                      "Solid: training loss, dashed: validation loss; a diamond marks the epoch whose weights "
                      "were kept (the lowest validation loss).",
                      chart=compare_chart(compare_frame(histories, "loss"), "loss", runs.colors, best_epochs=best)
                      .properties(**FIGURE_CHART))]
    scored = [r for r in runs.rows if r.get("test_mse") is not None]
    if scored:
        frame = pd.DataFrame({"run": [r["label"] for r in scored], "test_mse": [r["test_mse"] for r in scored]})
        figures.append(Figure("", "Test MSE of every run", "Lower is better: the mean squared error of the "
                              "reconstructions of the test images, which no run trained on.",
                              chart=final_metric_chart(frame, "test_mse", "Test MSE", runs.colors)))
    return figures


def answer_figures(runs: StepRuns) -> list[Figure]:
    from core.charts.experiments import factor_frame, factor_value_colors, gap_chart, gap_frame, metric_vs_factor_chart
    from core.experiments import ExperimentConfig

    record = runs.record or {"variants": [], "config": None}
    if not record.get("config"):
        return []
    exp = ExperimentConfig.from_dict(record["config"])
    if exp.search is not None:
        return _search_figures(runs, exp)
    frame, factors = factor_frame(record, ["test_mse", "val_loss", "train_loss", "seconds"])
    figures = []
    value_colors = factor_value_colors(frame, factors)
    for factor in factors:
        others = [f for f in factors if f != factor]
        figures.append(Figure("", f"Test MSE against {factor}", "Each point or bar is one run; lower is better.",
                              chart=metric_vs_factor_chart(frame, factor, "test_mse", "Test MSE", others,
                                                           value_colors.get(others[0]) if len(others) == 1 else None)
                              .properties(**FIGURE_CHART)))
    gaps = gap_frame([v for v in record["variants"] if v.get("run")])
    if not gaps.empty:
        figures.append(Figure("", "Train and validation loss of every run",
                              "A validation loss far above the training loss means the model learned its "
                              "training images by heart (over-fitting).",
                              chart=gap_chart(gaps, list(dict.fromkeys(gaps["variant"])))))
    return figures


def _search_figures(runs: StepRuns, exp) -> list[Figure]:
    from core.charts.experiments import history_chart
    from core.experiments import OBJECTIVE_LABELS, factor_label, format_value
    from core.experiments.search import load_study, trial_rows

    study = load_study(runs.root, runs.record["name"])
    if study is None:
        return [Figure("", "The search has no trials yet")]
    rows = trial_rows(study)
    table = pd.DataFrame([{"trial": r["trial"], "state": r["state"], "value": r["value"],
                           "settings": ", ".join(f"{factor_label(p)} {format_value(v)}" for p, v in r["params"].items())}
                          for r in rows])
    for i, r in enumerate(rows):  # a pruned trial is placed by its last validation loss
        if r["value"] is None and r["intermediate"]:
            table.loc[i, "value"] = r["intermediate"][max(r["intermediate"])]
    objective = OBJECTIVE_LABELS[exp.search.objective]
    return [Figure("", "The search, trial by trial", f"Each point is one trial's {objective}; the line is the best "
                   "so far. Pruned trials were stopped early because they trailed the others; each is placed "
                   "at the last loss it reached.",
                   chart=history_chart(table, objective, exp.search.resolved_direction() == "maximize")
                   .properties(**FIGURE_CHART))]


# ---------------------------------------------------------------- images

def _same_data(runs: StepRuns) -> bool:
    shapes = {tuple(runs.data(runs.run(r["run"])).shape) for r in runs.rows}
    return len(shapes) == 1


def reconstruction_figures(runs: StepRuns) -> list[Figure]:
    if not _same_data(runs):
        return [_per_run_reconstructions(runs, row) for row in runs.rows]
    first = runs.run(runs.rows[0]["run"])
    images, labels = runs.test(first, SHOWN)
    rows = [images] + [analysis.reconstruct(runs.run(r["run"]).model, images, labels)[1] for r in runs.rows]
    order = ", ".join(r["label"] for r in runs.rows)
    return [Figure("", "The same test images reconstructed by every run",
                   f"Rows, top to bottom: {len(images)} test images, then their reconstructions by {order}.",
                   images=rows, nrow=len(images), side=images.shape[-1])]


def _per_run_reconstructions(runs: StepRuns, row: dict) -> Figure:
    run = runs.run(row["run"])
    images, labels = runs.test(run, SHOWN)
    return Figure("", f"{row['label']}: test images and their reconstructions", "Top: test images; bottom: "
                  "reconstructions.", images=[images, analysis.reconstruct(run.model, images, labels)[1]],
                  nrow=len(images), side=images.shape[-1])


def noise_figures(runs: StepRuns) -> list[Figure]:
    from core.charts.experiments import noise_sweep_chart

    points, rows = [], []
    first = runs.run(runs.rows[0]["run"])
    shown, shown_labels = runs.test(first, SHOWN)
    noisy = analysis.reconstruct(first.model, shown, shown_labels, noise=NOISY_SHOWN, seed=0)[0]
    rows.append(noisy)
    for row in runs.rows:
        run = runs.run(row["run"])
        images, labels = runs.test(run, SWEEP_IMAGES)
        points += [{"variant": row["label"], **p}
                   for p in analysis.noise_sweep(run.model, images, labels, levels=list(SWEEP_LEVELS), seed=0)]
        if _same_data(runs):
            rows.append(analysis.reconstruct(run.model, shown, shown_labels, noise=NOISY_SHOWN, seed=0)[1])
    figures = [Figure("", "Reconstruction error as the input noise rises",
                      f"Mean squared error against the clean images of the first {SWEEP_IMAGES} test images, with "
                      "Gaussian noise of each factor added to the input (the same noise for every run).",
                      chart=noise_sweep_chart(pd.DataFrame(points), runs.colors).properties(**FIGURE_CHART))]
    if len(rows) > 1:
        order = ", ".join(r["label"] for r in runs.rows)
        figures.append(Figure("", f"Noisy inputs (noise {NOISY_SHOWN}) and what each run makes of them",
                              f"Rows, top to bottom: the noisy test images, then the reconstructions by {order}.",
                              images=rows, nrow=len(shown), side=shown.shape[-1]))
    return figures


def _points(runs: StepRuns, run) -> tuple[Any, Any, str]:
    """The images a latent scatter encodes: test images (and training images when the test split is small)."""
    images, labels = runs.test(run, LATENT_POINTS)
    what = f"{len(images)} test images"
    if len(images) < SMALL_TEST_SET:
        more, more_labels = runs.data(run).split("train")
        extra = LATENT_POINTS - len(images)
        images = np.concatenate([images.numpy(), more[:extra].numpy()])
        labels = np.concatenate([labels.numpy(), more_labels[:extra].numpy()])
        what += f" and {min(extra, len(more))} training images (the test split is small)"
    import torch

    return torch.as_tensor(images), torch.as_tensor(labels), what


def latent_figures(method: str) -> Callable[[StepRuns], list[Figure]]:
    def build(runs: StepRuns) -> list[Figure]:
        from core.charts.inspect import latent_scatter, plane_grid

        figures = []
        for row in runs.rows:
            run = runs.run(row["run"])
            images, labels, what = _points(runs, run)
            codes = analysis.encode(run.model, images, labels)
            xy = analysis.project(codes, method, seed=0, n_jobs=1)  # threads only contend on a shared CPU
            names = runs.data(run).class_names
            table = pd.DataFrame({"index": np.arange(len(codes)), "x": xy[:, 0], "y": xy[:, 1],
                                  "class": [names[int(c)] for c in labels],
                                  "error": analysis.per_image_errors(run.model, images, labels)})
            axes = {"raw": ("z[0]", "z[1]"), "pca": ("PC 1", "PC 2"), "tsne": ("t-SNE 1", "t-SNE 2")}[method]
            latent = run.config.model.latent
            note = "" if method != "raw" or latent == 2 else f" (the code has {latent} numbers; these are the first two)"
            plane = method == "raw" and latent == 2  # the page lets a student click the plane to decode a spot
            chart = latent_scatter(table, "class", "Class", False, *axes, class_order=names,
                                   grid=plane_grid(table["x"], table["y"]) if plane else None)
            figures.append(Figure("", f"{row['label']}: the codes, {PROJECTION_TITLES[method]}",
                                  f"{what}, each a point coloured by its class{note}.",
                                  chart=chart.properties(height=380),
                                  plane={"run": row["run"], "xy": xy.tolist()} if plane else None))
            if method == "raw" and latent == 2:
                figures.append(_manifold(row, run, codes))
        return figures
    return build


def _manifold(row: dict, run, codes: np.ndarray) -> Figure:
    center = codes.mean(axis=0)
    span = float(np.abs(codes - center).max(axis=0).max())
    grid = analysis.manifold_grid(run.model, center, 0, 1, span, MANIFOLD_STEPS)
    return Figure("", f"{row['label']}: what the plane decodes to",
                  f"A {MANIFOLD_STEPS}×{MANIFOLD_STEPS} grid of points over the codes' range, each decoded: z[0] "
                  "left to right, z[1] bottom to top.", images=grid, nrow=MANIFOLD_STEPS, side=grid.shape[-1])


def generate_figures(runs: StepRuns) -> list[Figure]:
    figures = []
    for row in runs.rows:
        run = runs.run(row["run"])
        if run.config.model.vae:
            samples, how = analysis.sample(run.model, SAMPLES, seed=0), "codes drawn from the prior N(0, I)"
        else:
            train, train_labels = runs.data(run).split("train")
            codes = analysis.encode(run.model, train[:2000], train_labels[:2000])
            samples = analysis.sample(run.model, SAMPLES, codes_for_fit=codes, seed=0)
            how = "codes drawn from a Gaussian fitted to its codes of training images"
        figures.append(Figure("", f"{row['label']}: {SAMPLES} generated images", f"Decoded from {how}.",
                              images=samples, nrow=8, side=samples.shape[-1]))
    return figures


def wrong_label_figures(runs: StepRuns) -> list[Figure]:
    figures = []
    for row in runs.rows:
        run = runs.run(row["run"])
        if not run.config.model.conditional:
            continue
        data = runs.data(run)
        images, labels = data.split("test")
        names = data.class_names
        grid = []
        for c in range(min(len(names), 10)):
            found = np.flatnonzero(labels.numpy() == c)
            if len(found):
                i = int(found[0])
                code = analysis.encode(run.model, images[i:i + 1], labels[i:i + 1])[0]
                grid += [analysis.to_float(images[i:i + 1]), analysis.decode_with_every_label(run.model, code, len(names))]
        figures.append(Figure("", f"{row['label']}: every class decoded with every label",
                              f"Each row: a test image (left), then its code decoded with each label in turn: "
                              f"{', '.join(names)}. What the code holds stays along a row; what changes is what the "
                              "label decides.",
                              images=grid, nrow=len(names) + 1, side=images.shape[-1]))
    if not figures:
        figures.append(Figure("", "No conditional run in this step", "Decoding with a wrong label needs a model "
                              "whose decoder is given the label (a conditional run)."))
    return figures


def classifier_figures(runs: StepRuns) -> list[Figure]:
    from core.charts.probe import confusion_chart, per_class_accuracy_chart
    from core.lessons.runner import load_probe

    figures = []
    for row in runs.rows:
        probe = load_probe(runs.root, row["run"])
        if probe is None:
            figures.append(Figure("", f"{row['label']}: the classifier has not been trained yet"))
            continue
        chance = 1 / max(len(probe["class_names"]), 1)
        figures.append(Figure("", f"{row['label']}: classifier on the frozen encoder, test accuracy "
                              f"{probe['accuracy']:.2%}",
                              f"Rows: the true class; columns: what the classifier said (chance: {chance:.0%}). "
                              "Dark cells off the diagonal are classes the codes mix up.",
                              chart=confusion_chart(probe["confusion"], probe["class_names"])))
        figures.append(Figure("", f"{row['label']}: accuracy per class",
                              chart=per_class_accuracy_chart(probe["per_class_accuracy"], probe["accuracy"])))
    return figures


def anomaly_figures(runs: StepRuns) -> list[Figure]:
    from core.charts.experiments import roc_chart
    from core.experiments import anomaly_report

    points, colors = [], {}
    for row in runs.rows:
        run = runs.run(row["run"])
        held = run.config.data.exclude_classes
        if not held:
            continue
        data = runs.data(run)
        report = anomaly_report(run.model, data, held)
        name = f"{', '.join(data.class_names[c] for c in report.held_out)} (AUC {report.auc:.3f})"
        colors[name] = runs.colors[row["label"]]
        points += [{"variant": name, "fpr": float(f), "tpr": float(t)} for f, t in zip(report.fpr, report.tpr)]
    if not points:
        return [Figure("", "No run of this step left a class out", "Anomaly detection needs runs trained without "
                       "some classes (--exclude-classes or a grid over data.exclude_classes).")]
    return [Figure("", "The reconstruction error as an anomaly score", "How well each run's error tells the class "
                   "it never saw from the others: the higher the curve (the AUC), the better; the diagonal is chance.",
                   chart=roc_chart(pd.DataFrame(points), colors))]


BUILDERS: dict[str, Callable[[StepRuns], list[Figure]]] = {
    "runs": runs_figures, "answer": answer_figures, "reconstructions": reconstruction_figures,
    "noise-sweep": noise_figures, "latent-raw": latent_figures("raw"), "latent-pca": latent_figures("pca"),
    "latent-tsne": latent_figures("tsne"), "generate": generate_figures, "wrong-label": wrong_label_figures,
    "classifier": classifier_figures, "anomaly": anomaly_figures,
}
