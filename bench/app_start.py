"""Figure 6: from `streamlit run app.py` to the first page's title in a real browser (median of
START_TRIES, against a one-line Streamlit app started the same way), and the memory of the server
once it has loaded one finished run.

The browser (Debian's chromium through Playwright) is started before the clock starts: a student's
browser is already open. The clock runs from launching the server process to the first page's title
being on screen; `ready` is when the script run has also finished (sidebar drawn, nothing pending).

    python -m bench.app_start     # this figure alone (about a minute on a quiet 2-core machine)
"""
from __future__ import annotations

import os
import signal
import statistics
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
START_TIMEOUT_S = 120
RUN_PAGE = "reconstructions"  # a page that loads the chosen run (weights, film, test images)
START_TRIES = 3
BASELINE_APP = 'import streamlit as st\n\nst.title("x")\n'  # the least a Streamlit page can be


@dataclass
class FirstPage:
    title_s: list[float]  # launch -> the first page's title visible, each try
    ready_s: list[float]  # launch -> that script run finished, each try
    baseline_title_s: list[float]  # the same for BASELINE_APP

    @property
    def median_s(self) -> float:
        return statistics.median(self.title_s)

    @property
    def baseline_s(self) -> float:
        return statistics.median(self.baseline_title_s)


@dataclass
class AppStart:
    health_s: float  # launch -> /_stcore/health answers ok
    rendered_s: float  # launch -> first page rendered in the browser
    rss_mb: float  # server (and children) resident memory after the run page rendered


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Every descendant of pid, read from /proc (psutil is not a dependency)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name in field 2 may hold spaces; the parent pid follows its closing paren.
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def process_rss_mb(pid: int) -> float:
    """Resident memory of pid alone, in MiB, from /proc/<pid>/status VmRSS (0 once it has ended,
    and for kernel threads, which have no VmRSS)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    return sum(int(line.split()[1]) for line in lines if line.startswith("VmRSS:")) / 1024


def rss_mb(pid: int) -> float:
    """Resident memory of pid and its descendants, in MiB."""
    return sum(process_rss_mb(each) for each in (pid, *_children(pid)))


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _wait_rendered(page, timeout_ms: int) -> None:
    """The sidebar navigation is visible, the page has its content, and no script run is pending."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stSidebarNav")).to_be_visible(timeout=timeout_ms)
    expect(page.get_by_test_id("stMain").get_by_role("heading").first).to_be_visible(timeout=timeout_ms)
    # The script's state on the app element, as tests/e2e/streamlit_ui.wait_for_script reads it:
    # the status widget's "Running" is not a reliable signal in Streamlit 1.67.
    expect(page.get_by_test_id("stApp")).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=timeout_ms)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=timeout_ms)


def _wait_title(page, timeout_ms: int) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stMain").get_by_role("heading").first).to_be_visible(timeout=timeout_ms)


