"""A requirement the tests cannot find: skipped on a developer's machine, a failure under CI
(CI=true), so a missing or broken requirement can never pass CI as a row of skips.

    from ci_requirements import require_module, skip_or_fail
    ray = require_module("ray")   # at module level: the whole module skips (or fails under CI)
"""
from __future__ import annotations

import importlib
import os

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_or_fail(message: str) -> None:
    """Skip (the whole module, when called at import) or, under CI, fail."""
    if under_ci():
        pytest.fail(f"{message} (CI=true: a requirement must be there in CI).", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require_module(name: str):
    """The module `name`; when it is missing or raises on import, skip_or_fail says why."""
    try:
        return importlib.import_module(name)
    except Exception as exc:  # a broken install raises more than ImportError
        skip_or_fail(f"{name} could not be imported ({type(exc).__name__}: {exc}); it is in requirements.txt")
