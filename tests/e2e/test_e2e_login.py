"""A school's login (st.login, OpenID Connect) in real browsers, against a local OIDC provider
(oidc-provider-mock) that the test starts: two students and a teacher sign in, each in a browser of
their own. Alice starts a job; Bob sees it but cannot stop it (Stop disabled with the reason; a
click on it forged on the wire refused; Alice's copied URL does not make him Alice); the teacher's
account, listed in AE_LAB_TEACHERS, stops it; signing out brings the sign-in screen back.

To add a check for another page (e.g. who may delete or resume a saved run on Runs), take the
`classroom` fixture: three signed-in browsers on one server, Bob's with a `Wire` to forge a click
on a button his page shows disabled (e.g. Delete), and `sign_in` for a fourth."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from lab import choose_digits, configure_conv, keyed, start_training
from streamlit_ui import (APP_LOAD_TIMEOUT_MS, RERUN_TIMEOUT_MS, assert_no_traceback, main, wait_for_script)

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

    def click(self, key: str) -> None:
        """Send the server a full rerun in which the button `key` was clicked."""
        assert self.server is not None and self.last_rerun is not None and key in self.button_ids
        forged = BackMsg()
        forged.CopyFrom(self.last_rerun)
        forged.rerun_script.fragment_id = ""
        forged.rerun_script.is_auto_rerun = False
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
