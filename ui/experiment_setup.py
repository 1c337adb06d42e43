"""The Experiments page's new-experiment form: a preset (a homework question) or a custom grid on the
student's own settings — the Train form's current ones, or a saved run's (core.experiments.presets.
experiment_base: batch size and epochs fitted to the data unless the student chose them) — with
every factor's values typed as the CLI's --grid takes them (core.experiments.config.parse_values:
latent `2, 4, 6`, dense hidden sizes `1000-500-250, 256-64`), the plan, the few-steps warning and
any variant the server would refuse said before Start.

Widget keys: exp_preset, exp_source (Train form or a saved run), exp_source_run, exp_vary (a custom
grid's settings), exp_values_<preset>_<setting> (a factor's values), exp_epochs_<base>,
exp_batch_<base> (keyed by the base, so a new base starts from its own values), exp_limit, exp_trials,
exp_name_<preset>.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import streamlit as st

from core.checkpoints import describe_model
from core.checkpoints.files import RunFileError, read_config
from core.config import RunConfig
from core.data import DataError, Dataset
from core.defaults import few_steps_warning
from core.experiments import PRESETS, ExperimentConfig, expand_grid, factor_label, format_value, preset_experiment
from core.experiments.config import coerce, parse_values
from core.experiments.presets import check_variants, experiment_base, preset_changes
from core.serving.limits import WorkLimits
from ui.config_form import LOSS_LABELS, OPTIMIZER_LABELS
from ui.sidebar import describe_data
from ui.state import checkpoints_root, chosen_data_config, dataset_for, saved_runs
from ui.train_settings import train_form_settings
from ui.text import md_message, md_text
from ui.url_state import url_widget

CUSTOM = "custom"
PRESET_KEY = "exp_preset"
SOURCE_KEY = "exp_source"
SOURCE_RUN_KEY = "exp_source_run"
VARY_KEY = "exp_vary"
FROM_FORM, FROM_RUN = "form", "run"
SOURCES = {FROM_FORM: "The Train page's settings", FROM_RUN: "A saved run's settings"}
# What a custom grid may vary: dotted path -> (label, values offered to start from, as typed).
VARIABLE_SETTINGS = {
    "model.latent": ("Latent size", "2, 4, 6"),
    "model.hidden": ("Dense hidden sizes", "1000-500-250, 256-64"),
    "model.channels": ("Conv channels", "16-32, 32-64-128"),
    "model.preset": ("Conv size preset", "small, large"),
    "model.family": ("Architecture", "conv, dense"),
    "model.dropout": ("Dropout", "0, 0.5"),
    "model.activation": ("Activation", "relu, sigmoid, tanh"),
    "model.vae": ("VAE", "false, true"),
    "model.beta": ("VAE beta", "0.5, 1, 4"),
    "model.conditional": ("Conditional", "false, true"),
    "train.optimizer": ("Optimiser", "adam, sgd, sgd_momentum, rmsprop, rprop"),
    "train.lr": ("Learning rate", "0.0001, 0.001, 0.01"),
    "train.batch_size": ("Batch size", "32, 128"),
    "train.epochs": ("Epochs", "5, 20"),
    "train.weight_decay": ("Weight decay (L2)", "0, 0.0001, 0.001"),
    "train.loss": ("Loss", "mse, mae"),
    "train.noise_factor": ("Noise factor (denoising)", "0, 0.3, 0.6"),
    "train.seed": ("Seed", "0, 1, 2"),
    "data.exclude_classes": ("Classes left out of training", "0, 4, 7"),
}


@dataclass
class NewExperiment:
    """What the form built: the experiment, and the data its runs train on."""
    exp: ExperimentConfig
    dataset: Dataset


def settings_text(cfg: RunConfig) -> str:
    """One line of a config's settings, e.g. 'conv-small, latent 16 · Adam, lr 0.002, batch 16, 39 epochs, MSE'."""
    t = cfg.train
    parts = [describe_model(cfg)]
    if cfg.model.dropout:
        parts[0] += f", dropout {cfg.model.dropout:g}"
    training = [OPTIMIZER_LABELS.get(t.optimizer, t.optimizer), f"lr {t.lr:g}", f"batch {t.batch_size}",
                f"{t.epochs} epochs", LOSS_LABELS.get(t.loss, t.loss).split(" ")[0]]
    if t.noise_factor:
        training.append(f"noise {t.noise_factor:g}")
    return " · ".join(parts + [", ".join(training)])


