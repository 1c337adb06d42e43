"""Jobs have owners (issue 9), on the Train page through AppTest: a browser session owns the jobs
it starts (its id in ?owner= survives a reload); others see them but cannot stop them; the teacher,
with AE_LAB_TEACHER_TOKEN entered in the sidebar, can. And the restart note, said once."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.config import DataConfig, RunConfig, TrainConfig
from core.serving.access import owner_key
from ui.state import get_registry

from apptest_helpers import APP, checked, expect_errors, open_app_page

# The sidebar (teacher box) and app.py's owner id and restart note are under test: run app.py the
# way a real server does.

JOB_TIMEOUT = 120
TOKEN = "correct horse battery staple"


def long_run(name: str) -> RunConfig:
    return RunConfig(data=DataConfig(dataset="digits"), train=TrainConfig(epochs=1000, batch_size=16, device="cpu"),
                     name=name)


def train_tab(owner: str | None = None, job: str | None = None, errors=()) -> AppTest:
    """A browser tab on the Train page; `owner`: the ?owner= its URL carries (a reload); error
    boxes holding one of `errors` are the test's to check."""
    query = {"owner": owner} if owner else {}
    if job:
        query["job"] = job
    return open_app_page("views/train.py", query=query, errors=errors)


def param(at: AppTest, name: str) -> str:
    value = at.query_params[name]
    return value[0] if isinstance(value, list) else value


@pytest.fixture
def teacher_server(no_runs, monkeypatch):
    monkeypatch.setenv("AE_LAB_TEACHER_TOKEN", TOKEN)
    monkeypatch.setenv("AE_LAB_MAX_EPOCHS", "10000")  # long_run's jobs must keep running (default limit 1000)


@pytest.fixture
def registry(teacher_server, app_registry):
    return app_registry


def test_the_starting_tab_owns_its_job_and_keeps_it_after_a_reload(registry):
    alice = train_tab()
    owner = param(alice, "owner")
    alice.text_input(key="cfg_name").input("alice-run").run()
    alice.number_input(key="cfg_epochs").set_value(1000).run()
    alice.button(key="start_job").click().run()
    job = param(alice, "job")
    assert registry.snapshot(job).owner_key == owner_key(owner)
    reloaded = train_tab(owner=owner, job=job)  # a reload: a new session, the same URL
    assert param(reloaded, "owner") == owner
    stop = reloaded.button(key="stop_job")
    assert not stop.disabled
    stop.click().run()
    assert registry.wait(job, timeout=JOB_TIMEOUT).status == "stopped"


def test_another_student_sees_the_job_but_cannot_stop_it_and_the_teacher_can(registry):
    job = registry.start(long_run("alice-run"), owner="alice-owner-id-0123456789")
    bob = train_tab(job=job)
    assert param(bob, "owner") != "alice-owner-id-0123456789"
    assert bob.button(key="stop_job").disabled
    assert "Only the student who started this job (or the teacher) can stop it." in [c.value for c in bob.caption]
    assert registry.snapshot(job).status in ("loading", "running")

    expect_errors(bob, "That is not the teacher token")
    bob.text_input(key="teacher_token").input("guess").run()
    assert "That is not the teacher token; check it and try again." in [e.value for e in bob.error]
    assert bob.button(key="stop_job").disabled
    expect_errors(bob)  # the right token: no error box any more
    bob.text_input(key="teacher_token").input(TOKEN).run()
    assert not bob.exception
    assert any("Teacher" in c.value for c in bob.caption)
    bob.button(key="stop_job").click().run()
    assert registry.wait(job, timeout=JOB_TIMEOUT).status == "stopped"


def test_a_forged_owner_in_the_url_is_replaced(registry):
    at = train_tab(owner="../../etc")
    assert param(at, "owner") != "../../etc" and len(param(at, "owner")) >= 16


def test_the_restart_note_is_said_once_and_can_be_dismissed(no_runs):
    from core.jobs.restart import write_state

    write_state(no_runs, {"queued": [{"id": "abcd1234", "name": "bob", "owner": None,
                                      "config": RunConfig(data=DataConfig(dataset="digits"),
                                                          train=TrainConfig(epochs=1, batch_size=512, device="cpu"),
                                                          name="bob").to_dict()}],
                          "saved": [{"run": "alice", "epoch": 12, "owner": None}], "lost": 0})
    at = train_tab()
    notes = [i.value.replace("\\", "") for i in at.info if "server restarted" in i.value]  # as shown: unescaped
    assert notes == ["The server restarted: 1 run was saved at epoch 12, 1 queued run was restored. "
                     "Continue them with Resume on the Runs page."]
    get_registry().wait("abcd1234", timeout=JOB_TIMEOUT)
    at.button(key="dismiss_restart_note").click().run()
    assert not [i.value for i in at.info if "server restarted" in i.value]


# ---------------------------------------------------------------- the teacher token's throttle

def test_the_sixth_wrong_guess_in_a_row_is_refused_uncompared_and_the_token_works_after_the_lock(
        teacher_server, monkeypatch):
    from core.serving import guesses

    clock = [1000.0]
    monkeypatch.setattr(guesses, "monotonic", lambda: clock[0])
    compared = []
    real = guesses.matches
    monkeypatch.setattr(guesses, "matches", lambda entered, expected: compared.append(entered) or real(entered, expected))

    at = expect_errors(train_tab(), "not the teacher token", "Too many wrong teacher tokens")
    for n in range(1, 6):
        at.text_input(key="teacher_token").input(f"guess {n}").run()
        errors = [e.value for e in at.error]
        assert len(compared) == n
    assert errors == ["Too many wrong teacher tokens from this browser: try again in 30 s."]

    at.text_input(key="teacher_token").input(TOKEN).run()  # the 6th, while locked: not even compared
    assert len(compared) == 5
    assert [e.value for e in at.error] == ["Too many wrong teacher tokens from this browser: try again in 30 s."]
    assert not any("Teacher" in c.value for c in at.caption)

    clock[0] += 30
    at.text_input(key="teacher_token").input(TOKEN).run()
    assert len(compared) == 6 and not at.error
    assert any("Teacher: you can stop any job." in c.value for c in at.caption)
    assert TOKEN not in str(at.query_params)


