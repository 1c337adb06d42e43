"""The Classifier page in AppTest, on the tiny digits runs: Train starts a probe job in the
server's registry; once it is done the page shows its accuracy, confusion matrix and most
confused examples; Stop ends a long one; without runs the page links to Train."""
from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from ui.state import SELECTED_RUN_KEY, get_registry

from apptest_helpers import chart_frames, open_app_page

PAGE = "views/classifier.py"
RUN = "tiny-denoise"  # a plain conv AE with a 4-D code
JOB_TIMEOUT_S = 60


def open_page(run_name: str | None) -> AppTest:
    return open_app_page(PAGE, {SELECTED_RUN_KEY: run_name} if run_name else {})


def start_probe(at: AppTest, epochs: int) -> str:
    """Train with the encoder fine-tuned: the tiny run's 2-epoch codes alone know little of the
    class, and fine-tuning on digits reaches a clear accuracy within a few epochs."""
    at.number_input(key="classifier_epochs").set_value(epochs)
    at.number_input(key="classifier_lr").set_value(0.01)
    at.checkbox(key="classifier_fine_tune").check()
    at.button(key="classifier_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at.session_state["classifier_jobs"][RUN]["fine-tuned"]


def test_train_classifier_then_results(app_runs, digits):
    at = open_page(RUN)
    assert any("No classifier for this run yet" in i.value for i in at.info)
    job = get_registry().wait(start_probe(at, epochs=5), timeout=JOB_TIMEOUT_S)
    assert job.status == "finished", job.message
    at.run()
    assert not at.exception, [e.value for e in at.exception]

    test_size = len(digits.split("test")[1])
    accuracy = float(at.metric[0].value.rstrip("%")) / 100
    assert at.metric[0].label == "Test accuracy, fine-tuned encoder"
    assert accuracy > 2 / digits.num_classes  # well above chance (10 %)

    confusion = [t for t in chart_frames(at) if {"true", "predicted", "count"} <= set(t.columns)]
    assert len(confusion) == 1
    table = confusion[0]
    names = [str(d) for d in range(10)]
    assert sorted(table["true"].unique()) == names and sorted(table["predicted"].unique()) == names
    assert table["count"].sum() == test_size
    correct = table.loc[table["true"] == table["predicted"], "count"].sum()
    assert abs(correct / test_size - accuracy) < 0.001  # the metric and the matrix agree

    per_class = [t for t in chart_frames(at) if {"class", "accuracy"} <= set(t.columns)]
    assert len(per_class) == 1 and sorted(per_class[0]["class"]) == names

    confused = [c for im in at.get("image") for c in im.captions if "→" in c]
    wrong = round((1 - accuracy) * test_size)
    assert 0 < len(confused) <= min(wrong, 16)
    for caption in confused:
        match = re.fullmatch(r"(\d) → (\d) \((\d+)%\)", caption)
        assert match, caption
        assert match[1] != match[2]

    # A new browser session (a reload) finds the finished probe in the server's registry.
    reloaded = open_page(RUN)
    assert reloaded.metric[0].value == at.metric[0].value and reloaded.metric[0].label == "Test accuracy"


def test_frozen_and_fine_tuned_results_side_by_side(app_runs):
    """Issue 21: the fine-tuned result replaced the frozen one; the homework compares the two."""
    at = open_page(RUN)
    at.number_input(key="classifier_epochs").set_value(3)
    at.button(key="classifier_train_both").click().run()
    jobs = at.session_state["classifier_jobs"][RUN]
    assert set(jobs) == {"frozen", "fine-tuned"}
    for job_id in jobs.values():
        assert get_registry().wait(job_id, timeout=JOB_TIMEOUT_S).status == "finished"
    at.run()
    side = at.main.get_by_key("classifier_side_by_side")
    labels = [m.label for m in side.get("metric")]
    assert labels == ["Test accuracy, frozen encoder", "Test accuracy, fine-tuned encoder"]
    confusions = [t for t in chart_frames(side) if {"true", "predicted", "count"} <= set(t.columns)]
    assert len(confusions) == 2  # one matrix each
    values = [float(m.value.rstrip("%")) for m in side.get("metric")]
    said = next(c.value for c in at.caption if c.value.startswith("Fine-tuning the encoder"))
    stated = float(said.split(" of accuracy")[0].split()[-1].rstrip("%"))
    assert abs(stated - abs(values[1] - values[0])) <= 0.11  # the difference the two metrics show


def test_stop_ends_a_running_classifier(app_runs):
    at = open_page(RUN)
    job_id = start_probe(at, epochs=200)
    # While it runs, Train is disabled and Stop is offered (a full run renders the fragment once).
    assert at.button(key="classifier_train").disabled
    at.button(key="classifier_stop_fine-tuned").click().run()
    job = get_registry().wait(job_id, timeout=JOB_TIMEOUT_S)
    assert job.status == "stopped"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.button(key="classifier_train").disabled
    assert [w.value for w in at.warning] == [job.message]


def test_no_runs_links_to_train(no_runs):
    at = open_page(None)
    assert any("No trained run yet" in i.value for i in at.info)
    assert [link.label for link in at.main.get("page_link")] == ["Go to Train"]
    assert not at.get("vega_lite_chart")
