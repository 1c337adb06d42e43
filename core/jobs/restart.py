"""What a server restart must not lose: the queue and the runs in progress, even after a kill.

The app's registry (once its restore() ran) writes <checkpoints>/.server-state.json whenever its
queue changes: every job queued or running, with its settings and its owner's key (never the raw
id). Every few minutes each running job also keeps a checkpoint (<checkpoints>/.jobs/<id>.pt: what
resuming needs, one file per running job, replaced atomically, removed when the job ends). Both
are written atomically (core.atomic), so a kill at any instant leaves the last good copy.

On SIGTERM/SIGINT the registry stops its running jobs at the end of the current batch, waits for
their saves (they save as stopped runs when at least one epoch finished) and writes the file once
more, naming those runs. The next registry on that folder reads it once: queued jobs come back
under their old ids and owners, a job that was running when the server was killed continues from
its checkpoint (or starts again when it had none yet), and a one-sentence note tells the page.
What a save, overwrite, delete or import killed halfway left behind is finished or removed when
the next server starts (clean_leftovers).

How the hook is installed: signal.signal() works only on the main thread, and a Streamlit script
(where the app creates its registry) runs on a script thread. Streamlit's own SIGTERM/SIGINT
handler stops the server, after which the main thread returns and the interpreter runs its
atexit callbacks, on the main thread, while the daemon job threads still run. So the app registers
the shutdown with atexit; a caller that is on the main thread (a script, the CLI) also gets a
signal handler that runs the shutdown and then the handler it replaced.
"""
from __future__ import annotations

import atexit
import io
import json
import logging
import os
import signal
import threading
import weakref
from dataclasses import asdict
from pathlib import Path
from typing import Callable


from core.atomic import TEMP_SUFFIX, write_bytes, write_json

logger = logging.getLogger(__name__)

STATE_FILE = ".server-state.json"
STATE_VERSION = 2  # 1: written only at shutdown, raw owner ids, "queued" only
CHECKPOINT_DIR = ".jobs"
# A running job keeps a checkpoint this often (seconds, AE_LAB_CHECKPOINT_SECONDS): a kill costs
# at most this much of its training.
CHECKPOINT_SECONDS_ENV = "AE_LAB_CHECKPOINT_SECONDS"
DEFAULT_CHECKPOINT_SECONDS = 120.0
# A save in progress in another process (a CLI next to the app) has a young temporary folder; only
# folders left alone this long are taken for the leftovers of a killed save.
LEFTOVER_AGE_S = 120.0


def checkpoint_seconds() -> float:
    text = os.environ.get(CHECKPOINT_SECONDS_ENV, "").strip()
    try:
        return max(float(text), 0.0) if text else DEFAULT_CHECKPOINT_SECONDS
    except ValueError:
        raise ValueError(f"{CHECKPOINT_SECONDS_ENV}={text!r} is not a number of seconds; set it to e.g. 120.") from None


def write_state(root, state: dict) -> Path:
    """Write the state file atomically (temporary file, fsync, rename over the old one)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return write_json(root / STATE_FILE, {"version": STATE_VERSION, **state}, indent=None, sort_keys=False)


def read_state(root) -> dict | None:
    """The state file's content; None when there is none or it is damaged (a damaged one is moved
    aside as .server-state.json.damaged). The reader overwrites it with its own state next."""
    path = Path(root) / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError):
        state = None
    if not isinstance(state, dict) or state.get("version") not in (1, STATE_VERSION):
        logger.warning("the restart file %s is damaged; it was set aside and not acted on", path.name)
        try:
            os.replace(path, path.with_name(STATE_FILE + ".damaged"))
        except OSError:
            pass
        return None
    return state


# ---------------------------------------------------------------- running jobs' checkpoints

def checkpoint_path(root, job_id: str) -> Path:
    return Path(root) / CHECKPOINT_DIR / f"{job_id}.pt"


def write_checkpoint(root, job_id: str, resume) -> None:
    """Keep `resume` (a core.train.ResumeFrom) as the job's checkpoint, replacing the last one."""
    import torch  # here: the app's first page restores the queue without loading PyTorch

    film = [f.to("cpu") for f in resume.film]
    payload = {"state": resume.state, "best_state": resume.best_state,
               "history": [asdict(r) for r in resume.history],
               "batch_losses": torch.tensor(resume.batch_losses, dtype=torch.float64),
               "film": torch.stack(film) if film else None}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path = checkpoint_path(root, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, buffer.getvalue())


def read_checkpoint(root, job_id: str):
    """The job's checkpoint as a ResumeFrom (weights_only: plain tensors and numbers); None when it
    has none or it cannot be read (the job then starts again from its beginning)."""
    import torch

    from core.train import EpochRecord, ResumeFrom

    path = checkpoint_path(root, job_id)
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        history = [EpochRecord(**record) for record in payload["history"]]
        film = payload["film"]
        return ResumeFrom(state=payload["state"], best_state=payload["best_state"], history=history,
                          batch_losses=payload["batch_losses"].tolist(), film=list(film) if film is not None else [])
    except Exception:  # damaged, or written by another version: the job starts again instead
        logger.warning("the checkpoint of job %s cannot be read; the job starts again", job_id, exc_info=True)
        return None


