"""A school's login (st.login, OpenID Connect) in real browsers, against a local OIDC provider
(oidc-provider-mock) that the test starts: two students and a teacher sign in, each in a browser of
their own. Alice starts a job; Bob sees it but cannot stop it (Stop disabled with the reason; a
click on it forged on the wire refused; Alice's copied URL does not make him Alice); the teacher's
account, listed in AE_LAB_TEACHERS, stops it; signing out brings the sign-in screen back. On Runs,
Bob looks at and compares Alice's run and resumes a copy of his own, but only Alice or the teacher
deletes it; on Experiments, only Alice stops and deletes hers.

To add a check for another page, take the `classroom` fixture: three signed-in browsers on one
server, Bob's with a `Wire` to forge a click, and `sign_in` for a fourth. Streamlit itself drops a
click on a button drawn disabled; what the app must refuse on its own is a click on an enabled
button with another value forged beside it (Wire.click's `choices`)."""
from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from lab import choose_digits, configure_conv, keyed, start_training
from streamlit_ui import (APP_LOAD_TIMEOUT_MS, RERUN_TIMEOUT_MS, TRAINING_TIMEOUT_MS, assert_no_traceback, choose,
                          go_to, main, set_number, set_text, wait_for_script)

# name -> the ID token's claims (the provider's predefined users: one click each on its page)
PEOPLE = {
    "alice": {"sub": "alice", "email": "alice@school.example", "name": "Alice Student", "email_verified": True},
    "bob": {"sub": "bob", "email": "bob@school.example", "name": "Bob Student", "email_verified": True},
    "teacher": {"sub": "teacher", "email": "teacher@school.example", "name": "Ms Teacher", "email_verified": True},
}
NOT_YOURS = "Only the student who started this job (or the teacher) can stop it."


@pytest.fixture
def login_app(start_app, start_oidc_provider, tmp_path, monkeypatch):
    """An app server whose secrets.toml points st.login at the test's provider; the teacher's
    account is listed in AE_LAB_TEACHERS there, as the README tells a teacher to do."""
    oidc_provider = start_oidc_provider(PEOPLE.values())
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text(
        f'AE_LAB_TEACHERS = ["{PEOPLE["teacher"]["email"]}"]\n\n'
        "[auth]\n"
        'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'  # Streamlit fills in its port
        f'cookie_secret = "{secrets.token_urlsafe(32)}"\n'
        'client_id = "autoencoder-lab"\n'
        f'client_secret = "{secrets.token_urlsafe(16)}"\n'
        f'server_metadata_url = "{oidc_provider}/.well-known/openid-configuration"\n')
    monkeypatch.setenv("STREAMLIT_SECRETS_FILES", str(secrets_file))
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the local provider speaks plain http
    monkeypatch.setenv("AE_LAB_MAX_EPOCHS", "2000")
    return start_app(max_jobs=2)


def sign_in(page: Page, url: str, who: str) -> None:
    """Open the app, see the sign-in screen, sign in as `who` on the provider's page, come back."""
    page.goto(url)
    sign_in_button = main(page).get_by_role("button", name="Sign in")
    expect(sign_in_button).to_be_visible(timeout=APP_LOAD_TIMEOUT_MS)
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)  # no page before signing in
    sign_in_button.click()
    page.get_by_role("button", name=PEOPLE[who]["sub"], exact=True).click(timeout=RERUN_TIMEOUT_MS)
    page.wait_for_url(re.compile(re.escape(url)), timeout=RERUN_TIMEOUT_MS)
    expect(page.get_by_test_id("stSidebarNav")).to_be_visible(timeout=APP_LOAD_TIMEOUT_MS)
    wait_for_script(page, timeout=APP_LOAD_TIMEOUT_MS)
    expect(sidebar(page)).to_contain_text(f"Signed in as {PEOPLE[who]['name']} ({PEOPLE[who]['email']})")
    assert "owner=" not in page.url
    assert_no_traceback(page)


