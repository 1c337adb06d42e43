"""The datasets a served app keeps in memory, shared by every session and job.

One load per dataset: while a dataset loads, everyone else who asks for it waits for that load
instead of starting their own (thirty students opening MNIST at once parse it once). A failed load
is raised to everyone who waited for it and remembered by no one, so fixing the folder and trying
again works. The store reads data only where the server allows, within its limits (core.serving).
"""
from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Callable

from core.config import DataConfig, RunConfig
from core.data import DataError, Dataset, load_dataset
from core.serving.limits import WorkLimits, check_data
from core.serving.roots import hide_root_paths, served_data_config

logger = logging.getLogger(__name__)

# Loaded datasets kept in memory (each is at most a few hundred MB of uint8 tensors).
MAX_CACHED_DATASETS = 4


class DatasetStore:
    """The last few loaded datasets, keyed by their DataConfig; get() is safe from any thread."""

    def __init__(self, max_items: int = MAX_CACHED_DATASETS,
                 shown_names: Callable[[list[str]], list[str]] | None = None) -> None:
        """shown_names: what a loaded dataset's class names become (the app's: without control
        or bidi characters, ui.text.plain_names)."""
        self.shown_names = shown_names
        self.lock = threading.Lock()
        self.max_items = max_items
        self.items: OrderedDict[str, Dataset] = OrderedDict()
        self._loading: dict[str, Future] = {}  # key -> the load in progress

    def get(self, data_cfg: DataConfig, progress: Callable[[int, int], None] | None = None) -> Dataset:
        """The dataset for data_cfg: from memory, from a load in progress (waited for: `progress`
        is the loader's only), or loaded now. DataError (one sentence) when it cannot be."""
        try:
            load_cfg = served_data_config(data_cfg)  # a CLI run's folder inside the roots is named by its root
            check_data(load_cfg, WorkLimits.from_env())
        except ValueError as exc:  # FolderError, LimitError: the pages show DataErrors
            raise DataError(str(exc)) from None
        key = RunConfig(data=data_cfg).to_json()
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
            loading = self._loading.get(key)
            if loading is None:
                future = self._loading[key] = Future()
        if loading is not None:
            logger.debug("waiting for the load of %s already in progress", data_cfg.dataset)
            return loading.result()
        try:
            dataset = self._load(load_cfg, progress)
            if self.shown_names is not None:
                dataset.class_names = self.shown_names(dataset.class_names)
        except BaseException as exc:
            with self.lock:
                del self._loading[key]
            future.set_exception(exc)
            raise
        with self.lock:  # in memory before the load is forgotten: no moment without either
            self.items[key] = dataset
            while len(self.items) > self.max_items:
                self.items.popitem(last=False)
            del self._loading[key]
        future.set_result(dataset)
        return dataset

    @staticmethod
    def _load(load_cfg: DataConfig, progress) -> Dataset:
        try:
            dataset = load_dataset(load_cfg, progress)
        except DataError as exc:  # a torchvision folder inside a root is named by the root, not its path
            raise DataError(hide_root_paths(str(exc))) from None
        dataset.source = hide_root_paths(dataset.source)
        return dataset

    def forget_folder(self, folder_root: str, folder: str) -> None:
        """Drop every loaded copy of the folder dataset root/folder (it was deleted); jobs that
        are training on it keep their own reference."""
        with self.lock:
            for key in list(self.items):
                data = json.loads(key)["data"]
                if data.get("dataset") == "folder" and data.get("folder_root") == folder_root \
                        and str(data.get("folder", "")).strip("/") == folder.strip("/"):
                    del self.items[key]
