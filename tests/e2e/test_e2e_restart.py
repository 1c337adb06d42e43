"""A server restart loses nothing (issue 9): a real `streamlit run app.py` with one run training and
one queued is stopped with SIGTERM, then started again on the same checkpoints folder. The running
job was saved as a stopped run, the queued one runs again under its old id (the student's tab,
reloaded, follows it), a leftover temporary folder of a killed save is gone, and the page says so."""
from __future__ import annotations

import json
import os
import re
import time
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect

from lab import choose_digits, configure_conv, keyed, start_training, wait_for_epoch_points
from streamlit_ui import RERUN_TIMEOUT_MS, TRAINING_TIMEOUT_MS, assert_no_traceback, go_to, main, open_app

RESTART_NOTE = re.compile(r"The server restarted: 1 run was saved at epoch (\d+), 1 queued run was restored\.")


def alice_trains_bob_waits(server, new_page, alice_epochs: int, trained: int):
    """Alice's run (alice-conv) trains `trained` epochs while Bob's (bob-conv, 2 epochs) waits in the queue."""
    alice, bob = new_page(), new_page()
    for page in (alice, bob):
        open_app(page, server.url)
        choose_digits(page)
    # Both forms filled first, then the two Starts back to back: Alice's short run must still be
    # training when Bob's is queued (a form takes longer to fill than her 8 epochs on one thread).
    configure_conv(alice, epochs=alice_epochs, run_name="alice-conv")
    configure_conv(bob, epochs=2, run_name="bob-conv")
    alice_live = start_training(alice)
    bob_live = start_training(bob)
    expect(bob_live).to_contain_text("Queued: position 1")
    wait_for_epoch_points(alice_live, series=2, epochs=trained)
    return alice, bob, alice_live, bob_live


def test_sigterm_saves_the_running_run_and_a_restart_restores_the_queue(start_app, new_page, shot):
    first = start_app(max_jobs=1)
    alice, bob, alice_live, _bob_live = alice_trains_bob_waits(first, new_page, alice_epochs=500, trained=2)
    shot(alice, "alice-training-before-sigterm")
    bob_job = parse_qs(urlparse(bob.url).query)["job"][0]

    killed_save = first.checkpoints / ".tmp-half-saved-0badf00d"  # what a save killed halfway leaves
    killed_save.mkdir()
    (killed_save / "weights.pt").write_bytes(b"half")
    long_ago = time.time() - 3600
    for path in (killed_save / "weights.pt", killed_save):
        os.utime(path, (long_ago, long_ago))

    first.process.terminate()  # SIGTERM, as systemd or docker stop sends it
    assert first.process.wait(timeout=60) == 0, first.log_tail()
    assert (first.checkpoints / "alice-conv" / "info.json").is_file(), first.log_tail()

    port = urlparse(first.url).port
    second = start_app(max_jobs=1, port=port, checkpoints=first.checkpoints)
    # Bob's tab reloads its deep link (/train?job=...&owner=...) as the very first visit to the
    # new server: the app (views/, no pages/ folder) opens it with its navigation and sidebar.
    bob.reload()  # the same URL: ?job= and ?owner= survive
    expect(main(bob)).to_contain_text(RESTART_NOTE, timeout=RERUN_TIMEOUT_MS * 2)
    saved_at = int(RESTART_NOTE.search(main(bob).inner_text()).group(1))
    assert saved_at >= 2
    assert parse_qs(urlparse(bob.url).query)["job"][0] == bob_job
    bob_live = keyed(bob, "live_training")
    expect(bob_live).to_contain_text("Saved as run bob-conv", timeout=TRAINING_TIMEOUT_MS)
    shot(bob, "bob-after-restart-queued-run-finished")
    assert not killed_save.exists()

    info = json.loads((first.checkpoints / "alice-conv" / "info.json").read_text())
    assert info["status"] == "stopped" and info["stopped_by"] == "server shutdown"
    assert info["epochs_run"] == saved_at
    go_to(bob, "Runs")  # the stopped run is listed (the table is a canvas: its rows are not text)
    expect(main(bob)).to_contain_text("Continue training a run", timeout=RERUN_TIMEOUT_MS)
    expect(main(bob)).to_contain_text("alice-conv")
    shot(bob, "runs-after-restart")
    assert_no_traceback(bob)
    assert second.process.poll() is None


CONTINUED_NOTE = re.compile(r"The server restarted: 1 running job continues from its checkpoint at epoch (\d+), "
                            r"1 queued run was restored\.")


def test_a_server_killed_mid_training_continues_the_run_and_the_queue(start_app, new_page, shot, monkeypatch):
    """SIGKILL (the out-of-memory killer, a power cut): no handler runs. The queue was on disk since
    it changed, the running job's checkpoint since its last epoch; the next server continues both."""
    monkeypatch.setenv("AE_LAB_CHECKPOINT_SECONDS", "0")  # a checkpoint after every epoch
    first = start_app(max_jobs=1)
    alice, bob, alice_live, _bob_live = alice_trains_bob_waits(first, new_page, alice_epochs=8, trained=3)
    first.process.kill()  # SIGKILL
    first.process.wait(timeout=60)
    assert not (first.checkpoints / "alice-conv").exists()  # nothing was saved: it was killed

    second = start_app(max_jobs=1, port=urlparse(first.url).port, checkpoints=first.checkpoints)
    alice.reload()  # her tab's URL still follows her job (?job=)
    expect(main(alice)).to_contain_text(CONTINUED_NOTE, timeout=RERUN_TIMEOUT_MS * 2)
    continued_at = int(CONTINUED_NOTE.search(main(alice).inner_text()).group(1))
    assert continued_at >= 2
    alice_live = keyed(alice, "live_training")
    # The screenshot shows her job training on from its checkpoint, not the page half drawn.
    expect(alice_live).to_contain_text(re.compile(r"epoch \d+/8"), timeout=RERUN_TIMEOUT_MS)
    shot(alice, "alice-after-sigkill-continues")
    expect(alice_live).to_contain_text("Saved as run alice-conv", timeout=TRAINING_TIMEOUT_MS)
    info = json.loads((first.checkpoints / "alice-conv" / "info.json").read_text())
    assert info["epochs_run"] == 8 and info["status"] == "finished"
    bob.reload()
    expect(keyed(bob, "live_training")).to_contain_text("Saved as run bob-conv", timeout=TRAINING_TIMEOUT_MS)
    shot(bob, "bob-after-sigkill-queued-run-finished")
    assert_no_traceback(alice)
    assert second.process.poll() is None
