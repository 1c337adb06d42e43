"""Anomaly detection by reconstruction error: a model trained without some classes (DataConfig's
exclude_classes) reconstructs those classes worse, so the per-image error is an anomaly score.
scikit-learn gives the ROC curve and its area (AUC: 1 = every held-out image scores above every
other, 0.5 = no better than chance)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class AnomalyReport:
    held_out: list[int]  # the classes the model never saw
    errors: np.ndarray  # per test image MSE
    is_anomaly: np.ndarray  # bool per test image: its class was held out
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float


def roc_report(errors, is_anomaly, held_out: list[int] | None = None) -> AnomalyReport:
    """ROC and AUC of `errors` as scores for `is_anomaly`; ValueError when one side is empty."""
    from sklearn.metrics import roc_auc_score, roc_curve

    errors = np.asarray(errors, dtype=np.float64)
    is_anomaly = np.asarray(is_anomaly, dtype=bool)
    if is_anomaly.all() or not is_anomaly.any():
        raise ValueError("An ROC curve needs both held-out and normal test images; the test split has "
                         f"{int(is_anomaly.sum())} held-out and {int((~is_anomaly).sum())} normal ones.")
    fpr, tpr, _ = roc_curve(is_anomaly, errors)
    return AnomalyReport(list(held_out or []), errors, is_anomaly, fpr, tpr, float(roc_auc_score(is_anomaly, errors)))


def anomaly_report(model, dataset, held_out: list[int]) -> AnomalyReport:
    """Score every test image of `dataset` (all classes) by `model`'s reconstruction error, with
    the `held_out` classes as the anomalies."""
    import torch

    if not held_out:
        raise ValueError("This run left no class out of training, so there is no anomaly to score; "
                         "use a run of the anomaly preset.")
    from core.analysis import per_image_errors  # PyTorch: imported when a run is scored, not on import

    images, labels = dataset.split("test")
    errors = per_image_errors(model, images, labels)
    is_anomaly = torch.isin(labels, torch.tensor(sorted(held_out), dtype=labels.dtype)).numpy()
    return roc_report(errors, is_anomaly, held_out)
