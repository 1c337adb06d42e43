"""Experiments: a base config plus the factors that vary, run as ordinary runs through the job
registry, kept together, with presets for the homework's questions and Optuna search.

config.py   ExperimentConfig (grid, explicit variants or a search space), grid expansion, JSON
presets.py  one preset per homework question
driver.py   a driver thread per experiment over core.jobs.JobRegistry
manager.py  ExperimentManager: start, stop, delete, records; experiment_summary (the CLI)
search.py   the Optuna study (SQLite beside experiment.json), trials, importances
store.py    experiment.json on disk, listing
anomaly.py  ROC and AUC of reconstruction errors for held-out classes
"""
from core.experiments.anomaly import AnomalyReport, anomaly_report, roc_report
from core.experiments.config import (OBJECTIVE_LABELS, OBJECTIVES, ExperimentConfig, ParamSpace, SearchConfig,
                                     describe_factors, expand_grid, factor_label, format_value, parse_factor,
                                     parse_space, parse_values, variant_config, variant_count)
from core.experiments.driver import best_variant
from core.experiments.manager import ExperimentManager, experiment_summary
from core.experiments.presets import PRESETS, Preset, preset_experiment
from core.experiments.store import ExperimentError, list_records, load_record

__all__ = ["AnomalyReport", "ExperimentConfig", "ExperimentError", "ExperimentManager", "OBJECTIVES",
           "OBJECTIVE_LABELS", "PRESETS", "ParamSpace", "Preset", "SearchConfig", "anomaly_report", "best_variant",
           "describe_factors", "expand_grid", "experiment_summary", "factor_label", "format_value", "list_records", "load_record",
           "parse_factor", "parse_space", "parse_values", "preset_experiment", "roc_report", "variant_config", "variant_count"]
