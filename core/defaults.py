"""Training defaults fitted to the data: a batch size and a number of epochs chosen from the size
of the training set, with the reason in words for the Train page, and a warning when a run would
make too few optimiser steps per epoch to learn anything in a lesson's time.

The rule: a model learns per optimiser step, not per epoch. ~200 photos in batches of 128 make 2
steps an epoch, and 10 epochs (20 steps) leave every reconstruction at the starting guess.
So the batch shrinks until an epoch makes about TARGET_STEPS_PER_EPOCH steps (never below
MIN_BATCH, where the gradient gets too noisy and the GPU idles; never above MAX_BATCH, the homework's
128), and the epochs grow until the run makes about TARGET_TOTAL_STEPS steps (between MIN_EPOCHS
and MAX_EPOCHS). Measured in bench/small_folder.py: on a generated folder of 300 64-px colour
photos the defaults reach a test MSE well below the mean image's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

TARGET_STEPS_PER_EPOCH = 20
MIN_BATCH, MAX_BATCH = 16, 128
TARGET_TOTAL_STEPS = 500
MIN_EPOCHS, MAX_EPOCHS = 10, 60
# Below this many optimiser steps per epoch a run is mostly waiting for the epoch's validation.
FEW_STEPS_PER_EPOCH = 10


@dataclass(frozen=True)
class TrainingDefaults:
    batch_size: int
    epochs: int
    steps_per_epoch: int
    reason: str  # one or two plain sentences for the page, next to the fields


def steps_per_epoch(train_images: int, batch_size: int) -> int:
    """Optimiser steps in one epoch (the last, smaller batch counts; full-batch is one step)."""
    return max(1, math.ceil(train_images / max(1, min(batch_size, max(train_images, 1)))))


def suggested_training(train_images: int) -> TrainingDefaults:
    """The default batch size and epochs for a training split of `train_images` images."""
    count = max(1, int(train_images))
    # The largest power of two that still gives TARGET_STEPS_PER_EPOCH steps, within the bounds.
    batch = 1 << max(0, int(math.log2(max(1, count // TARGET_STEPS_PER_EPOCH))))
    batch = min(MAX_BATCH, max(MIN_BATCH, batch))
    steps = steps_per_epoch(count, batch)
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TARGET_TOTAL_STEPS / steps)))
    reason = (f"{count:,} training images in batches of {batch} make {steps:,} optimiser steps per epoch; "
              f"{epochs} epochs make {steps * epochs:,} steps in all. A model learns per step, so small "
              f"datasets get smaller batches and more epochs (aim: about {TARGET_STEPS_PER_EPOCH} steps "
              f"per epoch and {TARGET_TOTAL_STEPS:,} in all).")
    return TrainingDefaults(batch, epochs, steps, reason)


def few_steps_warning(train_images: int, batch_size: int) -> str | None:
    """One sentence when a run would make fewer than FEW_STEPS_PER_EPOCH steps per epoch."""
    steps = steps_per_epoch(train_images, batch_size)
    if steps >= FEW_STEPS_PER_EPOCH:
        return None
    return (f"Only {steps} optimiser step{'s' if steps != 1 else ''} per epoch ({train_images:,} training "
            f"images, batch {batch_size}): the model will barely learn; use a smaller batch or more epochs.")
