"""`experiment`, `search` and `experiments`: many runs as one experiment, through the same job
registry and experiment manager the app uses."""
from __future__ import annotations

import argparse
import threading
from typing import Any, TextIO

from core.cli.options import add_limits_option, add_out_option, add_ray_option, add_run_options, apply_run_options
from core.cli.options import work_limits
from core.cli.output import EXIT_NOTHING_SAVED, ProgressLine, UserError, fmt_number, load_data, make_runner
from core.cli.output import print_json
from core.config import DataConfig, RunConfig


def register(commands) -> None:
    from core.experiments import OBJECTIVES, PRESETS

    ex = commands.add_parser(
        "experiment", help="run a preset or a grid of runs as one experiment",
        description="Run every variant of a preset or a grid as background jobs (the app lists the experiment "
                    "and its runs); the options of train override the base settings.")
    what = ex.add_argument_group("experiment")
    what.add_argument("--preset", choices=list(PRESETS), help="a homework question's experiment")
    what.add_argument("--grid", action="append", default=[], metavar="PATH=VALUES",
                      help="a factor and its values, e.g. model.latent=2,4,6 (repeat for a product; with "
                           "--preset it replaces that factor's values); a list setting takes lists with '-' "
                           "between their numbers, e.g. model.hidden=1000-500-250,256-64 or "
                           "data.exclude_classes=1,7")
    add_run_options(ex, required=False)
    _add_experiment_output(ex)
    add_ray_option(ex)
    add_limits_option(ex)
    ex.set_defaults(handler=cmd_experiment)

    se = commands.add_parser(
        "search", help="an Optuna search over settings, run as one experiment",
        description="Search settings with Optuna: each trial is a run; poor trials are pruned by the median "
                    "rule on their per-epoch validation loss.")
    what = se.add_argument_group("search")
    what.add_argument("--space", action="append", default=[], metavar="PATH=RANGE",
                      help="e.g. train.lr=1e-4:1e-1:log, model.latent=2,4,8,16, model.dropout=0:0.5 "
                           "(default: the search preset's lr, latent, dropout and batch size)")
    what.add_argument("--trials", type=int, default=20, help="how many trials (default 20)")
    what.add_argument("--objective", choices=list(OBJECTIVES), default="val_loss")
    what.add_argument("--direction", choices=("minimize", "maximize"),
                      help="default: minimize a loss, maximize an accuracy")
    what.add_argument("--prune", action=argparse.BooleanOptionalAction, default=None,
                      help="stop trials whose validation loss trails the median (default: on, except for "
                           "probe_accuracy)")
    what.add_argument("--seed-sampler", type=int, default=0, help="the sampler's seed (default 0)")
    add_run_options(se, required=False)
    _add_experiment_output(se)
    add_ray_option(se)
    add_limits_option(se)
    se.set_defaults(handler=cmd_experiment)

    xs = commands.add_parser("experiments", help="list the saved experiments")
    add_out_option(xs)
    xs.set_defaults(handler=cmd_experiments)


def _add_experiment_output(parser: argparse.ArgumentParser) -> None:
    out = parser.add_argument_group("output")
    add_out_option(out)
    out.add_argument("--name", help="experiment name (default: the preset's, or grid / search)")
    out.add_argument("--jobs", type=int, default=1, help="runs trained at the same time (default 1)")


def _split_factor(option: str, text: str) -> tuple[str, str]:
    path, sep, values = text.partition("=")
    if not sep or not path.strip() or not values.strip():
        raise UserError(f"--{option} {text!r} needs the form path=values, e.g. model.latent=2,4,6.")
    return path.strip(), values.strip()


def _grid_experiment(args: argparse.Namespace):
    from core.experiments import ExperimentConfig, parse_values, preset_experiment
    from core.experiments.presets import DEFAULT_EPOCHS

    if not args.preset and not args.grid:
        raise UserError("Give --preset NAME or one or more --grid path=values (with a preset, --grid "
                        "replaces the values of that factor).")
    if args.preset:
        exp = preset_experiment(args.preset)
    else:
        base = RunConfig()
        base.train.epochs = DEFAULT_EPOCHS
        exp = ExperimentConfig(name="grid", base=base)
    for text in args.grid:
        path, values = _split_factor("grid", text)
        exp.grid[path] = parse_values(values, path)  # a list setting's lists as the page reads them
    return exp


def _search_experiment(args: argparse.Namespace):
    from core.experiments import PRESETS, SearchConfig, parse_space, preset_experiment

    preset = PRESETS["search"]
    exp = preset_experiment("search")
    if args.space:
        exp.search = SearchConfig(space={})
        for text in args.space:
            path, values = _split_factor("space", text)
            exp.search.space[path] = parse_space(path, values)
    prune = args.prune if args.prune is not None else args.objective != "probe_accuracy"
    exp.search.trials, exp.search.objective, exp.search.prune = args.trials, args.objective, prune
    exp.search.direction, exp.search.seed = args.direction or "", args.seed_sampler
    exp.question = preset.question if not args.space else ""
    exp.preset = "search"
    return exp


def experiment_from_args(args: argparse.Namespace):
    """The checked ExperimentConfig `experiment` or `search` describes."""
    exp = _grid_experiment(args) if args.command == "experiment" else _search_experiment(args)
    apply_run_options(exp.base, args)
    _photo_settings(exp, args)
    exp.name = args.name or exp.name
    if args.jobs < 1:
        raise UserError("--jobs must be 1 or more.")
    return exp.check()