def sidebar(page: Page):
    return page.get_by_test_id("stSidebar")


def stop_button(live):
    return keyed(live, "stop_job").get_by_role("button", name="Stop")


class Wire:
    """A browser's connection to the server, passed through the test, for the request a page never
    sends but a student with a script can: a click on a button the page drew disabled. It keeps the
    last rerun request the page sent and the ids of the buttons the server drew."""

    def __init__(self, page: Page):
        self.server = None
        self.last_rerun: BackMsg | None = None
        self.button_ids: dict[str, str] = {}  # widget key -> Streamlit's widget id
        page.route_web_socket(re.compile(r"/_stcore/stream$"), self._connect)

    def _connect(self, page_side) -> None:
        server = self.server = page_side.connect_to_server()

        def up(message):
            if isinstance(message, bytes):
                msg = BackMsg.FromString(message)
                if msg.WhichOneof("type") == "rerun_script":
                    self.last_rerun = msg
            server.send(message)

        def down(message):
            if isinstance(message, bytes):
                msg = ForwardMsg.FromString(message)
                if msg.WhichOneof("type") == "delta" and msg.delta.WhichOneof("type") == "new_element":
                    element = msg.delta.new_element
                    if element.WhichOneof("type") == "button":
                        self.button_ids[element.button.id.rsplit("-", 1)[-1]] = element.button.id
            page_side.send(message)

        page_side.on_message(up)
        server.on_message(down)

    def click(self, key: str, choices: dict[str, str] | None = None) -> None:
        """Send the server a full rerun in which the button `key` was clicked, with the page's last
        widget values except `choices` (widget key -> a select box's option, sent as its text)."""
        assert self.server is not None and self.last_rerun is not None and key in self.button_ids
        forged = BackMsg()
        forged.CopyFrom(self.last_rerun)
        forged.rerun_script.fragment_id = ""
        forged.rerun_script.is_auto_rerun = False
        for widget_key, option in (choices or {}).items():
            states = [w for w in forged.rerun_script.widget_states.widgets if w.id.endswith(f"-{widget_key}")]
            assert len(states) == 1, f"no value of {widget_key} in the page's last rerun request"
            states[0].string_value = option
        forged.rerun_script.widget_states.widgets.add(id=self.button_ids[key], trigger_value=True)
        self.server.send(forged.SerializeToString())


@dataclass
class Classroom:
    url: str
    alice: Page
    bob: Page
    teacher: Page
    bob_wire: Wire  # what Bob's browser and the server say to each other; Bob can forge clicks


@pytest.fixture
def classroom(login_app, new_page) -> Classroom:
    """Alice, Bob and the teacher signed in, each in a browser of their own."""
    alice, bob, teacher = new_page(), new_page(), new_page()
    room = Classroom(login_app.url, alice, bob, teacher, Wire(bob))
    for who in ("alice", "bob", "teacher"):
        sign_in(getattr(room, who), room.url, who)
    return room


