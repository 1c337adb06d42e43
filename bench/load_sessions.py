"""Figure: a class polling the Train page while jobs train — 30 sessions on one real server.

What it measures: `streamlit run app.py` (a real server, as the e2e walks start it) with training
jobs running (they are put in its queue through the restart file core.jobs.restart reads, so no
browser has to press Start) and N sessions that each speak Streamlit's own websocket protocol the
way a browser tab does: open the Train page following one of the running jobs (?job=), then, for
as long as the test lasts, answer every `auto_rerun` the server asks for (the live view's fragment
every 0.5 s, the sidebar's every 2 s) with the fragment rerun a browser sends. The time from
sending a rerun to the server's `script_finished` is the page response time; the server's RSS
(with its children) is sampled meanwhile. A baseline of one session is measured in the same run.

Why not 30 headless chromium pages: on a 2-core machine 30 browsers would measure the browsers.
These sessions leave out only the drawing in a browser (Vega charts, images): the server does all
its work — script runs, fragment reruns, chart specs, images, websocket sends — as for a browser.

    python -m bench.load_sessions --sessions 30 --seconds 30 [--jobs 2] [--gc-compare] [--out bench/results-load.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120
RUN_TIMEOUT_S = 120


def _job_state(n_jobs: int) -> dict:
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    cfg = RunConfig(data=DataConfig(dataset="digits"), model=ModelConfig(family="conv", preset="small", latent=2),
                    train=TrainConfig(epochs=1000, batch_size=64, device="cpu"))
    queued = []
    for i in range(n_jobs):
        cfg.name = f"load-{i}"
        queued.append({"id": f"load{i:04d}", "name": cfg.name, "owner": None, "config": cfg.to_dict()})
    return {"queued": queued, "saved": [], "lost": 0}


async def _rerun(ws, page_hash: str, query: str, fragment_id: str = "") -> tuple[float, list]:
    """Send one rerun; return (seconds until script_finished, auto_rerun messages seen)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    back = BackMsg()
    back.rerun_script.query_string = query
    back.rerun_script.page_name = "train"
    if page_hash:
        back.rerun_script.page_script_hash = page_hash
    if fragment_id:
        back.rerun_script.fragment_id = fragment_id
        back.rerun_script.is_auto_rerun = True
    started = time.perf_counter()
    await ws.send(back.SerializeToString())
    autos = []
    while True:
        msg = ForwardMsg()
        msg.ParseFromString(await asyncio.wait_for(ws.recv(), RUN_TIMEOUT_S))
        kind = msg.WhichOneof("type")
        if kind == "auto_rerun":
            autos.append((msg.auto_rerun.fragment_id, msg.auto_rerun.interval))
        elif kind == "new_session" and msg.new_session.page_script_hash:
            autos.append(("page", msg.new_session.page_script_hash))
        elif kind == "script_finished":
            return time.perf_counter() - started, autos


