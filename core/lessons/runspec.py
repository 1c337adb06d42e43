"""A step's `run:` in the command line's own syntax, read by the command line's own parser.

    run: --preset latent-sizes
    run: --grid model.latent=2,4,6 --model conv-small --epochs 8
    run: search --space train.lr=1e-4:1e-2:log --space model.latent=2,4,6 --trials 6

is `python -m core.cli experiment ...` (or `search ...`) without the data, which the lesson's
front matter chooses: the page, `lesson run` and the report's reproducing command go through one
parser (core.cli's `experiment` / `search` sub-commands and the function that turns their options
into an ExperimentConfig), so a lesson's run means exactly what the same command line means.
Options the lesson or the app decides (the data, the output folder, the device) are refused here.
Epochs and batch size left out take the data-fitted defaults of the Train page (core.defaults).
"""
from __future__ import annotations

import argparse
import copy
import shlex
from dataclasses import dataclass

from core.config import DataConfig, RunConfig
from core.defaults import suggested_training
from core.experiments import ExperimentConfig

COMMANDS = ("experiment", "search")
# Decided by the lesson's front matter (the data) or by whoever runs it (where, how many at once).
LESSON_OWNED = {"--dataset": "the front matter's dataset: chooses the data",
                "--data-root": "the server chooses where datasets are",
                "--folder": "the front matter's folder: names a folder dataset",
                "--download": "the server decides whether to download",
                "--out": "the app (or lesson run --out) chooses the checkpoints folder",
                "--name": "each step's experiment is named after the lesson and the step",
                "--jobs": "the server decides how many runs train at once",
                "--ray": "the server decides where jobs run",
                "--device": "the server picks the device"}
DATA_OPTIONS = ("--limit", "--image-size", "--channels", "--val-fraction", "--test-fraction", "--balanced",
                "--exclude-classes")
EXAMPLE = "--grid model.latent=2,4,6 --model conv-small --epochs 8"


class RunSyntaxError(ValueError):
    """A run: or data: text the command line would refuse; one sentence."""


@dataclass
class ParsedRun:
    command: str  # experiment | search
    args: list[str]  # the options as written (data options first)
    experiment: ExperimentConfig
    epochs_given: bool
    batch_given: bool


def _raise(message: str) -> None:
    raise RunSyntaxError(message)


def _subparser(command: str) -> argparse.ArgumentParser:
    """The CLI's own parser of `command`, made to raise instead of printing and exiting."""
    from core.cli import build_parser  # core.cli registers the lesson commands: imported late

    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            parser = action.choices[command]
            parser.error = _raise  # argparse calls self.error(message) for every mistake
            parser.exit = lambda status=0, message=None: _raise(message or "that option stops the command")
            return parser
    raise RuntimeError("core.cli has no sub-commands")


def split_run(text: str) -> tuple[str, list[str]]:
    """('experiment' | 'search', the options) of a run: text; RunSyntaxError for an unusable one."""
    try:
        words = shlex.split(str(text))
    except ValueError as exc:
        raise RunSyntaxError(f"its quotes do not match ({exc}); write options like {EXAMPLE}") from None
    command = "experiment"
    if words and words[0] in COMMANDS:
        command, words = words[0], words[1:]
    elif words and not words[0].startswith("-"):
        raise RunSyntaxError(f"'{words[0]}' is not an option; start with experiment options such as {EXAMPLE}, "
                             "or with search")
    for word in words:
        option = word.split("=", 1)[0]
        if option in LESSON_OWNED:
            raise RunSyntaxError(f"{option} is not for a step ({LESSON_OWNED[option]}); leave it out")
    return command, words


def check_data_options(text: str) -> list[str]:
    """The words of a data: (or fallback_data:) text: only data options, e.g. --limit 12000."""
    try:
        words = shlex.split(str(text or ""))
    except ValueError as exc:
        raise RunSyntaxError(f"its quotes do not match ({exc}); write e.g. --limit 12000") from None
    for word in words:
        if word.startswith("-") and word.split("=", 1)[0] not in DATA_OPTIONS:
            raise RunSyntaxError(f"{word} is not a data option; use {', '.join(DATA_OPTIONS)}")
    return words


def data_args(data: DataConfig, options: str) -> list[str]:
    """The command-line options naming the data: --dataset (and --folder) plus the lesson's options."""
    args = ["--dataset", data.dataset]
    if data.dataset == "folder":
        args += ["--folder", f"{data.folder_root}/{data.folder}" if data.folder_root else data.folder]
    elif data.data_root != DataConfig().data_root:  # a torchvision dataset found in another data folder
        args += ["--data-root", data.data_root]
    return args + check_data_options(options)


def parse_run(text: str, data: DataConfig, options: str = "", name: str = "lesson") -> ParsedRun:
    """The ExperimentConfig of a run: text on `data` (its data options `options`), named `name`,
    exactly as `python -m core.cli <command> <data args> <run>` would build it."""
    from core.cli.experiments import experiment_from_args  # the CLI's options -> ExperimentConfig
    from core.cli.output import UserError

    command, words = split_run(text)
    args = data_args(data, options) + words
    namespace = _subparser(command).parse_args(args)
    namespace.command = command
    namespace.name = name
    try:
        exp = experiment_from_args(namespace)
    except UserError as exc:  # e.g. neither --preset nor --grid
        raise RunSyntaxError(" ".join(str(exc).split()).rstrip(".")) from None
    if data.dataset == "folder":  # the app names a folder by its data root, never by a server path
        exp.base.data.folder_root, exp.base.data.folder = data.folder_root, data.folder
    return ParsedRun(command, args, exp, namespace.epochs is not None, namespace.batch_size is not None)


def step_experiment(parsed: ParsedRun, train_images: int, epochs: int | None = None) -> ExperimentConfig:
    """The experiment to run: epochs and batch size the run: left out take the Train page's
    data-fitted defaults for `train_images` training images; `epochs` overrides every run's."""
    exp = copy.deepcopy(parsed.experiment)
    suggested = suggested_training(train_images)
    if not parsed.epochs_given:
        exp.base.train.epochs = suggested.epochs
    if not parsed.batch_given:
        exp.base.train.batch_size = suggested.batch_size
    if epochs is not None:
        exp.base.train.epochs = epochs
        exp.grid.pop("train.epochs", None)
    return exp.check()


def reproducing_command(parsed: ParsedRun, exp: ExperimentConfig) -> str:
    """The command line that runs the same experiment (with the epochs and batch size it got)."""
    words = list(parsed.args)
    if not parsed.epochs_given or exp.base.train.epochs != parsed.experiment.base.train.epochs:
        words = _without_option(words, "--epochs") + ["--epochs", str(exp.base.train.epochs)]
    if not parsed.batch_given:
        words += ["--batch-size", str(exp.base.train.batch_size)]
    return shlex.join(["python", "-m", "core.cli", parsed.command, *words, "--name", exp.name])


def _without_option(words: list[str], option: str) -> list[str]:
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word == option:
            skip = True
        elif not word.startswith(option + "="):
            kept.append(word)
    return kept


def base_config(data: DataConfig, options: str) -> RunConfig:
    """The RunConfig the lesson's data options give (the CLI's parser, so the same rules)."""
    from core.cli import apply_run_options

    cfg = apply_run_options(RunConfig(), _subparser("experiment").parse_args(data_args(data, options)))
    if data.dataset == "folder":
        cfg.data.folder_root, cfg.data.folder = data.folder_root, data.folder
    return cfg
