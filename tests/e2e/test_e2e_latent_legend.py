"""The Latent space page at 1400×900, as a student's laptop and a projector show it: the colour
legend of the scatter is in sight without scrolling (issue 21: below the fold at 900 px, and in
projector mode half of the chart was too). The run is trained beforehand with the CLI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from lab import keyed
from streamlit_ui import RERUN_TIMEOUT_MS, TRAINING_TIMEOUT_MS, assert_no_traceback, wait_for_script

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN = "legend-z2"
WINDOW = {"width": 1400, "height": 900}
LEGEND_BOX = """scope => {
    const legend = scope.querySelector('svg.marks g.role-legend');
    if (!legend) return null;
    const box = legend.getBoundingClientRect();
    return {top: box.top, bottom: box.bottom, labels: [...legend.querySelectorAll('text')].map(t => t.textContent)};
}"""


def train_with_cli(checkpoints) -> None:
    done = subprocess.run([sys.executable, "-m", "core.cli", "train", "--dataset", "digits", "--model", "conv-small",
                           "--latent", "2", "--epochs", "1", "--device", "cpu", "--name", RUN, "--out", str(checkpoints)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("projector", [False, True])
def test_the_latent_legend_is_in_sight_at_900_px(start_app, new_page, shot, projector):
    server = start_app(max_jobs=1)
    train_with_cli(server.checkpoints)
    page = new_page()
    page.set_viewport_size(WINDOW)
    page.goto(f"{server.url}/latent?run={RUN}" + ("&projector=1" if projector else ""))
    wait_for_script(page, timeout=TRAINING_TIMEOUT_MS)  # a fresh server encodes the test set first
    scatter = keyed(page, "latent_scatter")
    expect(scatter.locator("svg.marks g.role-legend")).to_be_attached(timeout=RERUN_TIMEOUT_MS)
    legend = scatter.evaluate(LEGEND_BOX)
    assert legend is not None and [str(d) for d in range(10)] == [t for t in legend["labels"] if t.isdigit()]
    assert 0 <= legend["top"] and legend["bottom"] <= WINDOW["height"], legend
    assert_no_traceback(page)
    shot(page, f"latent-legend{'-projector' if projector else ''}")
