"""Fixtures for the end-to-end walks: a real `streamlit run app.py` server and Debian's chromium.

The walks drive the app the way a student does (clicks, keys, reading the page), so they never
import core/ or ui/. Chromium comes from apt (`apt-get install -y chromium`), never from
`playwright install`: without it the walks skip locally and fail under CI=true.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ci_requirements import skip_or_fail

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_ROOT = REPO_ROOT / "artifacts" / "e2e-screenshots"
# Tall enough that most of a page fits in one screenshot: Streamlit scrolls inside its own
# container, so Playwright's full_page option does not capture below the fold.
VIEWPORT = {"width": 1400, "height": 1800}
SERVER_START_TIMEOUT_S = 60


def pytest_collection_modifyitems(config, items):
    e2e_dir = Path(__file__).parent
    for item in items:
        if e2e_dir in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item so fixtures can tell, at teardown, that the test
    # failed and save what the browser showed at that moment.
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
    if report.failed and report.when == "call":
        # The server's own words usually say why a page never showed what the walk waited for.
        for server in getattr(item, "e2e_servers", []):
            report.sections.append((f"streamlit server log (tail) {server.url}", server.log_tail()))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if SCREENSHOT_ROOT.exists() and any(SCREENSHOT_ROOT.iterdir()):
        terminalreporter.write_line(f"e2e screenshots: {SCREENSHOT_ROOT}")


def _require_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    skip_or_fail("Chromium not found: install it with `apt-get install -y chromium`")


@pytest.fixture(scope="session")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def artifacts_dir(request) -> Path:
    """artifacts/e2e-screenshots/<test name>/, emptied at the start of the test."""
    folder = SCREENSHOT_ROOT / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


class Screenshots:
    """Numbered screenshots, so the folder reads in the order of the walk."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.count = 0

    def __call__(self, page, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path))
        return path


@pytest.fixture
def shot(artifacts_dir) -> Screenshots:
    return Screenshots(artifacts_dir)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


class AppServer:
    def __init__(self, url: str, process: subprocess.Popen, log_path: Path, checkpoints: Path):
        self.url = url
        self.process = process
        self.log_path = log_path
        self.checkpoints = checkpoints

    def log_tail(self, lines: int = 40) -> str:
        return _log_tail(self.log_path, lines)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


@pytest.fixture
def start_app(tmp_path, artifacts_dir, request):
    """start_app(max_jobs=2) -> AppServer: `streamlit run app.py` on a free port with its own
    empty checkpoints folder (or on `port` with `checkpoints`: a restart of an earlier server),
    with `env` added to its environment; every server started is stopped by its PID when the test ends."""
    processes: list[subprocess.Popen] = []
    log_files = []

    def start(max_jobs: int = 2, port: int | None = None, checkpoints: Path | None = None,
              env: dict[str, str] | None = None) -> AppServer:
        port = port or _free_port()
        if checkpoints is None:
            checkpoints = tmp_path / f"checkpoints-{port}"
            checkpoints.mkdir()
        extra = env or {}
        env = dict(os.environ)
        env.update(
            AE_LAB_CHECKPOINTS=str(checkpoints),
            AE_LAB_MAX_JOBS=str(max_jobs),
            PYTHONUNBUFFERED="1",
            # One PyTorch thread per job: Chromium runs beside the server, and two torch threads
            # fighting other processes for 2 cores trained 50-90 images/s instead of thousands
            # (the Experiments page's speed measurement took 115 s instead of 14 s).
            OMP_NUM_THREADS="1",
        )
        env.update(extra)
        log_path = artifacts_dir / f"server-{port}-{len(processes) + 1}.log"
        log_file = open(log_path, "w")
        log_files.append(log_file)
        command = [
            sys.executable, "-m", "streamlit", "run", "app.py",
            "--server.headless", "true",
            "--server.port", str(port),
            "--server.address", "127.0.0.1",
            "--browser.gatherUsageStats", "false",
            # Other people edit the source while the walks run: no reruns on file changes.
            "--server.fileWatcherType", "none",
            "--server.runOnSave", "false",
        ]
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"streamlit exited with code {process.returncode} before answering:\n"
                    + _log_tail(log_path), pytrace=False)
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                    if response.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"streamlit did not answer /_stcore/health within {SERVER_START_TIMEOUT_S} s:\n"
                    + _log_tail(log_path), pytrace=False)
            time.sleep(0.25)
        server = AppServer(url, process, log_path, checkpoints)
        request.node.e2e_servers = [*getattr(request.node, "e2e_servers", []), server]
        return server

    try:
        yield start
    finally:
        for process in processes:
            _stop(process)
        for log_file in log_files:
            log_file.close()


@pytest.fixture
def new_page(browser, request, artifacts_dir):
    """new_page() -> a Page in its own browser context (its own cookies: one student each).
    When the test fails, every page still open is saved as FAILED-<n>.png with its text and HTML."""
    contexts = []

    def make():
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(30_000)
        contexts.append(context)
        return context.new_page()

    try:
        yield make
    finally:
        report = getattr(request.node, "rep_call", None)
        failed = report is not None and report.failed
        for n, context in enumerate(contexts, start=1):
            if failed:
                for page in context.pages:
                    try:
                        page.screenshot(path=str(artifacts_dir / f"FAILED-{n}.png"))
                        (artifacts_dir / f"FAILED-{n}.txt").write_text(
                            f"URL: {page.url}\n\n" + page.inner_text("body"))
                        (artifacts_dir / f"FAILED-{n}.html").write_text(page.content())
                    except Exception:  # the page may be gone; the test's own error says why
                        pass
            context.close()


OIDC_PROVIDER_START_TIMEOUT_S = 30


@pytest.fixture
def start_oidc_provider(artifacts_dir):
    """start_oidc_provider(users) -> URL: a local OpenID Connect provider (oidc-provider-mock, its
    own process on a free port) whose sign-in page offers `users` (each a dict of ID-token claims
    with "sub") as one-click buttons; stopped by its PID when the test ends."""
    processes: list[subprocess.Popen] = []

    def start(users) -> str:
        port = _free_port()
        command = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)]
        for claims in users:
            command += ["--user-claims", json.dumps(claims)]
        log_path = artifacts_dir / f"oidc-provider-{port}.log"
        with open(log_path, "w") as log:
            processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + OIDC_PROVIDER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/.well-known/openid-configuration", timeout=2) as response:
                    if json.load(response).get("issuer") == url:
                        return url
            except OSError:
                pass
            if processes[-1].poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"oidc-provider-mock did not start:\n{_log_tail(log_path)}", pytrace=False)
            time.sleep(0.25)

    try:
        yield start
    finally:
        for process in processes:
            _stop(process)
