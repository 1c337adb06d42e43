"""Figure 6: from `streamlit run app.py` to the first page served and rendered in a real browser,
and the memory of the server once it has loaded one finished run.

The browser (Debian's chromium through Playwright) is started before the clock starts: a student's
browser is already open. The clock runs from launching the server process to the app's sidebar
navigation and the first page's content being on screen with the script run finished.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
START_TIMEOUT_S = 120
RUN_PAGE = "reconstructions"  # a page that loads the chosen run (weights, film, test images)


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


def measure_app_start(repo: Path, checkpoints: Path, log_path: Path, data_dirs: list[Path] = ()) -> AppStart:
    """Start the app on a free port with AE_LAB_CHECKPOINTS=checkpoints, time it, read its memory,
    and stop it by its PID whatever happens. data_dirs: folders the run's data lies in, allowed
    as a teacher allows them (AE_LAB_DATA_DIRS), so the run page can load its test images."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing; install Debian's chromium (apt-get install -y chromium).")
    streamlit = Path(sys.executable).with_name("streamlit")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AE_LAB_CHECKPOINTS": str(checkpoints)}
    if data_dirs:
        env["AE_LAB_DATA_DIRS"] = os.pathsep.join([str(Path(d).resolve()) for d in data_dirs]
                                                  + [p for p in env.get("AE_LAB_DATA_DIRS", "").split(os.pathsep) if p])
    command = [str(streamlit), "run", "app.py", "--server.headless", "true", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    timeout_ms = START_TIMEOUT_S * 1000
    with sync_playwright() as playwright, open(log_path, "w") as log:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        server = None
        try:
            page = browser.new_page()
            started = time.perf_counter()
            server = subprocess.Popen(command, cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
            while not _healthy(url):
                if server.poll() is not None:
                    raise RuntimeError(f"streamlit exited with code {server.returncode}; see {log_path}.")
                if time.perf_counter() - started > START_TIMEOUT_S:
                    raise RuntimeError(f"streamlit did not answer within {START_TIMEOUT_S} s; see {log_path}.")
                time.sleep(0.05)
            health_s = time.perf_counter() - started
            page.goto(url)
            _wait_rendered(page, timeout_ms)
            rendered_s = time.perf_counter() - started

            page.goto(f"{url}/{RUN_PAGE}")
            _wait_rendered(page, timeout_ms)
            errors = page.get_by_test_id("stMain").get_by_test_id("stAlertContentError")
            if errors.count():  # the page said why it shows no run (e.g. its data is not allowed)
                raise RuntimeError(f"the {RUN_PAGE} page shows an error: {errors.first.inner_text()}")
            from playwright.sync_api import expect

            expect(page.get_by_test_id("stMain").get_by_test_id("stImage").first).to_be_visible(timeout=timeout_ms)
            return AppStart(health_s, rendered_s, rss_mb(server.pid))
        finally:
            browser.close()
            if server is not None and server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)  # its own session: the server and only its children
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait()
