"""The training loop as a small package: setup (core.train.setup), the step (core.train.step:
eager or CUDA graph), the epochs and the finish (core.train.loop), validation and test metrics
(core.train.metrics). Everything callers use is importable from here."""
from core.lazy import lazy_exports
from core.train.results import EpochRecord, ResumeFrom, TrainReporter, TrainResult, zero_learning_rate_note

# Everything but the records needs PyTorch: imported on first use (core.lazy), so a page that reads a
# job's epochs does not wait for it.
__getattr__, __dir__ = lazy_exports(__name__, {
    "core.models": ("MIN_KL_VALUES",),
    "core.train.devices": ("available_devices", "device_label", "inference_batch_size", "resolve_device"),
    "core.train.images": ("add_noise", "channel_means", "epoch_batches", "to_float"),
    "core.train.loop": ("train",),
    "core.train.metrics": ("evaluate",),
    "core.train.setup": ("SEED_LOCK", "RpropWithWeightDecay", "make_optimizer"),
    "core.train.step": ("ACCELERATOR_SYNC_EVERY", "CAPTURABLE_OPTIMIZERS", "FLUSH_SECONDS"),
})

__all__ = ["ACCELERATOR_SYNC_EVERY", "CAPTURABLE_OPTIMIZERS", "FLUSH_SECONDS", "MIN_KL_VALUES", "SEED_LOCK",
           "EpochRecord", "ResumeFrom", "RpropWithWeightDecay", "TrainReporter", "TrainResult", "add_noise",
           "available_devices", "channel_means", "device_label", "epoch_batches", "evaluate",
           "inference_batch_size", "make_optimizer", "resolve_device", "to_float", "train",
           "zero_learning_rate_note"]
