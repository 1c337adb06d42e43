"""A student follows a lesson in a real browser: picks it on the Lessons page, runs a step (its
live view, then its figures on the same page), clicks the 2-D code plane, answers every kind of
question, trains a step's classifiers, hands in, downloads the report and opens it offline, where
every figure shows. A reload keeps the lesson, the step and the answers."""
from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from lab import keyed
from lesson_files import TINY_LESSON, write_lesson
from streamlit_ui import (RERUN_TIMEOUT_MS, TRAINING_TIMEOUT_MS, assert_no_traceback, choose, expect_images_loaded,
                          main, open_app, report_offline, wait_for_script)

LESSON = "tiny"
TITLE = "Tiny latent lesson"


def answer(page, key: str):
    return keyed(page, f"lesson_answer_{LESSON}_{key}")


def test_a_student_follows_a_lesson_hands_in_and_the_report_shows_every_figure_offline(
        start_app, new_page, browser, shot, tmp_path):
    folder = tmp_path / "lesson-files"
    write_lesson(folder, LESSON, TINY_LESSON)
    server = start_app(env={"AE_LAB_LESSON_DIRS": str(folder)})
    page = new_page()
    open_app(page, server.url)
    expect(main(page).get_by_role("heading", name="Lessons", exact=True)).to_be_visible()
    choose(page, "Lesson", TITLE)
    expect(main(page)).to_contain_text("Two code sizes")
    shot(page, "lesson-step-1")

    # Run: the step's two runs train as this student's jobs, live, then its figures appear below.
    main(page).get_by_role("button", name="Run", exact=True).click()
    expect(keyed(page, "lesson_live")).to_contain_text("runs done", timeout=RERUN_TIMEOUT_MS)
    shot(page, "lesson-running")
    figures = keyed(page, "lesson_figures")
    expect(figures).to_contain_text("Loss per epoch of every run", timeout=TRAINING_TIMEOUT_MS)
    wait_for_script(page)
    for title in ("Test MSE of every run", "Test MSE against latent", "The same test images reconstructed",
                  "latent 2: the codes, first two coordinates", "latent 2: what the plane decodes to"):
        expect(figures).to_contain_text(title)
    expect_images_loaded(figures, at_least=2)
    assert_no_traceback(page)
    expect(main(page).get_by_test_id("stAlertContentError")).to_have_count(0)
    shot(page, "lesson-figures")

    # The 2-D plane: a click anywhere decodes that spot beside the chart.
    plane = keyed(page, "lesson_fig_s1-latent-raw-1")
    plane.scroll_into_view_if_needed()
    marks = plane.locator("svg.marks").first
    box = marks.bounding_box()
    marks.click(position={"x": box["width"] * 0.45, "y": box["height"] * 0.4})
    wait_for_script(page)
    expect(plane).to_contain_text("Decoded from (", timeout=RERUN_TIMEOUT_MS)
    expect_images_loaded(plane, at_least=1)
    shot(page, "lesson-plane-clicked")

    # Answers: a choice (compared with the runs), free text, a number; each kept as it is given.
    first = answer(page, "s1q1")
    first.scroll_into_view_if_needed()
    first.get_by_text("8", exact=True).click()
    wait_for_script(page)
    expect(first.locator("xpath=..").get_by_text("Matches your runs.").or_(
        first.locator("xpath=..").get_by_text("Your runs say otherwise", exact=False))).to_be_visible()
    answer(page, "s1q2").locator("textarea").fill("The 8-number code keeps the loops of the 8s.")
    answer(page, "s1q2").locator("textarea").press("Tab")
    wait_for_script(page)
    number = answer(page, "s1q3").locator("input")
    number.fill("2")
    number.press("Enter")
    wait_for_script(page)
    shot(page, "lesson-answers")

    # A reload keeps the lesson, the step and the answers (kept on the server).
    page.reload()
    wait_for_script(page)
    expect(answer(page, "s1q2").locator("textarea")).to_have_value("The 8-number code keeps the loops of the 8s.",
                                                                 timeout=RERUN_TIMEOUT_MS)
    expect(number).to_have_value("2")
    assert f"lesson={LESSON}" in page.url and "step=1" in page.url

    # Step 2 shows classifiers on step 1's runs: trained on request, then their confusion matrices.
    keyed(page, "lesson_step").get_by_text("2 · Classifiers").click()
    wait_for_script(page)
    main(page).get_by_role("button", name="Train the classifiers (2)").click()
    expect(keyed(page, "lesson_figures")).to_contain_text("classifier on the frozen encoder, test accuracy",
                                                          timeout=TRAINING_TIMEOUT_MS)
    wait_for_script(page)
    expect(keyed(page, "lesson_figures").locator(".st-key-lesson_fig_s2-classifier-1 svg.marks")).to_have_count(1)
    shot(page, "lesson-classifiers")

    # Answering step 2's question finishes it ("✓ done" under its name); the student stays on it
    # through the next reruns (a ✓ in the radio's label sent every rerun back to step 1).
    classifier_answer = answer(page, "s2q1")
    classifier_answer.scroll_into_view_if_needed()
    classifier_answer.get_by_text("8", exact=True).click()
    wait_for_script(page)

    # Hand in, then download the report.
    name = main(page).get_by_label("Your name")
    name.fill("Ana Student")
    name.press("Enter")
    wait_for_script(page)
    assert "step=2" in page.url, page.url
    expect(main(page).get_by_role("heading", name="2. Classifiers")).to_be_visible()
    expect(keyed(page, "lesson_step")).to_contain_text("✓ done")
    main(page).get_by_role("button", name="Hand in").click()
    expect(main(page)).to_contain_text("Handed in: your teacher can see it now.", timeout=TRAINING_TIMEOUT_MS)
    shot(page, "lesson-handed-in")
    with page.expect_download(timeout=TRAINING_TIMEOUT_MS) as download:
        main(page).get_by_role("button", name="Report (HTML)").click()
    report = Path(tmp_path / "report.html")
    download.value.save_as(report)
    assert_no_traceback(page)

    # The report, opened with the network off: every figure is inside it and shows.
    with report_offline(browser, report) as (reader, count, broken, requests):
        assert count >= 10, count  # step 1: loss, MSE, answer x2, reconstructions, 2 planes, 2 grids; step 2: 4
        assert not broken, f"figures {broken} do not show"
        assert requests == [report.as_uri()], requests  # nothing fetched: it is self-contained
        body = reader.inner_text("body")
        assert "Handed in by Ana Student" in body and "The 8-number code keeps the loops of the 8s." in body
        reader.evaluate("window.scrollTo(0, 0)")
        reader.screenshot(path=str(shot.folder / "report-top.png"))
        reader.locator("#step-2").scroll_into_view_if_needed()
        reader.screenshot(path=str(shot.folder / "report-step-2.png"))
        reader.locator("#appendix").scroll_into_view_if_needed()
        reader.screenshot(path=str(shot.folder / "report-appendix.png"))