def _source_settings() -> tuple[RunConfig, bool, str] | None:
    """(settings, the student chose batch and epochs, where they came from) of the chosen source;
    None when a saved run was asked for and there is none to read (said on the page)."""
    left, right = st.columns([2, 3])
    source = left.radio("Start from", list(SOURCES), format_func=SOURCES.get, key=SOURCE_KEY, horizontal=True,
                        help="The experiment changes only its factors; everything else is these settings.")
    if source == FROM_FORM:
        settings, chose = train_form_settings(chosen_data_config())
        return settings, chose, "the Train page's settings"
    names = [r["name"] for r in saved_runs() if r.get("status") != "damaged"]
    if not names:
        right.info("No saved run yet: train one, or start from the Train page's settings.")
        return None
    url_widget(SOURCE_RUN_KEY, "from_run", names[0], parse=str, valid=lambda n: n in names)
    if st.session_state.get(SOURCE_RUN_KEY) not in names:
        st.session_state[SOURCE_RUN_KEY] = names[0]
    name = right.selectbox("Run", names, key=SOURCE_RUN_KEY)
    try:  # a listed run's name: a folder of the checkpoints, nothing else (read within core's size bound)
        settings = read_config(Path(checkpoints_root()) / name)
    except (OSError, RunFileError):
        right.error(f"Run {md_text(name)}'s settings cannot be read (its config.json is missing or damaged); "
                    "choose another run.")
        return None
    return settings, True, f"run {md_text(name)}'s settings"


def _base_key(cfg: RunConfig) -> str:
    """A short name of the base, so the epochs and batch boxes start again from a new base's values."""
    return f"{zlib.crc32(cfg.to_json().encode()):08x}"


def _training_inputs(base: RunConfig, columns) -> None:
    key = _base_key(base)
    base.train.epochs = int(columns[0].number_input("Epochs per run", 1, None, base.train.epochs,
                                                    key=f"exp_epochs_{key}"))
    base.train.batch_size = int(columns[1].number_input("Batch size", 1, None, base.train.batch_size, step=16,
                                                        key=f"exp_batch_{key}",
                                                        help="Unless the experiment varies it."))


def factor_inputs(exp: ExperimentConfig, choice: str) -> list[str]:
    """A text box per factor of the grid (a preset's factors, or the settings a custom grid varies),
    starting at the preset's values or an example; exp.grid takes what is typed. Returns the
    problems (one sentence each) of values that do not parse."""
    if choice == CUSTOM:
        chosen = st.multiselect("Settings to vary", list(VARIABLE_SETTINGS), key=VARY_KEY,
                                format_func=lambda p: VARIABLE_SETTINGS[p][0],
                                help="Every combination of the values below becomes one run.")
        starts = {path: VARIABLE_SETTINGS[path][1] for path in chosen}
    else:
        starts = {path: ", ".join(format_value(v) for v in values) for path, values in exp.grid.items()}
    exp.grid = {}
    problems = []
    columns = st.columns(min(max(len(starts), 1), 3))
    for i, (path, start) in enumerate(starts.items()):
        label = VARIABLE_SETTINGS.get(path, (factor_label(path).capitalize(),))[0]
        list_setting = path in ("model.hidden", "model.channels", "data.exclude_classes")
        text = columns[i % len(columns)].text_input(
            f"{label} values", start, key=f"exp_values_{choice}_{path}", max_chars=400,
            help=("A list per run: '-' between its numbers, ',' between runs, e.g. 1000-500-250, 256-64."
                  if list_setting else "Separated by commas, e.g. " + VARIABLE_SETTINGS.get(path, ("", start))[1] + "."))
        try:
            exp.grid[path] = [coerce(path, v) for v in parse_values(text, path)]
        except ValueError as exc:
            problems.append(f"{label}: {exc}")
    return problems


