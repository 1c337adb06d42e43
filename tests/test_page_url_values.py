"""Hostile or out-of-range values in each page's own URL parameters (a shared or forged link):
every page opens without a traceback or an error box, falls back to its default for what it
cannot use, and never puts the bad value back into the URL."""
from __future__ import annotations

import pytest

from test_lesson_state import open_with_url, param

MARKUP = "![x](http://127.0.0.1:9/t.png)"
# "0" is a value mine= takes (off); from_run= is read only once "a saved run's settings" is chosen.
VALID = {("mine", "0")}
READ_LATER = {"from_run"}
HOSTILE = ["-5", "99999999999999999999", "nan", "../../etc/passwd", MARKUP, "a,b,,c\x00"]


@pytest.fixture
def one_experiment(app_runs):
    """The tiny runs and one finished experiment of two runs, for the Experiments page to show."""
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from core.experiments import ExperimentConfig, ExperimentManager
    from core.jobs import JobRegistry

    base = RunConfig(data=DataConfig(dataset="digits", limit=150), model=ModelConfig(family="dense", hidden=[8]),
                     train=TrainConfig(epochs=1, batch_size=32, device="cpu"))
    manager = ExperimentManager(JobRegistry(root=app_runs), poll_seconds=0.02)
    name = manager.start(ExperimentConfig(name="latents", base=base, grid={"model.latent": [2, 3]}))
    assert manager.wait(name, timeout=120)["status"] == "finished"
    return app_runs


@pytest.mark.parametrize("page, name", [
    ("views/reconstructions.py", "count"),
    ("views/reconstructions.py", "with"),
    ("views/runs.py", "compare"),
    ("views/runs.py", "curve"),
    ("views/runs.py", "x"),
    ("views/runs.py", "mine"),
    ("views/runs.py", "experiments"),
    ("views/runs.py", "datasets"),
    ("views/experiments.py", "experiment"),
    ("views/experiments.py", "from_run"),
    ("views/lessons.py", "lesson"),
    ("views/lessons.py", "step"),
])
def test_a_pages_parameter_with_a_hostile_value_falls_back_to_its_default(one_experiment, page, name):
    for value in HOSTILE:
        at = open_with_url(page, {name: value, "run": "tiny-conv"})  # fails on an exception or an error box
        if name not in READ_LATER and (name, value) not in VALID:
            assert param(at, name) != value, (name, value)  # the bad value is not kept in the URL
        assert not [m.value for m in at.markdown if "127.0.0.1:9" in m.value and "![" not in m.value]
