"""The same training as the app, from a terminal (e.g. pre-training runs before class).

    python -m core.cli train --dataset mnist --model conv-small --latent 16 --epochs 5
    python -m core.cli list
    python -m core.cli eval mnist-conv-small-z16
    python -m core.cli resume mnist-conv-small-z16 --epochs 5
    python -m core.cli export run-a run-b --to lesson.zip
    python -m core.cli import lesson.zip
    python -m core.cli train --dataset digits --model conv-small --epochs 2 --ray local

`train` builds the same RunConfig the app builds, trains with core.train.train and saves with
core.checkpoints.save_run, so its runs appear in the app like any other. Progress goes to
stderr; the last line on stdout is one JSON object, easy to read from a script (grid searches);
its "backend" says where the training ran ("local": this process; "ray": a Ray cluster, --ray).
User errors print one line "error: <sentence>" on stderr and exit with code 2.

The package: `main` (the parser and the dispatch; COMMANDS lists every command group),
`options` (the options shared by the commands, model choices, RunConfig from the arguments),
`output` (progress lines, JSON, data loading, the runner), and one module per command group:
`train` (train, resume), `runs` (list, eval, export, import), `experiments` (experiment,
search, experiments).
"""
from core.cli.main import COMMANDS, build_parser, main
from core.cli.options import DEVICE_CHOICES, MODEL_CHOICES, apply_run_options, config_from_args
from core.cli.output import EXIT_NOTHING_SAVED, EXIT_USER_ERROR, CliReporter, ProgressLine, UserError
from core.cli.runs import format_table

__all__ = ["COMMANDS", "CliReporter", "DEVICE_CHOICES", "EXIT_NOTHING_SAVED", "EXIT_USER_ERROR", "MODEL_CHOICES",
           "ProgressLine", "UserError", "apply_run_options", "build_parser", "config_from_args", "format_table",
           "main"]
