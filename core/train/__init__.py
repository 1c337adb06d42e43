"""The training loop as a small package: setup (core.train.setup), the step (core.train.step:
eager or CUDA graph), the epochs and the finish (core.train.loop), validation and test metrics
(core.train.metrics). Everything callers use is importable from here."""
from core.models import MIN_KL_VALUES
from core.train.devices import available_devices, device_label, inference_batch_size, resolve_device
from core.train.images import add_noise, channel_means, epoch_batches, to_float
from core.train.loop import train
from core.train.metrics import evaluate
from core.train.results import EpochRecord, ResumeFrom, TrainReporter, TrainResult, zero_learning_rate_note
from core.train.setup import SEED_LOCK, RpropWithWeightDecay, make_optimizer
from core.train.step import ACCELERATOR_SYNC_EVERY, CAPTURABLE_OPTIMIZERS, FLUSH_SECONDS

__all__ = ["ACCELERATOR_SYNC_EVERY", "CAPTURABLE_OPTIMIZERS", "FLUSH_SECONDS", "MIN_KL_VALUES", "SEED_LOCK",
           "EpochRecord", "ResumeFrom", "RpropWithWeightDecay", "TrainReporter", "TrainResult", "add_noise",
           "available_devices", "channel_means", "device_label", "epoch_batches", "evaluate",
           "inference_batch_size", "make_optimizer", "resolve_device", "to_float", "train",
           "zero_learning_rate_note"]
