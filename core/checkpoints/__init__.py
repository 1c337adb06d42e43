"""Save, load, list and delete runs under a checkpoints folder.

One folder per run, root/<name>/:
    config.json   RunConfig.to_json(); its model part has the data shape filled in, so it alone
                  rebuilds the exact model
    weights.pt    the model's state_dict (torch.save; read back with weights_only=True)
    metrics.json  {"history": [EpochRecord as dict], "batch_losses": [...], "test_metrics": {...}}
    film.pt       {"originals": uint8 N×C×H×W, "frames": uint8 F×N×C×H×W} (plain tensors only)
    info.json     status, message, device, created (ISO time), seconds, epochs_run, owner (the
                  owner key of the student it belongs to; absent: the teacher's), + extra info
    resume.pt     {"model": last weights, "optimizer": state_dict, "shuffle_rng", "noise_rng"}
                  (plain tensors and numbers); absent for a diverged run or an older save

The parts: names (valid names, atomic reservation), save (save, overwrite, delete, recovery after
a kill), files (size-capped, type-checked reading of a run's files), load (a run back as a model),
listing (one cached row per run).
"""
from core.checkpoints.files import MAX_METRICS_BYTES
from core.checkpoints.listing import list_runs, run_summary
from core.checkpoints.names import (CHECKPOINTS_ENV, CONFIG_FILE, DEFAULT_ROOT, FILM_FILE, INFO_FILE, METRICS_FILE,
                                    RESUME_FILE, RUN_FILES, WEIGHTS_FILE, CheckpointError, check_name,
                                    checkpoints_root, default_run_name, describe_model, reserve_run_name, taken_note,
                                    valid_run_name)
from core.checkpoints.save import delete_run, recorded_owner, recover_leftovers, save_run
from core.lazy import lazy_exports

# Loading a run builds its model, which needs PyTorch (seconds to import on a small machine): that module
# loads on first use, so `from core.checkpoints import list_runs` (every page's sidebar) loads no PyTorch.
__getattr__, __dir__ = lazy_exports(__name__, {
    "core.checkpoints.load": ("Run", "load_history", "load_resume", "load_run"),
})

__all__ = [
    "CHECKPOINTS_ENV", "CONFIG_FILE", "CheckpointError", "DEFAULT_ROOT", "FILM_FILE", "INFO_FILE",
    "MAX_METRICS_BYTES", "METRICS_FILE", "RESUME_FILE", "RUN_FILES", "Run", "WEIGHTS_FILE", "check_name",
    "checkpoints_root", "default_run_name", "delete_run", "describe_model", "list_runs", "load_history",
    "load_resume", "load_run", "recorded_owner", "recover_leftovers", "reserve_run_name", "run_summary",
    "save_run", "taken_note", "valid_run_name",
]
