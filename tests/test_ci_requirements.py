"""A requirement the tests cannot import skips on a developer's machine and fails under CI, whether
it is missing or broken (Ray is a requirement: its tests must not turn into skips in CI)."""
from __future__ import annotations

import sys

import pytest

from ci_requirements import require_module


@pytest.fixture
def broken_module(tmp_path, monkeypatch):
    (tmp_path / "broken_requirement_xyz.py").write_text("raise RuntimeError('half-installed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "broken_requirement_xyz"
    sys.modules.pop("broken_requirement_xyz", None)


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_missing_or_broken_requirement_fails_under_ci(monkeypatch, broken_module, ci):
    monkeypatch.setenv("CI", ci)
    for name in ("no_such_requirement_xyz", broken_module):
        with pytest.raises(pytest.fail.Exception, match="CI=true"):
            require_module(name)


def test_a_missing_or_broken_requirement_skips_elsewhere(monkeypatch, broken_module):
    monkeypatch.delenv("CI", raising=False)
    for name in ("no_such_requirement_xyz", broken_module):
        with pytest.raises(pytest.skip.Exception, match=name):
            require_module(name)
    assert require_module("json").dumps([1]) == "[1]"