def _photo_settings(exp, args: argparse.Namespace) -> None:
    """A preset's settings for photos (its photo_base, e.g. the spatial-code model for size ×
    dropout) on a photo dataset, as the Experiments page sets them; an option given still wins.
    The dataset is known only once the options are applied, so they are applied again after."""
    from core.experiments.config import set_path
    from core.experiments.presets import PHOTO_DATASETS, PRESETS

    if not exp.preset or exp.base.data.dataset not in PHOTO_DATASETS:
        return
    for path, value in PRESETS[exp.preset].photo_base.items():
        set_path(exp.base, path, value)
    apply_run_options(exp.base, args)


def _check_variants(exp, limits) -> None:
    """Every run of a grid (a search: its base) within the limits, before anything starts."""
    from core.experiments.estimate import variant_configs
    from core.serving.limits import check_run

    for cfg in variant_configs(exp):
        check_run(cfg, limits)


def _shared_loader(err: TextIO):
    """load_data for the registry: each dataset is read once and shared by every variant."""
    lock = threading.Lock()
    loaded: dict[str, Any] = {}

    def load(cfg: DataConfig):
        key = RunConfig(data=cfg).to_json()
        with lock:
            if key not in loaded:
                loaded[key] = load_data(cfg, err)
            return loaded[key]
    return load


def _variant_line(total: int, v: dict) -> str:
    text = f"[{v['index'] + 1}/{total}] {v['label']}: {v['status']}"
    if v["status"] == "running" and v["epoch"]:
        text += f" epoch {v['epoch']}/{v['total_epochs']}"
    if v.get("val_loss") is not None:
        text += f"  val {v['val_loss']:.4f}"
    if v.get("test_mse") is not None:
        text += f"  test MSE {v['test_mse']:.4f}"
    if v.get("trial_state") in ("pruned", "failed"):
        text += f" ({v['trial_state']})"
    return text


def cmd_experiment(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.jobs import JobRegistry

    from core.cli.train import fit_training_defaults

    exp = experiment_from_args(args)
    limits = work_limits(args)
    _check_variants(exp, limits)  # from the settings alone, before any data is read
    load = _shared_loader(err)
    # As the Experiments page does (core.experiments.presets.experiment_base): the batch size and
    # epochs not given are fitted to the data, not the preset's fixed ones (2 steps an epoch on 200 photos).
    fit_training_defaults(args, exp.base, len(load(exp.base.data).splits["train"]), limits, ProgressLine(err))
    _check_variants(exp, limits)  # again with the fitted batch size (its memory) and epochs
    # the registry checks each run again once its data's shape is known (and a search's trials)
    registry = JobRegistry(root=args.out, max_concurrent=args.jobs, load_data=load, runner=make_runner(args),
                           limits=limits)
    try:
        return _drive_experiment(exp, registry, load, args, out, err)
    finally:
        registry.runner.shutdown()


def _drive_experiment(exp, registry, load, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.experiments import ExperimentManager, experiment_summary, variant_count

    manager = ExperimentManager(registry, poll_seconds=0.2)
    progress = ProgressLine(err)
    count = variant_count(exp)
    kind = f"{count} trials" if exp.search else f"{count} runs"
    progress.line(f"experiment {exp.name}: {kind}, {args.jobs} at a time (Ctrl-C stops it; finished runs are kept)")
    if exp.question:
        progress.line(exp.question)
    name = manager.start(exp)
    shown: dict[int, str] = {}
    interrupted = False
    while True:
        try:
            record = manager.wait(name, timeout=1.0)
        except KeyboardInterrupt:
            if interrupted:
                raise
            interrupted = True
            manager.stop(name)
            progress.line("stopping the experiment: queued runs are dropped, running ones saved")
            continue
        total = max(count, len(record["variants"]))
        for v in record["variants"]:
            line = _variant_line(total, v)
            if v["status"] not in ("queued", "loading") and shown.get(v["index"]) != line:
                shown[v["index"]] = line
                if v["status"] == "running":
                    progress.draw(line)
                else:
                    progress.line(line)
        if not manager.is_running(name):
            break
    summary = experiment_summary(record, args.out, load_data=load)
    progress.line(f"{record['message']} Experiment {name} in {args.out}.")
    print_json(summary, out)
    return 0 if any(r["run"] for r in summary["runs"]) else EXIT_NOTHING_SAVED


def cmd_experiments(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.experiments import list_records

    records = list_records(args.out)
    if not records:
        print(f"No saved experiments in {args.out}.", file=out)
        return 0
    rows = []
    for r in records:
        saved = sum(1 for v in r.get("variants", []) if v.get("run"))
        best = r.get("best") or {}
        rows.append({"name": r["name"], "preset": r["config"].get("preset") or "grid", "status": r.get("status"),
                     "runs": f"{saved}/{len(r.get('variants', []))}", "best": best.get("run") or "-",
                     "value": fmt_number(best.get("value")), "created": (r.get("created") or "")[:19]})
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(row[c])) for row in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip(), file=out)
    print("  ".join("-" * widths[c] for c in columns), file=out)
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip(), file=out)
    return 0