def test_students_and_the_teacher_sign_in_and_only_the_owner_or_the_teacher_stops(classroom, new_page, shot):
    alice, bob, teacher = classroom.alice, classroom.bob, classroom.teacher
    shot(alice, "alice-signed-in")
    choose_digits(alice)
    configure_conv(alice, epochs=1000, run_name="alice-conv")
    alice_live = start_training(alice)
    expect(stop_button(alice_live)).to_be_enabled()
    alice_url = alice.url
    assert "job=" in alice_url and "owner=" not in alice_url

    bob.goto(alice_url)  # Alice's copied full URL, opened in Bob's browser: he is still Bob
    wait_for_script(bob, timeout=APP_LOAD_TIMEOUT_MS)
    expect(sidebar(bob)).to_contain_text(f"Signed in as {PEOPLE['bob']['name']}")
    bob_live = keyed(bob, "live_training")
    expect(bob_live).to_contain_text("alice-conv")
    expect(stop_button(bob_live)).to_be_disabled()
    expect(bob_live).to_contain_text(NOT_YOURS)
    shot(bob, "bob-sees-alices-job-without-stop")

    classroom.bob_wire.click("stop_job")  # what his page would never send: the disabled Stop clicked
    bob.wait_for_timeout(3000)  # a stop would show within a poll or two
    expect(bob_live).not_to_contain_text(re.compile("stopped|stopping", re.I))
    expect(alice_live).not_to_contain_text(re.compile("stopped|stopping", re.I))
    expect(stop_button(alice_live)).to_be_enabled()

    stranger = new_page()  # the URL in a browser that never signed in: the sign-in screen, nothing else
    stranger.goto(alice_url)
    expect(main(stranger).get_by_role("button", name="Sign in")).to_be_visible(timeout=APP_LOAD_TIMEOUT_MS)
    expect(main(stranger)).not_to_contain_text("alice-conv")

    teacher.goto(alice_url)
    wait_for_script(teacher, timeout=APP_LOAD_TIMEOUT_MS)
    expect(sidebar(teacher)).to_contain_text("Teacher: you can stop any job.")
    teacher_live = keyed(teacher, "live_training")
    expect(stop_button(teacher_live)).to_be_enabled(timeout=RERUN_TIMEOUT_MS)
    stop_button(teacher_live).click()
    expect(teacher_live).to_contain_text(re.compile("stopped", re.I), timeout=RERUN_TIMEOUT_MS * 2)
    expect(alice_live).to_contain_text(re.compile("stopped", re.I), timeout=RERUN_TIMEOUT_MS * 2)
    shot(teacher, "teacher-stopped-alices-job")
    assert_no_traceback(teacher)
    assert_no_traceback(bob)

    sidebar(teacher).get_by_role("button", name="Sign out").click()
    # The provider's end-session page, then back to the app's sign-in screen.
    end_session = teacher.get_by_role("button", name="End session")
    end_session.click(timeout=RERUN_TIMEOUT_MS)
    expect(main(teacher).get_by_role("button", name="Sign in")).to_be_visible(timeout=APP_LOAD_TIMEOUT_MS)
    shot(teacher, "teacher-signed-out")


# ---------------------------------------------------------------- the Runs page

ALICES_RUN = "alice-tiny"
BOBS_COPY = "bob-goes-on"
NOT_YOURS_TO_DELETE = (f"Only the student who made {ALICES_RUN} (or the teacher) can delete it; you can still look "
                       "at it and compare it.")
REFUSED_DELETE = (f"Only the student who made run {ALICES_RUN} (or the teacher) can delete it; you can still look "
                  "at it, or make a copy of your own.")


def expander(page: Page, title: str):
    """The main area's expander titled `title`, opened."""
    found = main(page).get_by_test_id("stExpander").filter(has_text=title)
    expect(found).to_have_count(1, timeout=RERUN_TIMEOUT_MS)
    if not found.locator("details").first.evaluate("d => d.open"):
        found.locator("summary").first.click()
    return found


def delete_controls(page: Page, run: str):
    """The Delete section with `run` chosen: (section, its confirm checkbox, its Delete button)."""
    section = expander(page, "Delete a run")
    section.scroll_into_view_if_needed()
    if section.get_by_role("combobox", name="Run to delete", exact=True).input_value() != run:
        choose(page, "Run to delete", run, scope=section)
    return (section, section.get_by_role("checkbox", name="Yes, delete this run and its files for good"),
            section.get_by_role("button", name="Delete run"))


def confirm(page: Page, section, sure) -> None:
    """Tick the Delete section's confirmation (a click on its label: that is what takes the click)."""
    expect(sure).to_be_enabled()
    section.get_by_text("Yes, delete this run and its files for good", exact=True).click()
    expect(sure).to_be_checked()
    wait_for_script(page)


def delete(page: Page, run: str) -> None:
    section, sure, button = delete_controls(page, run)
    confirm(page, section, sure)
    expect(button).to_be_enabled()
    button.click()
    wait_for_script(page)


