"""Screenshots of issue 8's lessons at 1400×900 (a projector's size), for a person to look at:
a folder of colour photos reconstructed by a run with the data-fitted default settings, projector
mode, a reload that keeps dataset and run, and the conditional lesson with a latent of 2.

    .venv/bin/python tests/e2e/shoot_lesson.py [work folder]   # default /tmp/ae-lab-lesson-shots

The runs are trained here first (once; kept in the work folder) with the settings the Train page
would start from (core.defaults.suggested_training); then `streamlit run app.py` serves them and
Chromium shoots the pages into artifacts/lesson-screenshots/.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.photo_folder import write_photo_folder  # noqa: E402
from core.checkpoints import save_run  # noqa: E402
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from core.data import load_dataset  # noqa: E402
from core.defaults import suggested_training  # noqa: E402
from core.train import evaluate, to_float, train  # noqa: E402

OUT = REPO / "artifacts" / "lesson-screenshots"
VIEWPORT = {"width": 1400, "height": 900}


def trained(root: Path, name: str, data: DataConfig, model: ModelConfig, epochs: int | None = None) -> dict:
    """Train `name` with the data-fitted defaults (unless it is saved already); its numbers."""
    dataset = load_dataset(data)
    s = suggested_training(len(dataset.splits["train"]))
    test_x, test_y = dataset.split("test")
    train_x, _ = dataset.split("train")
    mean_mse = float(((to_float(test_x) - to_float(train_x).mean(dim=0)) ** 2).mean())
    info = {"run": name, "batch": s.batch_size, "epochs": epochs or s.epochs, "mean_image_mse": mean_mse}
    if not (root / name / "info.json").is_file():
        cfg = RunConfig(data=data, model=model, train=TrainConfig(batch_size=s.batch_size, epochs=epochs or s.epochs),
                        name=name)
        start = time.perf_counter()
        result = train(cfg, dataset)
        info["seconds"] = round(time.perf_counter() - start, 1)
        info["test_mse"] = evaluate(result.model, test_x, test_y, __import__("torch").device("cpu"))["mse"]
        save_run(root, name, cfg, result)
    return info


def prepare(work: Path) -> list[dict]:
    runs = work / "checkpoints"
    runs.mkdir(parents=True, exist_ok=True)
    photos = work / "data" / "photos"
    if not photos.exists():
        write_photo_folder(photos, per_class=150, size=64)
    folder = DataConfig(dataset="folder", folder=str(photos), image_size=64, channels=3)
    digits = DataConfig(dataset="digits")
    numbers = [trained(runs, "photos-defaults", folder, ModelConfig(family="conv", preset="small", latent=16)),
               trained(runs, "digits-conditional-z2", digits,
                       ModelConfig(family="conv", preset="small", latent=2, conditional=True)),
               trained(runs, "digits-conditional-z16", digits,
                       ModelConfig(family="conv", preset="small", latent=16, conditional=True))]
    (work / "numbers.json").write_text(json.dumps(numbers, indent=2))
    return numbers


def serve(work: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "AE_LAB_CHECKPOINTS": str(work / "checkpoints"), "AE_LAB_DATA_DIRS": str(work / "data"),
           "PYTHONUNBUFFERED": "1"}
    log = open(work / "server.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                "--server.port", str(port), "--server.address", "127.0.0.1"],
                               cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                return process, url
        except OSError:
            time.sleep(0.5)
    process.terminate()
    raise SystemExit("streamlit did not start; see " + str(work / "server.log"))


def shoot(url: str, work: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(REPO / "tests" / "e2e"))
    from streamlit_ui import wait_for_script

    OUT.mkdir(parents=True, exist_ok=True)
    shots = []
    photos = work / "data" / "photos"
    data = f"dataset=folder&folder={photos}&size=64"

    def settle(page, wait_for: str | None = None):
        page.wait_for_selector("[data-testid=stSidebarNav]", timeout=120_000)
        wait_for_script(page, timeout=180_000)
        if wait_for:
            page.get_by_text(wait_for).first.wait_for(timeout=180_000)
        page.wait_for_timeout(1500)

    def snap(page, name: str, full: bool = False):
        path = OUT / f"{len(shots) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full)
        shots.append(path)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{url}/reconstructions?{data}&run=photos-defaults")
        settle(page, "Originals, reconstructions and errors")
        page.get_by_text("Originals, reconstructions and errors").scroll_into_view_if_needed()
        snap(page, "photos-reconstructions-defaults")
        page.goto(f"{url}/train?{data}&run=photos-defaults")
        settle(page, "Suggested for this dataset")
        page.get_by_text("Suggested for this dataset").scroll_into_view_if_needed()
        snap(page, "photos-train-defaults-why")
        page.goto(f"{url}/reconstructions?{data}&run=photos-defaults&projector=1")
        settle(page, "Originals, reconstructions and errors")
        page.get_by_text("Originals, reconstructions and errors").scroll_into_view_if_needed()
        snap(page, "projector-reconstructions")
        page.goto(f"{url}/runs?{data}&run=photos-defaults&projector=1")
        settle(page, "Compare runs")
        snap(page, "projector-runs")
        page.reload()
        settle(page, "Compare runs")
        snap(page, "after-reload-runs")
        page.goto(f"{url}/generate?dataset=digits&run=digits-conditional-z2")
        settle(page, "Every class with every label")
        page.get_by_text("Style transfer: one code, every label").scroll_into_view_if_needed()
        snap(page, "conditional-latent2-style-transfer")
        page.get_by_text("Every class with every label").scroll_into_view_if_needed()
        snap(page, "conditional-latent2-label-grid")
        page.goto(f"{url}/generate?dataset=digits&run=digits-conditional-z16")
        settle(page, "Style transfer: one code, every label")
        page.get_by_text("Style transfer: one code, every label").scroll_into_view_if_needed()
        page.mouse.wheel(0, -250)
        page.wait_for_timeout(500)
        snap(page, "conditional-latent16-advice")
        page.goto(f"{url}/latent?dataset=digits&run=digits-conditional-z2")
        settle(page, "Latent space")
        snap(page, "latent-plane")
        browser.close()
    return shots


def main() -> None:
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ae-lab-lesson-shots")
    print(json.dumps(prepare(work), indent=2), flush=True)
    process, url = serve(work)
    try:
        for path in shoot(url, work):
            print(path)
    finally:
        process.terminate()
        process.wait(timeout=20)


if __name__ == "__main__":
    main()