# ---------------------------------------------------------------- a login (st.login, OIDC)

ISSUER = "https://id.school.example"
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "a-long-random-cookie-secret",
        "client_id": "ae-lab", "client_secret": "client-secret",
        "server_metadata_url": f"{ISSUER}/.well-known/openid-configuration"}


def person(sub: str, email: str = "", name: str = "") -> dict:
    return {"is_logged_in": True, "iss": ISSUER, "sub": sub, "email": email, "name": name}


def login_tab(user: dict, owner: str | None = None, job: str | None = None, auth: dict = AUTH,
              page: str = "views/train.py", errors=()) -> AppTest:
    """A browser tab on a server whose secrets have [auth]; `user`: what st.user holds (its ID token's claims).
    Like open_app_page, it fails the test on an exception or an error box, after every run, unless the
    box holds one of `errors` (the test checks those itself)."""
    at = checked(AppTest.from_file(APP, default_timeout=60), errors)
    at.secrets["auth"] = dict(auth)
    at.user = user
    if owner:
        at.query_params["owner"] = owner
    if job:
        at.query_params["job"] = job
    at.switch_page(page)
    at.run()
    return at


def test_with_a_login_nothing_shows_before_signing_in(teacher_server):
    at = login_tab({"is_logged_in": False}, owner="alice-owner-id-0123456789")
    assert [b.label for b in at.button] == ["Sign in"]
    assert at.title[0].value.endswith("Autoencoder Lab")
    assert not at.text_input and not at.number_input and not at.get("selectbox")  # no page, no sidebar
    assert not [m.value for m in at.markdown if "Device:" in m.value]
    assert "owner" not in at.query_params


def test_an_incomplete_login_set_up_says_so_and_offers_no_button(no_runs):
    at = login_tab({"is_logged_in": False}, auth={k: v for k, v in AUTH.items() if k != "client_secret"},
                   errors=["Sign-in is not set up completely"])
    assert [e.value for e in at.error] == [
        "Sign-in is not set up completely on this server, so nobody can sign in yet: tell the teacher "
        "(the server's log says what is missing)."]
    assert not at.button


def test_named_providers_get_a_button_each(no_runs):
    provider = {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")}
    auth = {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": AUTH["cookie_secret"],
            "google": provider, "microsoft": provider}
    at = login_tab({"is_logged_in": False}, auth=auth)
    assert [b.label for b in at.button] == ["Sign in with Google", "Sign in with Microsoft"]


def test_a_signed_in_student_owns_her_jobs_by_account_and_the_url_carries_no_owner(registry):
    from ui.owners import account_owner

    alice = login_tab(person("alice-sub", "alice@school.example", "Alice"), owner="forged-owner-id-0123456789")
    assert "owner" not in alice.query_params
    assert "Signed in as Alice (alice@school.example)" in [t.value for t in alice.sidebar.text]
    assert [b.label for b in alice.sidebar.button] == ["Sign out"]
    alice.text_input(key="cfg_name").input("alice-run").run()
    alice.number_input(key="cfg_epochs").set_value(1000).run()
    alice.button(key="start_job").click().run()
    job = param(alice, "job")
    assert registry.snapshot(job).owner_key == owner_key(account_owner(ISSUER, "alice-sub"))
    assert "owner" not in alice.query_params

    again = login_tab(person("alice-sub", "alice@school.example", "Alice"), job=job)  # another browser, same account
    assert not again.button(key="stop_job").disabled

    bob = login_tab(person("bob-sub", "bob@school.example", "Bob"), job=job, owner=account_owner(ISSUER, "alice-sub"))
    assert bob.button(key="stop_job").disabled
    assert "Only the student who started this job (or the teacher) can stop it." in [c.value for c in bob.caption]
    assert registry.snapshot(job).status in ("loading", "running")


def test_the_teacher_accounts_come_from_ae_lab_teachers_and_the_token_still_works(registry, monkeypatch):
    monkeypatch.setenv("AE_LAB_TEACHERS", "Teacher@School.example, t-subject-42")
    job = registry.start(long_run("alice-run"), owner="oidc-alice")
    teacher = login_tab(person("t-sub", "teacher@school.example", "Ms Teacher"), job=job)
    assert any("Teacher: you can stop any job." in c.value for c in teacher.sidebar.caption)
    assert not teacher.sidebar.text_input  # no token box for a teacher account

    unverified = login_tab(dict(person("mallory", "teacher@school.example"), email_verified=False), job=job)
    assert unverified.button(key="stop_job").disabled  # an email the provider did not verify is not enough
    by_subject = login_tab(person("t-subject-42"), job=job)
    assert not by_subject.button(key="stop_job").disabled

    student = login_tab(person("bob-sub", "bob@school.example"), job=job)
    assert student.button(key="stop_job").disabled
    student.text_input(key="teacher_token").input(TOKEN).run()
    assert not student.button(key="stop_job").disabled
    teacher.button(key="stop_job").click().run()
    assert registry.wait(job, timeout=JOB_TIMEOUT).status == "stopped"
