"""Walk the shipped homeworks (lessons/*.md) end to end in Chromium, as a student does, and keep
screenshots and numbers for a person to look at. A manual tool, not a pytest test:

    .venv/bin/python tests/e2e/walk_homeworks.py [lesson ...] [--work DIR] [--photos crops|generated]
        [--steps 1,5] [--out DIR] [--threads 1]

Lessons run one after the other on one server (each a new student); the server runs with
OMP_NUM_THREADS=1 as the e2e tests do (--threads '' leaves PyTorch's default), everything else at
the app's defaults. A step that shows the 2-D code plane is clicked once per plane.

It starts `streamlit run app.py` with a fresh checkpoints folder, real MNIST where the machine has it
(AE_LAB_DATA_DIRS, default ../shared/data/MNIST-10k beside the checkout), and an app data folder holding `photos/`
(crops of the two photographs scikit-learn ships, bench/spatial.py; or bench/photo_folder.py's
generated photo-like pictures). Then, per lesson, a new student: picks the lesson, notes which data
the page says it runs on, and for each step presses Run (or trains the classifiers), waits for the
figures (generous timeouts: a CPU trains for minutes), screenshots them (a tall whole-step shot, a
1400×900 projector-sized shot of the first figure, and each figure on its own), reads the numbers the
charts carry (Vega's aria-labels), answers every question (a choice with an expected answer: the
option the step's saved runs say, read from the experiment record on disk; the page's verdict is
recorded), hands in with a name and downloads the HTML report, which is opened offline and shot.

Everything goes into artifacts/homework-walk/<lesson>/ (PNG, walk.json, report.html, server.log).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from bench.app_start import served  # noqa: E402  (start and stop `streamlit run` as the bench does)
from lab import keyed  # noqa: E402
from streamlit_ui import RERUN_TIMEOUT_MS, choose, main, open_app, report_offline, wait_for_script  # noqa: E402

OUT = REPO / "artifacts" / "homework-walk"
VIEWPORT = {"width": 1400, "height": 900}
LESSONS = ["colour-conditional", "fashion-latent", "photos-size-dropout", "mnist-conv", "dense-mnist"]
STEP_TIMEOUT_S = 20 * 60
FIGURES_TIMEOUT_MS = 10 * 60_000
MNIST = str(REPO.parent / "shared" / "data" / "MNIST-10k")  # ../shared beside the checkout
STUDENT = "Walk Student"
# Choice questions without an expected answer: what the figures should show (checked by eye).
BY_EYE = {("colour-conditional", "s3q1"): "16"}
TEXT_ANSWERS = "Walked by the script; see the screenshots for what the figures show."


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


# ---------------------------------------------------------------- the server

def write_photos(data: Path, kind: str) -> None:
    photos = data / "photos"
    if photos.exists():
        return
    if kind == "crops":
        from bench.spatial import write_photo_crops
        write_photo_crops(photos, per_class=100, size=64)
    else:
        from bench.photo_folder import write_photo_folder
        write_photo_folder(photos, per_class=150, size=64)


def server_env(work: Path, threads: str | None) -> dict:
    """The server's environment: a fresh checkpoints folder, the photos in its data folder, MNIST."""
    env = {**os.environ, "AE_LAB_CHECKPOINTS": str(work / "checkpoints"), "AE_LAB_DATA_DIR": str(work / "data"),
           "AE_LAB_DATA_DIRS": os.environ.get("WALK_DATA_DIRS", MNIST), "PYTHONUNBUFFERED": "1"}
    if threads:
        env["OMP_NUM_THREADS"] = threads
    return env


# ---------------------------------------------------------------- what the page shows

