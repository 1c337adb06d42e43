"""`list`, `eval`, `export` and `import`: the saved runs."""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence, TextIO

from core.cli.options import DEVICE_CHOICES, add_data_location_options, add_out_option, set_if_given
from core.cli.output import UserError, fmt_number, load_data, print_json
from core.config import finite_or_none


def register(commands) -> None:
    ls = commands.add_parser("list", help="list the saved runs")
    add_out_option(ls)
    ls.set_defaults(handler=cmd_list)

    ev = commands.add_parser("eval", help="evaluate a saved run on its test split")
    ev.add_argument("run")
    add_out_option(ev)
    add_data_location_options(ev)
    ev.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    ev.set_defaults(handler=cmd_eval)

    ex = commands.add_parser("export", help="write saved runs into one .zip bundle")
    ex.add_argument("runs", nargs="+", metavar="RUN")
    ex.add_argument("--to", required=True, metavar="FILE", help="the .zip to write")
    add_out_option(ex)
    ex.set_defaults(handler=cmd_export)

    im = commands.add_parser("import", help="add the runs of a .zip bundle (checked like any run)")
    im.add_argument("file")
    add_out_option(im)
    im.set_defaults(handler=cmd_import)


def format_table(rows: list[dict]) -> str:
    columns = [("name", "name"), ("dataset", "dataset"), ("model", "model"), ("latent", "latent"),
               ("epochs", "epochs_run"), ("val loss", "val_loss"), ("test MSE", "test_mse"), ("status", "status")]
    numeric = {"val_loss", "test_mse"}
    cells = [[fmt_number(r.get(key)) if key in numeric else ("-" if r.get(key) is None else str(r.get(key)))
              for _, key in columns] for r in rows]
    widths = [max([len(title)] + [len(row[i]) for row in cells]) for i, (title, _) in enumerate(columns)]
    right = {i for i, (_, key) in enumerate(columns) if key in numeric | {"latent", "epochs_run"}}

    def fmt(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths)))

    lines = [fmt([title for title, _ in columns]), fmt(["-" * w for w in widths])]
    lines += [fmt(row) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def cmd_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.checkpoints import list_runs

    rows = list_runs(args.out)
    if not rows:
        print(f"No saved runs in {args.out}.", file=out)
        return 0
    print(format_table(rows), file=out)
    for row in rows:  # why a run is damaged (the table only says that it is)
        if row.get("status") == "damaged" and row.get("message"):
            print(row["message"], file=err)
    return 0


def cmd_eval(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.checkpoints import load_run
    from core.train import evaluate, resolve_device

    run = load_run(args.out, args.run)
    cfg = run.config.data
    set_if_given(cfg, "data_root", args.data_root)
    set_if_given(cfg, "folder", args.folder)
    dataset = load_data(cfg, err, for_app=False)  # nothing is saved
    model_cfg = run.model.cfg
    want = (model_cfg.in_channels, model_cfg.image_size, model_cfg.image_size)
    if tuple(dataset.shape) != want:
        raise UserError(f"Run {run.name} takes {'×'.join(map(str, want))} images but the dataset now gives "
                        f"{'×'.join(map(str, dataset.shape))}; point --data-root or --folder at the data it was "
                        "trained on.")
    images, labels = dataset.split("test")
    if len(images) == 0:
        raise UserError(f"The test split of run {run.name}'s dataset is empty, so there is nothing to evaluate.")
    metrics = evaluate(run.model, images, labels, resolve_device(args.device))
    print_json({"run": run.name, "test_mse": finite_or_none(metrics["mse"]), "test_mae": finite_or_none(metrics["mae"]),
                "images": int(len(images)), "saved_test_mse": finite_or_none(run.test_metrics.get("mse"))}, out)
    return 0


def cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.bundles import export_runs

    target = Path(args.to)
    if target.exists():
        raise UserError(f"{target} already exists; choose another --to or delete it first.")
    partial = target.with_name(f".{target.name}.part")
    try:
        export_runs(args.out, args.runs, partial)
        os.replace(partial, target)
    except OSError as exc:
        raise UserError(f"Could not write {target}: {exc.strerror or exc}.") from None
    finally:
        if partial.exists():
            partial.unlink()
    print_json({"bundle": str(target), "runs": list(dict.fromkeys(args.runs)), "bytes": target.stat().st_size}, out)
    return 0


def cmd_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.bundles import import_runs

    if not Path(args.file).is_file():
        raise UserError(f"There is no file {args.file}; give the path of a .zip made by export.")
    imported = import_runs(args.out, args.file)
    for run in imported:
        print(run.sentence(), file=err)
    print_json({"imported": [{"from": r.name_in_bundle, "run": r.name, "renamed": r.renamed} for r in imported]},
               out)
    return 0