def planned_table(exp: ExperimentConfig) -> None:
    if exp.search is not None:
        rows = [{"setting": path, "searched over": space.describe()} for path, space in exp.search.space.items()]
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="exp_planned")
        return
    rows = [{"run": i + 1, **{factor_label(p): format_value(v) for p, v in factors.items()}}
            for i, factors in enumerate(expand_grid(exp))]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="exp_planned", height=min(36 * (len(rows) + 1) + 4, 300))


def few_steps_warnings(exp: ExperimentConfig, train_images: int) -> list[str]:
    """core.defaults' few-steps warning for each batch size the runs use (said before Start)."""
    batches = {exp.base.train.batch_size}
    batches |= {f["train.batch_size"] for f in expand_grid(exp) if "train.batch_size" in f} if exp.search is None else set()
    return [w for w in (few_steps_warning(train_images, b) for b in sorted(batches)) if w]


def _say_the_base(exp: ExperimentConfig, choice: str, where: str, chose: bool) -> None:
    changes = preset_changes(choice, exp.base) if choice in PRESETS else {}
    fitted = "" if chose else " (batch size and epochs fitted to the data's size)"
    st.caption(f"Every run starts from {where}{fitted}: {settings_text(exp.base)}, on {describe_data(exp.base.data)}."
               + (" The preset sets " + ", ".join(f"{factor_label(p)} {format_value(v)}" for p, v in changes.items())
                  + "." if changes else "")
               + (" Change them on the Train page." if where.startswith("the Train") else ""))


def new_experiment_form() -> NewExperiment | None:
    """The form; the experiment to start (checked), or None with the reason on the page."""
    choices = list(PRESETS) + [CUSTOM]
    labels = {name: preset.title for name, preset in PRESETS.items()} | {CUSTOM: "Custom grid"}
    choice = st.selectbox("Preset", choices, key=PRESET_KEY, format_func=labels.get,
                          help="Each preset answers one question of the homework; every value can be changed.")
    source = _source_settings()
    if source is None:
        return None
    settings, chose, where = source
    columns = st.columns(4)
    limit = columns[2].number_input("Image limit (0 = all)", 0, None, int(settings.data.limit), step=100,
                                    key="exp_limit")
    settings.data = replace(settings.data, limit=int(limit))
    try:
        dataset = dataset_for(settings.data)
    except DataError as exc:
        st.error(md_message(exc))
        st.page_link("views/data.py", label="Choose a dataset", icon=":material/dataset:")
        return None
    base = experiment_base(settings, len(dataset.splits["train"]), keep_training=chose)
    _training_inputs(base, columns)
    try:
        exp = ExperimentConfig(name=CUSTOM, base=base) if choice == CUSTOM else preset_experiment(choice, base)
        if exp.search is not None:
            exp.search.trials = int(columns[3].number_input("Trials", 1, 500, exp.search.trials, key="exp_trials"))
        problems = factor_inputs(exp, choice)
        exp.name = st.text_input("Experiment name", value=choice, key=f"exp_name_{choice}", max_chars=60)
        for problem in problems:
            st.error(md_message(problem))
        if problems:
            return None
        if choice == CUSTOM and not exp.grid:
            st.info("Choose at least one setting to vary above, and its values.")
            return None
        exp.check()
        check_variants(exp, dataset.shape, dataset.num_classes, WorkLimits.from_env())
    except ValueError as exc:
        st.error(md_message(exc))
        return None
    if exp.question:
        st.info(exp.question, icon=":material/help:")
    _say_the_base(exp, choice, where, chose)
    if choice in PRESETS and PRESETS[choice].dataset != exp.base.data.dataset:
        st.caption(f"The homework asked this on {describe_data(replace(exp.base.data, dataset=PRESETS[choice].dataset))}"
                   f"; this experiment uses {describe_data(exp.base.data)} (change it on the Data page).")
    with st.container(key="exp_plan"):
        planned_table(exp)
    for warning in few_steps_warnings(exp, len(dataset.splits["train"])):
        st.warning(warning, icon=":material/warning:")
    return NewExperiment(exp, dataset)