class Shots:
    def __init__(self, folder: Path):
        self.folder = folder
        self.count = 0
        self.paths: list[str] = []

    def name(self, label: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', label)[:80]}.png"
        self.paths.append(str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path))
        return path

    def view(self, page: Page, label: str) -> Path:
        """What a 1400×900 projector shows right now."""
        path = self.name(label)
        page.screenshot(path=str(path))
        return path

    def tall(self, page: Page, label: str) -> Path:
        """The whole page: Streamlit scrolls inside its own container, so full_page does not see below
        the fold; the viewport is made as tall as the content for the shot, then set back."""
        height = page.evaluate("""() => {
            const el = document.querySelector('[data-testid=stMainBlockContainer]') ||
                       document.querySelector('[data-testid=stMain]');
            return el ? el.scrollHeight + 120 : 900; }""")
        page.set_viewport_size({"width": VIEWPORT["width"], "height": int(min(max(height, 900), 14000))})
        page.wait_for_timeout(1500)
        path = self.name(label)
        page.screenshot(path=str(path))
        page.set_viewport_size(VIEWPORT)
        page.wait_for_timeout(800)
        return path

    def element(self, locator, label: str) -> Path | None:
        path = self.name(label)
        try:
            # Streamlit's header floats over the top of the page: scroll the element clear of it.
            locator.evaluate("""e => { const tall = e.getBoundingClientRect().height > window.innerHeight - 160;
                                      e.scrollIntoView({block: tall ? 'start' : 'center'});
                                      if (tall) { let s = e.parentElement;
                                                  while (s && !(s.scrollHeight > s.clientHeight + 5 &&
                                                         /auto|scroll/.test(getComputedStyle(s).overflowY)))
                                                      s = s.parentElement;
                                                  (s || window).scrollBy(0, -80); } }""")
            locator.page.wait_for_timeout(400)
            locator.screenshot(path=str(path))
            return path
        except Exception as exc:  # noqa: BLE001 - a shot that fails is noted, the walk goes on
            log("  element shot failed:", label, exc)
            self.paths.pop()
            return None


def problems_on_page(page: Page) -> list[str]:
    found = []
    if page.get_by_test_id("stException").count():
        found.append("exception box: " + page.get_by_test_id("stException").first.inner_text()[:400])
    body = page.inner_text("body")
    if "Traceback" in body:
        found.append("'Traceback' in the page text")
    for alert in main(page).get_by_test_id("stAlertContentError").all():
        found.append("error box: " + alert.inner_text()[:400])
    for alert in main(page).get_by_test_id("stAlertContentWarning").all():
        text = alert.inner_text()
        if "Your runs say otherwise" not in text:
            found.append("warning box: " + text[:400])
    return found


def read_figures(page: Page) -> list[dict]:
    """Each figure of the step: title, caption, whether its chart or images drew, and what its marks say."""
    return page.evaluate("""() => {
        const out = [];
        for (const box of document.querySelectorAll('.st-key-lesson_figures [class*="st-key-lesson_fig_"]')) {
            const key = [...box.classList].find(c => c.startsWith('st-key-lesson_fig_'));
            const texts = [...box.querySelectorAll('[data-testid=stMarkdownContainer]')].map(e => e.innerText);
            const svgs = box.querySelectorAll('svg.marks');
            const canvases = box.querySelectorAll('canvas');
            const imgs = [...box.querySelectorAll('[data-testid=stImage] img')];
            const marks = [...box.querySelectorAll('svg.marks [aria-label]')]
                .map(e => e.getAttribute('aria-label'))
                .filter(t => t && !/^(X|Y)-axis|^Legend|^Title/.test(t));
            const legends = box.querySelectorAll('g.role-legend').length;
            const markCount = box.querySelectorAll('svg.marks g.role-mark path, svg.marks g.role-mark line, svg.marks g.role-mark rect, svg.marks g.role-mark text').length;
            out.push({key: key.replace('st-key-lesson_fig_', ''), title: texts[0] || '', caption: box.querySelector('[data-testid=stCaptionContainer]')?.innerText || '',
                      charts: svgs.length, canvases: canvases.length, marks: markCount, legends,
                      images: imgs.length, images_ok: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
                      image_sizes: imgs.map(i => [i.naturalWidth, i.naturalHeight]),
                      labels: marks.slice(0, 60)});
        }
        return out; }""")


def figure_problems(figures: list[dict]) -> list[str]:
    found = []
    for f in figures:
        if f["charts"] == 0 and f["images"] == 0 and f["canvases"] == 0:
            found.append(f"figure '{f['title']}' has neither a chart nor images")
        if f["charts"] and f["marks"] == 0:
            found.append(f"figure '{f['title']}': its chart has no marks (empty chart)")
        if f["images"] != f["images_ok"]:
            found.append(f"figure '{f['title']}': {f['images'] - f['images_ok']} image(s) did not load")
        if "not been trained" in f["title"] or "has no trials" in f["title"] or f["title"].startswith("No "):
            found.append(f"figure title says: {f['title']}")
    return found