def test_on_runs_anyone_looks_compares_and_copies_but_only_the_owner_or_the_teacher_deletes(classroom, login_app, shot):
    """Issue: only the owner or the teacher deletes, resumes or overwrites a saved run; everyone may
    still look and compare, and may resume a copy under a new name of their own."""
    alice, bob, teacher, runs = classroom.alice, classroom.bob, classroom.teacher, login_app.checkpoints
    choose_digits(alice)
    configure_conv(alice, epochs=2, run_name=ALICES_RUN)
    expect(start_training(alice)).to_contain_text(f"Saved as run {ALICES_RUN}.", timeout=TRAINING_TIMEOUT_MS)

    # Bob looks at Alice's run and compares it: the compare chart draws it by default.
    go_to(bob, "Runs")
    expect(main(bob)).to_contain_text("1 saved run on this server")
    expect(keyed(bob, "compare_runs")).to_contain_text(ALICES_RUN)
    # Vega draws the chart as SVG: its texts are the axes', the legend's (the run) and the title.
    compared = main(bob).get_by_test_id("stVegaLiteChart").filter(has_text="Loss per epoch").filter(has_text=ALICES_RUN)
    expect(compared).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    # Deleting it is not his: the page says so in one sentence, and the controls are disabled.
    section, sure, button = delete_controls(bob, ALICES_RUN)
    expect(section).to_contain_text(NOT_YOURS_TO_DELETE)
    expect(sure).to_be_disabled()
    expect(button).to_be_disabled()
    section.scroll_into_view_if_needed()
    shot(bob, "bob-may-not-delete-alices-run")

    # Resume: not into Alice's run, only a copy of his own under a name he gives it.
    section = expander(bob, "Continue training a run")
    expect(section).to_contain_text(f"{ALICES_RUN} is not yours (another student's or the teacher's), so it "
                                    "stays as it is")
    expect(section).not_to_contain_text("saved again under its name")  # no resume into her run
    expect(section.get_by_label("Name of your copy", exact=True)).to_have_value(f"{ALICES_RUN}-copy")
    set_number(bob, "More epochs", 1, scope=section)
    set_text(bob, "Name of your copy", BOBS_COPY, scope=section)
    section.scroll_into_view_if_needed()
    shot(bob, "bob-resumes-a-copy")
    section.get_by_role("button", name="Resume training").click()
    wait_for_script(bob)
    expect(keyed(bob, "live_training")).to_contain_text(f"Saved as run {BOBS_COPY}.", timeout=TRAINING_TIMEOUT_MS)
    alices_info = json.loads((runs / ALICES_RUN / "info.json").read_text())
    bobs_info = json.loads((runs / BOBS_COPY / "info.json").read_text())
    assert alices_info["epochs_run"] == 2 and bobs_info["epochs_run"] == 3, (alices_info, bobs_info)
    assert bobs_info["copied_from"] == ALICES_RUN and bobs_info["owner"] != alices_info["owner"]

    # The copy is Bob's: he may delete it, Alice may not.
    go_to(bob, "Runs")
    expect(main(bob)).to_contain_text("2 saved runs on this server")
    section, sure, button = delete_controls(bob, BOBS_COPY)
    expect(section).not_to_contain_text("can delete it")
    confirm(bob, section, sure)
    expect(button).to_be_enabled()
    # What his page never sends: Delete clicked with Alice's run chosen (forged on the wire while his
    # own run's Delete is enabled; Streamlit itself drops a click on a button drawn disabled).
    classroom.bob_wire.click("delete_run", {"delete_run_name": ALICES_RUN})
    expect(section).to_contain_text(REFUSED_DELETE, timeout=RERUN_TIMEOUT_MS)
    assert (runs / ALICES_RUN / "info.json").is_file() and (runs / BOBS_COPY / "info.json").is_file()
    section.scroll_into_view_if_needed()
    shot(bob, "bob-forged-delete-of-alices-run-refused")
    go_to(alice, "Runs")
    section, sure, button = delete_controls(alice, BOBS_COPY)
    expect(section).to_contain_text(f"Only the student who made {BOBS_COPY} (or the teacher) can delete it")
    expect(sure).to_be_disabled()

    # Alice deletes her own run; the teacher deletes Bob's copy.
    delete(alice, ALICES_RUN)
    expect(main(alice)).to_contain_text("1 saved run on this server", timeout=RERUN_TIMEOUT_MS)
    assert not (runs / ALICES_RUN).exists()
    shot(alice, "alice-deleted-her-run")
    go_to(teacher, "Runs")
    section, sure, button = delete_controls(teacher, BOBS_COPY)
    expect(section).not_to_contain_text("can delete it")
    delete(teacher, BOBS_COPY)
    expect(main(teacher)).to_contain_text("No trained run yet", timeout=RERUN_TIMEOUT_MS)
    assert not (runs / BOBS_COPY).exists()
    shot(teacher, "teacher-deleted-bobs-copy")
    for page in (alice, bob, teacher):
        assert_no_traceback(page)


