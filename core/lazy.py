"""Names a package exports but imports only when first used (PEP 562 module __getattr__).

PyTorch, scikit-learn and the like take seconds to import on a small machine; the app's first page
needs none of them. A package whose light names (errors, constants, listing) are wanted early keeps
those as plain imports and lists its heavy ones here:

    __getattr__, __dir__ = lazy_exports(__name__, {"core.checkpoints.load": ("Run", "load_run")})

`from package import load_run` then imports core.checkpoints.load on that line, not with the package.
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable, Iterable


def lazy_exports(package: str, modules: dict[str, Iterable[str]]) -> tuple[Callable, Callable]:
    """The (__getattr__, __dir__) pair for `package` whose names in modules' values come from the
    module named by their key, imported on first access and then kept in the package's namespace."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