# ---------------------------------------------------------------- the runs, from disk

def find_record(checkpoints: Path, lesson: str, step: int) -> dict | None:
    """The experiment record of this step, as kept on disk: the student's lesson state
    (.lessons/<lesson>/<key>.json) names the step's experiment, whose experiments/<name>/experiment.json
    holds every run's numbers (the same the figures draw)."""
    for state_path in sorted((checkpoints / ".lessons" / lesson).glob("*.json")):
        try:
            state = json.loads(state_path.read_text())
            name = state["steps"][str(step)]["experiment"]
            path = checkpoints / "experiments" / name / "experiment.json"
            record = json.loads(path.read_text())
        except (OSError, ValueError, KeyError, TypeError):
            continue
        record["_path"] = str(path.relative_to(checkpoints))
        return record
    return None


def factor_value(variant: dict, factor: str):
    factors = variant.get("factors") or {}
    if factor in factors:
        return factors[factor]
    short = factor.partition(".")[2]
    for k, v in factors.items():
        if k.endswith(short):
            return v
    return None


def probe_accuracy(checkpoints: Path, run: str):
    """The kept classifier result of a run (.lessons/probes/<run>.json)."""
    for path in (checkpoints / ".lessons").glob(f"*/{run}.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "accuracy" in data:
            return data["accuracy"]
    return None


def answer_from_runs(expectation, record: dict | None, checkpoints: Path, figures: list[dict]):
    """The choice the saved runs support: (value, {choice: metric}) or (None, why)."""
    if record is None:
        return None, "no experiment record found on disk"
    values = {}
    for v in record["variants"]:
        if v.get("status") not in ("finished", "stopped", "pruned", "done", None) and v.get("test_mse") is None:
            continue
        metric = expectation.metric
        if metric == "gap":
            value = (v.get("val_loss") - v.get("train_loss")) if v.get("val_loss") is not None \
                and v.get("train_loss") is not None else None
        elif metric == "epochs":
            value = v.get("epochs_run")
        elif metric == "probe_accuracy":
            value = probe_accuracy(checkpoints, v.get("run", ""))
        elif metric == "noisy_mse":
            value = noisy_from_chart(figures, v)
        else:
            value = v.get(metric)
        if value is None:
            continue
        key = factor_value(v, expectation.factor) if expectation.factor else v.get("label")
        values.setdefault(str(key), []).append(value)
    if not values:
        return None, f"no run has {expectation.metric}"
    pick = min if expectation.best == "lowest" else max
    per = {k: pick(vs) for k, vs in values.items()}
    return pick(per, key=per.get), per


def noisy_from_chart(figures: list[dict], variant: dict):
    """The noise sweep chart's value at noise 0.5 for this run (its aria-labels)."""
    for f in figures:
        if "noise rises" not in f["title"]:
            continue
        for label in f["labels"]:
            if variant.get("label", "\0") in label and re.search(r"noise[^;]*: 0\.5\b", label):
                m = re.search(r"(?:MSE|mse|error)[^:;]*: ([0-9.eE-]+)", label)
                if m:
                    return float(m.group(1))
    return None


# ---------------------------------------------------------------- the walk

def step_radio(page: Page, number: int):
    return keyed(page, "lesson_step").get_by_text(re.compile(rf"^(✓ )?{number} · "))


def wait_for_step(page: Page, number: int, deadline: float, shots: Shots, record_info: dict) -> str:
    """Until the step's figures show (or the run fails); a live shot on the way."""
    live_shot = False
    last_progress = ""
    while time.monotonic() < deadline:
        page.wait_for_timeout(3000)
        live = keyed(page, "lesson_live")
        try:
            if live.count():
                bar = live.get_by_test_id("stProgress")
                text = bar.first.inner_text(timeout=2000) if bar.count() else live.inner_text(timeout=2000)[:120]
                if text != last_progress:
                    log("  ", " ".join(text.split()))
                    last_progress = text
                if not live_shot and re.search(r"[1-9]\d* of \d+ runs done", text):
                    shots.view(page, f"step{number}-live")
                    live_shot = True
                if re.search(r"failed|stopped|interrupted", text):
                    record_info["live_end"] = text
                    wait_for_script(page, timeout=60_000)
                    return "failed"
            if keyed(page, "lesson_figures").count() and not live.count():
                wait_for_script(page, timeout=FIGURES_TIMEOUT_MS)
                return "figures"
            if not live.count() and main(page).get_by_text("Drawing this step's figures").count() == 0 \
                    and page.get_by_test_id("stApp").get_attribute("data-test-script-state") == "notRunning":
                # no live view, no figures: perhaps a step without show, or a failure message
                if main(page).get_by_test_id("stAlertContentWarning").count() or \
                        main(page).get_by_test_id("stAlertContentError").count():
                    return "failed"
        except Exception as exc:  # noqa: BLE001 - a rerun detached an element; look again
            log("   (while waiting)", type(exc).__name__, str(exc)[:120])
    return "timeout"


def click_plane(page: Page, figures: list[dict], shots: Shots, number: int) -> list[str]:
    """Click each 2-D code plane between its clusters (a little left of and above the middle) and
    keep what the decoder draws beside it."""
    said = []
    for f in figures:
        box = keyed(page, f"lesson_fig_{f['key']}")
        if not box.locator(".st-key-lesson_plane_" + f["key"]).count() and "first two coordinates" not in f["title"]:
            continue
        marks = box.locator("svg.marks").first
        try:
            marks.scroll_into_view_if_needed()
            size = marks.bounding_box()
            marks.click(position={"x": size["width"] * 0.45, "y": size["height"] * 0.55})
            wait_for_script(page)
            expect(box).to_contain_text("Decoded from (", timeout=RERUN_TIMEOUT_MS)
            box.locator("[data-testid=stImage] img").first.wait_for(timeout=RERUN_TIMEOUT_MS)
            page.wait_for_timeout(800)
            text = re.search(r"Decoded from \([^)]*\)", box.inner_text())
            said.append(f"{f['title']}: {text.group(0) if text else '?'}")
            shots.element(box, f"step{number}-plane-clicked-{f['key']}")
        except Exception as exc:  # noqa: BLE001
            said.append(f"{f['title']}: the click did not decode ({type(exc).__name__}: {str(exc)[:200]})")
    log("   plane:", said)
    return said


def shown_step(page: Page) -> str:
    """The step the page shows now (its heading) and the address's step."""
    headings = [t for t in main(page).locator("h3").all_inner_texts() if re.match(r"\d+\. ", t)]
    step = re.search(r"[?&]step=(\d+)", page.url)
    return f"heading {headings[0][:40] if headings else '?'!r}, address step={step.group(1) if step else '-'}"


def train_classifiers(page: Page, number: int, deadline: float) -> str:
    button = main(page).get_by_role("button", name=re.compile(r"^Train the classifiers \(\d+\)"))
    if not button.count():
        return "none needed"
    label = button.inner_text()
    button.click()
    wait_for_script(page)
    while time.monotonic() < deadline:
        page.wait_for_timeout(3000)
        try:
            texts = keyed(page, "lesson_figures").inner_text(timeout=5000) if keyed(page, "lesson_figures").count() \
                else ""
            busy = main(page).get_by_text(re.compile(r"^Classifier on ")).count()
            if not busy and "not been trained yet" not in texts and \
                    main(page).get_by_role("button", name=re.compile(r"^Train the classifiers")).count() == 0:
                wait_for_script(page, timeout=FIGURES_TIMEOUT_MS)
                return f"{label}: trained"
        except Exception as exc:  # noqa: BLE001
            log("   (while waiting for classifiers)", type(exc).__name__, str(exc)[:120])
    return f"{label}: timeout"


def answer_questions(page: Page, lesson, step, record, checkpoints: Path, figures: list[dict]) -> list[dict]:
    results = []
    for n, question in enumerate(step.questions, start=1):
        box = keyed(page, f"lesson_answer_{lesson.name}_{question.key}")
        box.scroll_into_view_if_needed()
        entry = {"key": question.key, "ask": question.ask, "kind": question.kind}
        if question.kind == "choice":
            if question.expect is not None:
                value, per = answer_from_runs(question.expect, record, checkpoints, figures)
                entry["from_runs"] = per
                entry["expect"] = question.expect.describe()
            else:
                value = BY_EYE.get((lesson.name, question.key), question.choices[-1])
                entry["from_runs"] = "no expected answer: chosen by what the figures should show (check by eye)"
            choice = str(value) if value is not None and str(value) in [str(c) for c in question.choices] \
                else next((str(c) for c in question.choices if value is not None and _same(c, value)), None)
            if choice is None:
                entry["note"] = f"the runs' value {value!r} is none of the choices: picked the first"
                choice = str(question.choices[0])
            entry["runs_say"] = str(value)
            entry["answer"] = choice
            box.get_by_text(choice, exact=True).first.click()
            wait_for_script(page)
            parent = box.locator("xpath=..")
            verdict = "none"
            for _ in range(20):
                if parent.get_by_text("Matches your runs.").count():
                    verdict = "Matches your runs."
                    break
                warn = parent.get_by_text(re.compile("Your runs say otherwise"))
                if warn.count():
                    verdict = warn.first.inner_text()
                    break
                if parent.get_by_text("Run this step to compare").count():
                    verdict = "Run this step to compare your answer with your runs."
                    break
                if question.expect is None:
                    break
                page.wait_for_timeout(500)
            entry["verdict"] = verdict
        elif question.kind == "number":
            box.locator("input").fill("1")
            box.locator("input").press("Enter")
            wait_for_script(page)
            entry["answer"] = "1"
        else:
            area = box.locator("textarea")
            area.fill(TEXT_ANSWERS)
            area.press("Tab")
            wait_for_script(page)
            entry["answer"] = TEXT_ANSWERS
        log(f"   Q{n} {question.key} [{question.kind}] -> {entry.get('answer')!r} {entry.get('verdict', '')}")
        results.append(entry)
    return results


def _same(choice, value) -> bool:
    if isinstance(value, bool) or str(value) in ("True", "False"):
        return str(choice).lower() in (("yes", "true") if str(value) == "True" else ("no", "false"))
    try:
        return float(choice) == float(value)
    except (TypeError, ValueError):
        return str(choice).replace(",", "-") == str(value).replace(",", "-").replace("[", "").replace("]", "")


def walk_lesson(browser, url: str, checkpoints: Path, lesson, out: Path, only_steps=()) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shots = Shots(out)
    summary = {"lesson": lesson.name, "title": lesson.title, "steps": [], "problems": []}
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(60_000)
    page = context.new_page()
    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text[:300]) if m.type == "error" else None)
    started = time.monotonic()
    open_app(page, url)
    choose(page, "Lesson", lesson.title)
    expect(main(page)).to_contain_text(lesson.goal[:40], timeout=RERUN_TIMEOUT_MS)
    wait_for_script(page, timeout=FIGURES_TIMEOUT_MS)
    notes = [a.inner_text() for a in main(page).get_by_test_id("stAlertContentInfo").all()]
    summary["data_note"] = next((n for n in notes if "This lesson was written for" in n), "(no note: the named data)")
    log(lesson.name, "data:", summary["data_note"])
    shots.view(page, "lesson-opened")
    for step in lesson.steps:
        if only_steps and step.number not in only_steps:
            continue
        t0 = time.monotonic()
        info = {"number": step.number, "title": step.title, "run": step.run, "use": step.use, "show": step.show}
        log(f"step {step.number}: {step.title}")
        step_radio(page, step.number).click()
        wait_for_script(page, timeout=FIGURES_TIMEOUT_MS)
        captions = [c.inner_text() for c in main(page).get_by_test_id("stCaptionContainer").all()]
        info["trains"] = next((c for c in captions if c.startswith("This step trains")), "")
        log("  ", info["trains"] or "(trains nothing)")
        deadline = time.monotonic() + STEP_TIMEOUT_S
        run_button = main(page).get_by_role("button", name=re.compile(r"^Run( my own| again)?$"))
        if step.run and run_button.count():
            run_button.first.click()
            wait_for_script(page)
            info["outcome"] = wait_for_step(page, step.number, deadline, shots, info)
        elif step.run:
            info["outcome"] = "no Run button"
        else:
            info["outcome"] = "shows step %s" % step.use
            expect(keyed(page, "lesson_figures")).to_be_visible(timeout=FIGURES_TIMEOUT_MS)
            wait_for_script(page, timeout=FIGURES_TIMEOUT_MS)
        info["run_seconds"] = round(time.monotonic() - t0, 1)
        if "classifier" in step.show:
            info["classifiers"] = train_classifiers(page, step.number, deadline)
        if keyed(page, "lesson_figures").count():
            figures_box = keyed(page, "lesson_figures")
            for img in figures_box.locator("[data-testid=stImage] img").all():
                try:
                    img.scroll_into_view_if_needed(timeout=10_000)
                    page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=img.element_handle(),
                                           timeout=30_000)
                except Exception:  # noqa: BLE001 - counted below as not loaded
                    pass
        page.wait_for_timeout(1500)
        figures = read_figures(page) if keyed(page, "lesson_figures").count() else []
        info["figures"] = figures
        info["figure_problems"] = figure_problems(figures)
        source = step.source or step.number
        record = find_record(checkpoints, lesson.name, source)
        if record is not None:
            info["record"] = record.get("_path")
            info["variants"] = [{k: v.get(k) for k in ("label", "run", "factors", "status", "test_mse", "val_loss",
                                                        "train_loss", "seconds", "epochs_run")}
                                for v in record["variants"]]
            for v in info["variants"]:
                log(f"   {v['label']}: test MSE {v['test_mse']}, val {v['val_loss']}, {v['seconds']} s, "
                    f"{v['epochs_run']} epochs, {v['status']}")
        if "latent-raw" in step.show:
            # Before the answers: once a step is done, the next rerun shows step 1 (see the report).
            info["plane"] = click_plane(page, figures, shots, step.number)
        info["answers"] = answer_questions(page, lesson, step, record, checkpoints, figures)
        info["page_problems"] = problems_on_page(page)
        # Shots: the whole step, the first figure at projector size, each figure alone.
        shots.tall(page, f"step{step.number}-whole")
        if keyed(page, "lesson_figures").count():
            main(page).locator(".st-key-lesson_figures").evaluate("""e => { e.scrollIntoView({block: 'start'});
                let s = e.parentElement;
                while (s && !(s.scrollHeight > s.clientHeight + 5 && /auto|scroll/.test(getComputedStyle(s).overflowY)))
                    s = s.parentElement;
                (s || window).scrollBy(0, -80); }""")
            page.wait_for_timeout(500)
            shots.view(page, f"step{step.number}-figures-1400x900")
            for f in figures:
                shots.element(keyed(page, f"lesson_fig_{f['key']}"), f"step{step.number}-fig-{f['key']}")
        expander = main(page).get_by_test_id("stExpander").filter(has_text="The runs of this step")
        if expander.count():
            expander.first.locator("summary").click()
            try:
                expander.first.get_by_test_id("stDataFrame").wait_for(timeout=30_000)
                page.wait_for_timeout(1500)
                shots.element(expander.first, f"step{step.number}-runs-table")
            except Exception as exc:  # noqa: BLE001
                log("   runs table did not show:", str(exc)[:200])
            expander.first.locator("summary").click()
            wait_for_script(page)
        info["wall_seconds"] = round(time.monotonic() - t0, 1)
        info["step_shown_end"] = shown_step(page)
        if not info["step_shown_end"].startswith(f"heading '{step.number}. "):
            summary["problems"].append(f"step {step.number}: at the end of the step the page shows "
                                       f"{info['step_shown_end']}")
        for p in info["figure_problems"] + info["page_problems"]:
            summary["problems"].append(f"step {step.number}: {p}")
        log(f"   step {step.number} took {info['wall_seconds']} s; problems: {info['figure_problems'] + info['page_problems']}")
        summary["steps"].append(info)
        (out / "walk.json").write_text(json.dumps(summary, indent=2, default=str))
    # Hand in, then the report (noting which step the page shows at each move).
    summary["step_shown"] = {"before hand-in": shown_step(page)}
    name = main(page).get_by_label("Your name")
    name.fill(STUDENT)
    name.press("Enter")
    wait_for_script(page)
    summary["step_shown"]["after the name"] = shown_step(page)
    main(page).get_by_role("button", name="Hand in").click()
    try:
        expect(main(page)).to_contain_text("Handed in: your teacher can see it now.", timeout=10 * 60_000)
        summary["handed_in"] = True
    except AssertionError as exc:
        summary["handed_in"] = False
        summary["problems"].append(f"hand in: {exc}"[:400])
    wait_for_script(page, timeout=FIGURES_TIMEOUT_MS)
    summary["step_shown"]["after Hand in"] = shown_step(page)
    log("   step shown:", summary["step_shown"])
    main(page).get_by_role("button", name="Hand in").scroll_into_view_if_needed()
    shots.view(page, "handed-in")
    progress = main(page).get_by_test_id("stProgress").first.inner_text() if main(page).get_by_test_id(
        "stProgress").count() else ""
    summary["progress"] = progress
    report = out / "report.html"
    try:
        with page.expect_download(timeout=10 * 60_000) as download:
            main(page).get_by_role("button", name="Report (HTML)").click()
        download.value.save_as(report)
        summary["report_bytes"] = report.stat().st_size
        summary["report"] = read_report(browser, report, shots)
    except Exception as exc:  # noqa: BLE001
        summary["problems"].append(f"report download: {exc}"[:400])
    summary["page_problems_end"] = problems_on_page(page)
    summary["console_errors"] = console_errors[:30]
    summary["wall_seconds"] = round(time.monotonic() - started, 1)
    summary["shots"] = shots.paths
    (out / "walk.json").write_text(json.dumps(summary, indent=2, default=str))
    context.close()
    return summary


