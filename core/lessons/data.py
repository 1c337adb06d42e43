"""Which data a lesson runs on: the dataset the homework named when this server has it, else the
built-in fallback, said in one sentence (the page shows it above the steps, the report repeats it)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from core.config import DataConfig
from core.data import DataError, Dataset
from core.lessons.model import Lesson

log = logging.getLogger(__name__)

DATASET_TITLES = {"digits": "8×8 handwritten digits", "shapes": "coloured shapes", "mnist": "MNIST",
                  "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


@dataclass
class LessonData:
    config: DataConfig  # what the steps train on
    options: str  # its data options, in the CLI's syntax (they go into every reproducing command)
    dataset: Dataset
    fallback: bool  # True: the named dataset is not on this server
    note: str  # "" or the sentence saying which data replaced which

    @property
    def train_images(self) -> int:
        return int(self.dataset.splits["train"].numel())


def named_data(lesson: Lesson) -> DataConfig:
    """The DataConfig of the dataset the lesson names (a folder by its data root and path inside)."""
    if lesson.dataset == "folder":
        root, _, relative = lesson.folder.strip("/").partition("/")
        return DataConfig(dataset="folder", folder_root=root, folder=relative)
    return DataConfig(dataset=lesson.dataset)


def lesson_data(lesson: Lesson, load: Callable[[DataConfig], Dataset],
                data_folders: Callable[[str], list[str]] | None = None) -> LessonData:
    """The data the lesson runs on here: `load` (the app's shared dataset store, or load_dataset)
    is tried on the named dataset, in the default data folder and then in each folder
    `data_folders(dataset)` names (the served app's: torchvision folders inside its data roots),
    then the fallback. A DataError of the fallback itself propagates."""
    from dataclasses import replace

    from core.lessons.runspec import base_config

    named = base_config(named_data(lesson), lesson.data).data
    others = [f for f in (data_folders(lesson.dataset) if data_folders else []) if f != named.data_root]
    for candidate in [named] + [replace(named, data_root=folder) for folder in others]:
        try:
            return LessonData(candidate, lesson.data, load(candidate), False, "")
        except DataError as exc:
            log.info("lesson %s: %s is not in %s (%s)", lesson.name, lesson.dataset, candidate.data_root, exc)
    log.info("lesson %s: %s is not here; using %s", lesson.name, lesson.dataset, lesson.fallback)
    fallback = base_config(DataConfig(dataset=lesson.fallback), lesson.fallback_data).data
    named_title = f"the folder {lesson.folder}" if lesson.dataset == "folder" else DATASET_TITLES[lesson.dataset]
    note = (f"This lesson was written for {named_title}, which this server does not have, so it "
            f"runs on the built-in {DATASET_TITLES[lesson.fallback]} instead: the steps and questions work the "
            "same, the pictures are smaller.")
    return LessonData(fallback, lesson.fallback_data, load(fallback), True, note)