async def _session(url: str, query: str, seconds: float, full: list, polls: list, errors: list) -> None:
    import websockets

    ws_url = url.replace("http://", "ws://") + "/_stcore/stream"
    try:
        async with websockets.connect(ws_url, subprotocols=["streamlit"], origin=url, max_size=None) as ws:
            took, autos = await _rerun(ws, "", query)
            full.append(took)
            page_hash = next((value for key, value in autos if key == "page"), "")
            fragments = {key: value for key, value in autos if key != "page"}
            due = {fid: time.perf_counter() + interval for fid, interval in fragments.items()}
            end = time.perf_counter() + seconds
            while due and time.perf_counter() < end:
                fid = min(due, key=due.get)
                await asyncio.sleep(max(due[fid] - time.perf_counter(), 0))
                took, _ = await _rerun(ws, page_hash, query, fid)
                polls.append(took)
                due[fid] = max(due[fid] + fragments[fid], time.perf_counter())
    except Exception as exc:  # a session that fails is counted, not fatal
        errors.append(f"{type(exc).__name__}: {exc}")


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def _measure(url: str, pid: int, sessions: int, seconds: float, job_ids: list[str]) -> dict:
    from bench.app_start import _children, process_rss_mb

    full, polls, errors, rss = [], [], [], []
    # Walking /proc for the server's children costs CPU the server needs (2 cores): once per
    # measurement, then only the server's and those children's VmRSS every half second.
    family = [pid, *_children(pid)]

    async def sample_rss():
        while True:
            rss.append(sum(process_rss_mb(each) for each in family))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_rss())
    tasks = [_session(url, f"job={job_ids[i % len(job_ids)]}", seconds, full, polls, errors) for i in range(sessions)]
    started = time.perf_counter()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - started
    sampler.cancel()
    ms = lambda v: None if v is None else round(v * 1000, 1)  # noqa: E731
    return {"sessions": sessions, "seconds": round(wall, 1), "polls": len(polls), "full_runs": len(full),
            "poll_p50_ms": ms(_percentile(polls, 0.5)), "poll_p99_ms": ms(_percentile(polls, 0.99)),
            "poll_mean_ms": ms(statistics.fmean(polls)) if polls else None,
            "page_load_p50_ms": ms(_percentile(full, 0.5)), "page_load_p99_ms": ms(_percentile(full, 0.99)),
            "polls_per_s": round(len(polls) / wall, 1), "server_rss_mb_peak": round(max(rss), 1) if rss else None,
            "errors": errors[:3], "failed_sessions": len(errors)}


def measure(sessions: int = 30, seconds: float = 30.0, jobs: int = 2, log_dir: Path | None = None,
            server_args: tuple[str, ...] = ()) -> dict:
    from bench.app_start import _healthy, free_port, rss_mb
    from core.jobs.restart import write_state

    with tempfile.TemporaryDirectory(prefix="ae-lab-load-") as scratch:
        root = Path(scratch) / "checkpoints"
        write_state(root, _job_state(jobs + 1))  # `jobs` train, one more waits in the queue
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, AE_LAB_CHECKPOINTS=str(root), AE_LAB_MAX_JOBS=str(jobs), PYTHONUNBUFFERED="1")
        log_path = (log_dir or Path(scratch)) / "load-server.log"
        with open(log_path, "w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                 "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
                 "--server.fileWatcherType", "none", "--server.runOnSave", "false", *server_args],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + START_TIMEOUT_S
                while not _healthy(url):
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the server did not start; see {log_path}")
                    time.sleep(0.25)
                job_ids = [f"load{i:04d}" for i in range(jobs)]
                # Warm up: the first session imports the pages, restores the jobs and loads the data.
                asyncio.run(_measure(url, server.pid, 1, 3.0, job_ids))
                idle_rss = rss_mb(server.pid)
                baseline = asyncio.run(_measure(url, server.pid, 1, seconds, job_ids))
                loaded = asyncio.run(_measure(url, server.pid, sessions, seconds, job_ids))
            finally:
                server.terminate()
                try:
                    server.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait(timeout=30)
    load = os.getloadavg()
    return {"jobs_training": jobs, "server_rss_mb_after_warmup": round(idle_rss, 1), "baseline_1_session": baseline,
            f"{sessions}_sessions": loaded,
            "poll_p50_ratio_vs_1_session": (round(loaded["poll_p50_ms"] / baseline["poll_p50_ms"], 2)
                                            if loaded["poll_p50_ms"] and baseline["poll_p50_ms"] else None),
            "cpu_count": os.cpu_count(), "load_average_at_end": [round(x, 1) for x in load]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load_sessions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--jobs", type=int, default=2, help="jobs training at once meanwhile (AE_LAB_MAX_JOBS)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results-load.json")
    parser.add_argument("--gc-compare", action="store_true",
                        help="also measure with Streamlit's default full gc.collect after every script run "
                             "(.streamlit/config.toml turns it off), one server after the other")
    args = parser.parse_args(argv)
    results = measure(args.sessions, args.seconds, args.jobs)
    if args.gc_compare:
        results = {"app_config": results,
                   "post_script_gc_on": measure(args.sessions, args.seconds, args.jobs,
                                                server_args=("--runner.postScriptGC", "true"))}
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