def read_report(browser, report: Path, shots: Shots) -> dict:
    """The report opened with the network off: every figure shows, nothing is fetched."""
    with report_offline(browser, report) as (reader, count, broken, requests):
        body = reader.inner_text("body")
        reader.evaluate("window.scrollTo(0, 0)")
        reader.screenshot(path=str(shots.name("report-top")))
        reader.screenshot(path=str(shots.name("report-full")), full_page=True)
        return {"figures": count, "broken": broken, "fetched": [u for u in requests if u != report.as_uri()],
                "handed_in_by": "Handed in by " + STUDENT in body, "tracebacks": "Traceback" in body}


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", default=LESSONS)
    parser.add_argument("--work", default="/tmp/ae-lab-homework-walk", help="scratch folder (emptied)")
    parser.add_argument("--photos", choices=("crops", "generated"), default="crops")
    parser.add_argument("--steps", default="", help="only these steps, e.g. 1,5 (a step that shows an "
                        "earlier step's runs needs that step too)")
    parser.add_argument("--out", default=str(OUT), help="where the screenshots go (one folder per lesson)")
    parser.add_argument("--threads", default="1", help="OMP_NUM_THREADS for the server ('' for PyTorch's default)")
    args = parser.parse_args()
    from core.lessons import load_lessons

    lessons = {lesson.name: lesson for lesson in load_lessons()[0]}
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    write_photos(work / "data", args.photos)
    checkpoints = work / "checkpoints"
    summaries = []
    with served(REPO, "app.py", server_env(work, args.threads or None), work / "server.log") as (url, *_):
        log("serving", url, "checkpoints", checkpoints)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            for name in args.lessons:
                out = Path(args.out) / name
                steps = {int(n) for n in args.steps.split(",") if n.strip()}
                try:
                    summaries.append(walk_lesson(browser, url, checkpoints, lessons[name], out, steps))
                except Exception as exc:  # noqa: BLE001 - keep what the page showed, go on
                    log(name, "FAILED:", type(exc).__name__, str(exc)[:2000])
                    summaries.append({"lesson": name, "failed": f"{type(exc).__name__}: {exc}"[:3000]})
                    try:
                        for pg in browser.contexts[-1].pages:
                            pg.screenshot(path=str(out / "FAILED.png"))
                            (out / "FAILED.txt").write_text(pg.inner_text("body"))
                    except Exception:  # noqa: BLE001
                        pass
                shutil.copy(work / "server.log", out / "server.log")
            browser.close()
    for s in summaries:
        print(json.dumps({k: v for k, v in s.items() if k not in ("steps", "shots")}, indent=2, default=str))


if __name__ == "__main__":
    main_cli()
