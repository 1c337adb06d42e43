"""What a server restart must not lose: the queue and the runs in progress.

On SIGTERM/SIGINT the app's registry stops its running jobs at the end of the current batch (they
save as stopped runs when at least one epoch finished) and writes its queue to
<checkpoints>/.server-state.json (atomically: a temporary file renamed over it). The next registry
on that folder reads the file once, queues those jobs again under their old ids and owners, and
keeps a one-sentence note for the page. What a save, overwrite, delete or import killed halfway
left behind is finished or removed when the next server starts (clean_leftovers).

How the hook is installed: signal.signal() works only on the main thread, and a Streamlit script
(where the app creates its registry) runs on a script thread. Streamlit's own SIGTERM/SIGINT
handler stops the server, after which the main thread returns and the interpreter runs its
atexit callbacks, on the main thread, while the daemon job threads still run. So the app registers
the shutdown with atexit; a caller that is on the main thread (a script, the CLI) also gets a
signal handler that runs the shutdown and then the handler it replaced.
"""
from __future__ import annotations

import atexit
import json
import os
import signal
import threading
import weakref
from pathlib import Path
from typing import Callable

from core.atomic import write_json

STATE_FILE = ".server-state.json"
STATE_VERSION = 1
# A save in progress in another process (a CLI next to the app) has a young temporary folder; only
# folders left alone this long are taken for the leftovers of a killed save.
LEFTOVER_AGE_S = 120.0


def write_state(root, state: dict) -> Path:
    """Write the state file atomically (temporary file, fsync, rename over the old one)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return write_json(root / STATE_FILE, {"version": STATE_VERSION, **state}, sort_keys=False)


def take_state(root) -> dict | None:
    """Read and remove the state file (it is acted on once); None when there is none or it is
    damaged (a damaged one is moved aside as .server-state.json.damaged, not acted on)."""
    path = Path(root) / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError):
        state = None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        try:
            os.replace(path, path.with_name(STATE_FILE + ".damaged"))
        except OSError:
            pass
        return None
    try:
        path.unlink()
    except OSError:
        pass
    return state


def clean_leftovers(root, older_than: float = LEFTOVER_AGE_S) -> list[str]:
    """Finish what a killed save, overwrite, delete or import left in the checkpoints folder,
    for folders untouched for `older_than` seconds (core.checkpoints.recover_leftovers: a complete
    new run is put in place, a replaced run whose successor never arrived is put back, the rest
    removed); returns the folders acted on."""
    from core.checkpoints import recover_leftovers  # the save protocol's own knowledge

    return recover_leftovers(root, older_than)


def restart_message(note: dict) -> str:
    """One sentence, e.g. "The server restarted: 2 runs were saved at epoch 12, 3 queued runs were
    restored." `note`: {"saved": [{"run", "epoch"}], "lost": int, "restored": int}."""
    parts = []
    saved = note.get("saved") or []
    if saved:
        epochs = {s["epoch"] for s in saved}
        were = "run was" if len(saved) == 1 else "runs were"
        if len(epochs) == 1:
            parts.append(f"{len(saved)} {were} saved at epoch {epochs.pop()}")
        else:
            each = ", ".join(f"{s['run']} at epoch {s['epoch']}" for s in saved)
            parts.append(f"{len(saved)} {were} saved ({each})")
    lost = int(note.get("lost") or 0)
    if lost:
        parts.append(f"{lost} running job{' was' if lost == 1 else 's were'} stopped before "
                     f"{'its' if lost == 1 else 'their'} first epoch, so nothing of {'it' if lost == 1 else 'them'} was kept")
    restored = int(note.get("restored") or 0)
    if restored:
        parts.append(f"{restored} queued run{' was' if restored == 1 else 's were'} restored")
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