@contextmanager
def served(cwd: Path, script: str, env: dict, log_path: Path) -> Iterator[tuple[str, float, float, int]]:
    """`streamlit run script` from cwd on a free port: yields (url, the launch time, seconds to
    /_stcore/health, the server's pid), and stops the server by its process group whatever happens."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).with_name("streamlit")), "run", script, "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    with open(log_path, "w") as log:
        started = time.perf_counter()
        server = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            while not _healthy(url):
                if server.poll() is not None:
                    raise RuntimeError(f"streamlit exited with code {server.returncode}; see {log_path}.")
                if time.perf_counter() - started > START_TIMEOUT_S:
                    raise RuntimeError(f"streamlit did not answer within {START_TIMEOUT_S} s; see {log_path}.")
                time.sleep(0.05)
            yield url, started, time.perf_counter() - started, server.pid
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)  # its own session: the server and only its children
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait()


def _chromium():
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing; install Debian's chromium (apt-get install -y chromium).")


def measure_first_page(repo: Path, checkpoints: Path, scratch: Path, tries: int = START_TRIES) -> FirstPage:
    """Seconds from launching `streamlit run app.py` (AE_LAB_CHECKPOINTS=checkpoints) to its first
    page's title in Chromium, and to that run finished, `tries` times, alternating with BASELINE_APP
    started the same way from scratch (so both see the same machine load)."""
    from playwright.sync_api import sync_playwright

    _chromium()
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "baseline_app.py").write_text(BASELINE_APP)
    env = {**os.environ, "AE_LAB_CHECKPOINTS": str(checkpoints)}
    timeout_ms = START_TIMEOUT_S * 1000
    result = FirstPage([], [], [])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for attempt in range(tries):
                for cwd, script, titles in ((scratch, "baseline_app.py", result.baseline_title_s),
                                            (repo, "app.py", result.title_s)):
                    page = browser.new_page()
                    with served(cwd, script, env, scratch / f"first-page-{script}-{attempt}.log") as (url, started, _, _):
                        page.goto(url)
                        _wait_title(page, timeout_ms)
                        titles.append(time.perf_counter() - started)
                        if script == "app.py":
                            _wait_rendered(page, timeout_ms)
                            result.ready_s.append(time.perf_counter() - started)
                    page.close()
        finally:
            browser.close()
    return result


def measure_app_start(repo: Path, checkpoints: Path, log_path: Path, data_dirs: list[Path] = (),
                      run_name: str = "") -> AppStart:
    """Start the app on a free port with AE_LAB_CHECKPOINTS=checkpoints, time it, read its memory,
    and stop it by its PID whatever happens. data_dirs: folders the run's data lies in, allowed
    as a teacher allows them (AE_LAB_DATA_DIRS), so the run page can load its test images.
    run_name: the run the page opens, by a link naming it (a new browser owns no run, so the
    page would otherwise wait for a choice)."""
    from playwright.sync_api import expect, sync_playwright

    _chromium()
    env = {**os.environ, "AE_LAB_CHECKPOINTS": str(checkpoints)}
    if data_dirs:
        env["AE_LAB_DATA_DIRS"] = os.pathsep.join([str(Path(d).resolve()) for d in data_dirs]
                                                  + [p for p in env.get("AE_LAB_DATA_DIRS", "").split(os.pathsep) if p])
    timeout_ms = START_TIMEOUT_S * 1000
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            with served(repo, "app.py", env, log_path) as (url, started, health_s, pid):
                page.goto(url)
                _wait_rendered(page, timeout_ms)
                rendered_s = time.perf_counter() - started
                page.goto(f"{url}/{RUN_PAGE}?{urllib.parse.urlencode({'run': run_name})}" if run_name
                          else f"{url}/{RUN_PAGE}")
                _wait_rendered(page, timeout_ms)
                errors = page.get_by_test_id("stMain").get_by_test_id("stAlertContentError")
                if errors.count():  # the page said why it shows no run (e.g. its data is not allowed)
                    raise RuntimeError(f"the {RUN_PAGE} page shows an error: {errors.first.inner_text()}")
                expect(page.get_by_test_id("stMain").get_by_test_id("stImage").first).to_be_visible(
                    timeout=timeout_ms)
                return AppStart(health_s, rendered_s, rss_mb(pid))
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    """This figure alone: app.py against BASELINE_APP, with an empty checkpoints folder."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.app_start", description=main.__doc__)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the checkout whose app.py to start (default: this one), e.g. to time another branch")
    parser.add_argument("--tries", type=int, default=START_TRIES)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ae-lab-app-start-") as scratch:
        (Path(scratch) / "checkpoints").mkdir()
        first = measure_first_page(args.repo, Path(scratch) / "checkpoints", Path(scratch), args.tries)
    print(f"app.py first page title: {first.median_s:.2f} s (median of {[round(t, 2) for t in first.title_s]}), "
          f"script run finished: {statistics.median(first.ready_s):.2f} s; one-line app: {first.baseline_s:.2f} s "
          f"({[round(t, 2) for t in first.baseline_title_s]}); ratio {first.median_s / first.baseline_s:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