def checkpoint_epochs(root, job_id: str) -> int:
    resume = read_checkpoint(root, job_id)
    return len(resume.history) if resume is not None else 0


def remove_checkpoint(root, job_id: str) -> None:
    try:
        checkpoint_path(root, job_id).unlink()
    except FileNotFoundError:
        pass
    except OSError:
        logger.warning("could not remove the checkpoint of job %s", job_id, exc_info=True)


def remove_other_checkpoints(root, keep: set[str]) -> None:
    """Remove the checkpoints (and temporary files) of jobs that are not in `keep`."""
    folder = Path(root) / CHECKPOINT_DIR
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if not (entry.suffix == ".pt" and entry.stem in keep):
            try:
                entry.unlink()
            except OSError:
                pass


def clean_leftovers(root, older_than: float = LEFTOVER_AGE_S) -> list[str]:
    """Finish what a killed save, overwrite, delete or import left in the checkpoints folder,
    for folders untouched for `older_than` seconds (core.checkpoints.recover_leftovers: a complete
    new run is put in place, a replaced run whose successor never arrived is put back, the rest
    removed); returns the folders acted on."""
    from core.checkpoints import recover_leftovers  # the save protocol's own knowledge

    return recover_leftovers(root, older_than)


def finished_save(root, name: str | None) -> int | None:
    """The epochs of a complete save of run `name` that a kill cut off just before its last rename
    (a staging folder with its info.json); None when there is none. The start-up clean-up puts such
    a run in place (core.checkpoints.recover_leftovers), so its job needs no continuing."""
    from core.checkpoints import INFO_FILE
    from core.checkpoints.names import hidden_run_name

    root = Path(root)
    if not name or not root.is_dir():
        return None
    for entry in root.iterdir():
        if hidden_run_name(entry.name) in (("tmp", name), ("new", name)) and (entry / INFO_FILE).is_file():
            try:
                return int(json.loads((entry / INFO_FILE).read_text(encoding="utf-8"))["epochs_run"])
            except (OSError, ValueError, KeyError, TypeError):
                return None
    return None


def remove_killed_writes(root, names: list[str]) -> None:
    """After a kill: give back the names a killed save had reserved (empty run folders named
    `names`: rmdir removes only an empty one) and remove the restart file's temporary copies."""
    root = Path(root)
    for name in names:
        try:
            os.rmdir(root / name)
        except OSError:  # not there, or a real run
            pass
    for leftover in root.glob(f".{STATE_FILE}.*{TEMP_SUFFIX}"):
        try:
            leftover.unlink()
        except OSError:
            pass


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def restart_message(note: dict) -> str:
    """One sentence, e.g. "The server restarted: 2 runs were saved at epoch 12, 3 queued runs were
    restored." `note`: {"saved": [{"run", "epoch"}], "lost": int, "restored": int, "continued":
    [{"name", "epoch"}] (running when the server was killed, continued from a checkpoint),
    "restarted": int (running when killed, before their first checkpoint)}."""
    parts = []
    saved = note.get("saved") or []
    if saved:
        epochs = {s["epoch"] for s in saved}
        were = _plural(len(saved), "run was", "runs were")
        if len(epochs) == 1:
            parts.append(f"{were} saved at epoch {epochs.pop()}")
        else:
            each = ", ".join(f"{s['run']} at epoch {s['epoch']}" for s in saved)
            parts.append(f"{were} saved ({each})")
    continued = note.get("continued") or []
    if len(continued) == 1:
        parts.append(f"1 running job continues from its checkpoint at epoch {continued[0]['epoch']}")
    elif continued:
        epochs = sorted({c["epoch"] for c in continued})
        at = f" at epoch {epochs[0]}" if len(epochs) == 1 else ""
        parts.append(f"{len(continued)} running jobs continue from their checkpoints{at}")
    restarted = int(note.get("restarted") or 0)
    if restarted:
        parts.append(f"{_plural(restarted, 'running job starts', 'running jobs start')} again from the "
                     "beginning (no checkpoint yet)")
    lost = int(note.get("lost") or 0)
    if lost:
        parts.append(f"{_plural(lost, 'running job was', 'running jobs were')} stopped before "
                     f"{'its' if lost == 1 else 'their'} first epoch, so nothing of {'it' if lost == 1 else 'them'} was kept")
    restored = int(note.get("restored") or 0)
    if restored:
        parts.append(f"{_plural(restored, 'queued run was', 'queued runs were')} restored")
    if not parts:
        return "The server restarted; no job was running or queued."
    return f"The server restarted: {', '.join(parts)}."


def install_shutdown_hook(shutdown: Callable[[], object]) -> None:
    """Run `shutdown` (a bound method: held weakly) when the process ends normally or on
    SIGTERM/SIGINT; see the module notes for why atexit carries it in the app."""
    ref = weakref.WeakMethod(shutdown) if hasattr(shutdown, "__self__") else (lambda: shutdown)

    def run() -> None:
        fn = ref()
        if fn is not None:
            try:
                fn()
            except Exception:  # shutting down: nothing above to report to
                pass

    atexit.register(run)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum, frame, previous=previous):
            run()
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        signal.signal(sig, handler)