# ---------------------------------------------------------------- the Experiments page

def test_on_experiments_only_the_owner_stops_and_deletes_an_experiment(classroom, shot):
    """Bob sees Alice's experiment, but its Stop is disabled and its Delete withheld, each with the
    page's sentence; Alice stops it and deletes it."""
    alice, bob = classroom.alice, classroom.bob
    choose_digits(alice)
    go_to(alice, "Experiments")
    choose(alice, "Preset", "Latent sizes")
    set_number(alice, "Image limit (0 = all)", 300)
    set_number(alice, "Epochs per run", 500)  # long enough to still run while Bob looks
    alice.get_by_role("button", name="Start experiment").click()
    wait_for_script(alice)
    alice_live = keyed(alice, "exp_live")
    alice_stop = alice_live.get_by_role("button", name="Stop experiment")
    expect(alice_stop).to_be_enabled(timeout=RERUN_TIMEOUT_MS)

    go_to(bob, "Experiments")
    bob_live = keyed(bob, "exp_live")
    expect(bob_live).to_contain_text("latent-sizes: running", timeout=RERUN_TIMEOUT_MS)
    expect(bob_live.get_by_role("button", name="Stop experiment")).to_be_disabled()
    expect(bob_live).to_contain_text("Only the student who started this experiment (or the teacher) can stop it.")
    bob_live.scroll_into_view_if_needed()
    shot(bob, "bob-may-not-stop-alices-experiment")

    alice_stop.click()
    expect(alice_live).to_contain_text("latent-sizes: stopped", timeout=RERUN_TIMEOUT_MS * 2)
    # Bob's page follows: the experiment ended, its Delete is not his either.
    section = main(bob).get_by_test_id("stExpander").filter(has_text="Delete this experiment")
    expect(section).to_have_count(1, timeout=RERUN_TIMEOUT_MS * 2)
    section.locator("summary").first.click()
    expect(section).to_contain_text("Only the student who started this experiment (or the teacher) can delete it.")
    expect(section.get_by_role("checkbox")).to_have_count(0)
    expect(section.get_by_role("button", name="Delete experiment")).to_have_count(0)
    section.scroll_into_view_if_needed()
    shot(bob, "bob-may-not-delete-alices-experiment")

    section = main(alice).get_by_test_id("stExpander").filter(has_text="Delete this experiment")
    expect(section).to_have_count(1, timeout=RERUN_TIMEOUT_MS)
    section.locator("summary").first.click()
    section.get_by_text("Yes, delete it", exact=True).click()
    wait_for_script(alice)
    section.get_by_role("button", name="Delete experiment").click()
    wait_for_script(alice)
    expect(main(alice)).to_contain_text("No experiment yet", timeout=RERUN_TIMEOUT_MS)
    shot(alice, "alice-deleted-her-experiment")
    for page in (alice, bob):
        assert_no_traceback(page)
