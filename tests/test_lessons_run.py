"""Each shipped lesson runs end to end on its built-in dataset (every run 1 epoch): every step's
runs are saved, every classifier beats chance, every view draws its figures, every question with an
expected answer gets one among its choices, and the report holds every figure."""
from __future__ import annotations

import json

import pytest
import torch

from core.data import OFFLINE_DATASETS, load_dataset
from core.experiments import ExperimentManager, load_record
from core.jobs import JobRegistry
from core.lessons import lesson_data, read_lesson
from core.lessons.parse import SHIPPED_DIR
from core.lessons.runner import expected_answer, run_lesson, step_record, variant_rows
from core.reports import render_pngs
from core.reports.html import report_html
from core.reports.report import lesson_report

SHIPPED = ["colour-conditional", "dense-mnist", "fashion-latent", "mnist-conv", "photos-size-dropout"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One PyTorch thread: on a CPU that other work shares, two threads waiting on each other made a
    1-epoch run ~60x slower (BENCHMARKS.md, "Lessons")."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def load():
    """load_dataset with every dataset read once for the whole module (as the app's store does)."""
    loaded = {}

    def get(cfg):
        key = json.dumps(cfg.__dict__, sort_keys=True, default=str)
        if key not in loaded:
            loaded[key] = load_dataset(cfg)
        return loaded[key]
    return get


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_lesson_runs_end_to_end_on_its_built_in_data(name, tmp_path, load):
    lesson = read_lesson(SHIPPED_DIR / f"{name}.md")
    data = lesson_data(lesson, load)
    assert data.config.dataset in OFFLINE_DATASETS  # tests never depend on a downloaded dataset
    assert data.fallback == (lesson.dataset != data.config.dataset)
    assert bool(data.note) == data.fallback

    registry = JobRegistry(root=tmp_path, max_concurrent=1, load_data=load)
    manager = ExperimentManager(registry, poll_seconds=0.05)
    summaries = run_lesson(lesson, data, manager, epochs=1)
    assert [s["step"] for s in summaries] == [step.number for step in lesson.steps if step.run]
    for summary in summaries:
        record = load_record(tmp_path, summary["experiment"])
        assert record["status"] == "finished", record["message"]
        assert record["variants"] and all(v["run"] and v["status"] in ("finished", "early_stopped")
                                          for v in record["variants"]), record["variants"]
        assert summary["command"].startswith("python -m core.cli ") and f"--dataset {data.config.dataset}" in \
            summary["command"]

    for step in lesson.steps:
        rows = variant_rows(tmp_path, step_record(tmp_path, lesson, step, "cli"), need_noisy=True, load=load)
        assert (len(rows) > 0) == (step.source is not None), step.title
        if "classifier" in step.show:
            for row in rows:  # ten classes: chance is 10 %
                assert row["probe_accuracy"] is not None and row["probe_accuracy"] > 0.2, row
        for question in step.questions:
            if question.expect is not None:
                found = expected_answer(question.expect, rows)
                assert found is not None, question.ask
                assert found[0] in question.choices, (question.ask, found, question.choices)

    report = lesson_report(tmp_path, lesson, "cli", load, data_note=data.note)
    pngs = render_pngs(report)
    for step, shown in zip(report.steps, lesson.steps):
        assert not step.note, step.note
        if shown.show:
            assert step.figures, step.title
            notes = [f.title for f in step.figures if f.kind == "note"]
            assert not notes, notes  # e.g. "the classifier has not been trained yet"
            assert all(f.key in pngs for f in step.figures)
    html = report_html(report, pngs)
    assert html.count('<img alt="') == len(pngs) > 0
    assert all(run.command.startswith("python -m core.cli train ") for run in report.runs)
    assert len(report.runs) == sum(len(s["runs"]) for s in summaries)
