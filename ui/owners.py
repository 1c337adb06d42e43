"""Who this browser is (the owner of the jobs and runs it makes) and whether it is the teacher.

Two ways, chosen by the server's set-up:
- No login (the default, nothing to set up): the owner id is a random token kept in the page's
  URL (?owner=...) and in session state. Why the URL: Streamlit gives a script no way to set a
  cookie, session state dies with a reload (a new session), and the URL survives a reload, a
  restart of the server and a bookmark. The price: a copied URL carries the id, so whoever opens
  it acts as that browser; jobs can be *seen* by anyone, so a link to share needs only ?job=<id>.
- A login (an [auth] section in .streamlit/secrets.toml, ui.login): everyone signs in with the
  school's account through st.login; the owner id is derived from the account's issuer and
  subject, the same in every browser and after every restart, and never in the URL (a ?owner= there
  is dropped), so a copied link hands over nothing. Teachers are the accounts listed in
  AE_LAB_TEACHERS (emails or subjects; in secrets.toml or the environment).

Either way, whoever knows AE_LAB_TEACHER_TOKEN may enter it once per browser session in the
sidebar to act as the teacher; it is never put in the URL, shown or logged, and guessing it is
throttled (core.serving.guesses: a lock for the guesser and for the whole server).
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets

import streamlit as st

from core.jobs import JobPermissionError
from core.logs import short_owner
from core.serving.guesses import Attempt, TokenGate
from ui import login
from ui.state import get_registry

log = logging.getLogger(__name__)

OWNER_PARAM = "owner"
OWNER_KEY = "owner_id"
TEACHER_KEY = "is_teacher"
TEACHER_INPUT_KEY = "teacher_token"
TEACHER_ERROR_KEY = "teacher_token_error"
TEACHER_ENV = "AE_LAB_TEACHER_TOKEN"
TEACHERS_KEY = "AE_LAB_TEACHERS"  # a secrets.toml key (top level) or an environment variable
SIGN_IN_LOGGED_KEY = "sign_in_logged"
WRONG_TOKEN = "That is not the teacher token; check it and try again."
_OWNER_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _session_owner() -> str:
    owner = st.session_state.get(OWNER_KEY)
    if owner is None:
        from_url = st.query_params.get(OWNER_PARAM)
        owner = from_url if isinstance(from_url, str) and _OWNER_RE.fullmatch(from_url) else secrets.token_urlsafe(16)
        st.session_state[OWNER_KEY] = owner
    return owner


def account_owner(issuer: str, subject: str) -> str:
    """A signed-in account's owner id: stable for the account, unlike any URL-mode id."""
    return "oidc-" + hashlib.sha256(f"{issuer}\n{subject}".encode("utf-8")).hexdigest()[:40]


def owner_id() -> str:
    """This browser's owner id: the signed-in account's (with a login), else the URL's."""
    if login.login_configured():
        st.query_params.pop(OWNER_PARAM, None)  # a copied or forged ?owner= means nothing here
        person = login.account()
        if person is None:  # not signed in: app.py shows the sign-in screen; own nothing lasting
            return st.session_state.setdefault(OWNER_KEY, secrets.token_urlsafe(16))
        owner = account_owner(person.issuer, person.subject)
        if not st.session_state.get(SIGN_IN_LOGGED_KEY):
            st.session_state[SIGN_IN_LOGGED_KEY] = True
            log.info("signed in: owner %s%s", short_owner(owner), " (teacher account)" if _teacher_account() else "")
        return owner
    owner = _session_owner()
    if st.query_params.get(OWNER_PARAM) != owner:  # a page switch may have dropped it
        st.query_params[OWNER_PARAM] = owner
    return owner


def owner_params() -> dict[str, str]:
    """The owner part of a link to another page (st.switch_page drops the URL's): this browser's id
    without a login; nothing with one, where the URL carries no owner."""
    return {} if login.login_configured() else {OWNER_PARAM: owner_id()}


def must_sign_in() -> bool:
    """Whether this server has a login and nobody is signed in here (app.py then shows
    ui.login.sign_in_screen instead of any page)."""
    if not login.login_configured():
        return False
    st.query_params.pop(OWNER_PARAM, None)  # a copied or forged ?owner= means nothing here
    return login.account() is None


def teacher_accounts() -> set[str]:
    """AE_LAB_TEACHERS: emails (lower case) and subjects, from secrets.toml or the environment."""
    try:
        listed = st.secrets.get(TEACHERS_KEY)
    except FileNotFoundError:
        listed = None
    listed = listed if listed is not None else os.environ.get(TEACHERS_KEY, "")
    entries = re.split(r"[,\s]+", listed) if isinstance(listed, str) else [str(entry) for entry in listed]
    return {entry.strip().lower() if "@" in entry else entry.strip() for entry in entries if entry.strip()}


def _teacher_account() -> bool:
    """Whether the signed-in account is listed as a teacher (an email counts unless the provider
    says it is not verified)."""
    person = login.account() if login.login_configured() else None
    if person is None:
        return False
    listed = teacher_accounts()
    return person.subject in listed or (bool(person.email) and person.email_verified
                                        and person.email.lower() in listed)


def is_teacher() -> bool:
    return bool(st.session_state.get(TEACHER_KEY)) or _teacher_account()


def can_stop(job) -> bool:
    return job.owner is None or is_teacher() or job.owner == owner_id()


def stop_job(job_id: str) -> str | None:
    """Stop a job as this session (the teacher as the server itself); None, or the sentence why not."""
    try:
        get_registry().stop(job_id, by=None if is_teacher() else owner_id())
    except (JobPermissionError, KeyError) as exc:
        return str(exc).strip("'\"")
    return None


@st.cache_resource
def token_gate() -> TokenGate:
    """The server's one teacher-token gate (its locks hold across every browser)."""
    return TokenGate()


def _wait_text(seconds: float) -> str:
    return f"{max(int(seconds + 0.999), 1)} s" if seconds < 60 else f"{int(seconds / 60 + 0.999)} min"


def refusal(attempt: Attempt) -> str:
    """One sentence for a wrong or refused guess: what happened and when to try again."""
    if attempt.wait_s <= 0:
        return WRONG_TOKEN
    if attempt.everyone:
        return (f"Too many wrong teacher tokens on this server: the teacher box is locked for everyone; "
                f"try again in {_wait_text(attempt.wait_s)}.")
    return (f"Too many wrong teacher tokens from this browser: try again in {_wait_text(attempt.wait_s)}.")


def _check_teacher_token() -> None:
    expected = os.environ.get(TEACHER_ENV, "")
    entered = st.session_state.get(TEACHER_INPUT_KEY) or ""
    st.session_state[TEACHER_INPUT_KEY] = ""  # never kept on the page
    if not entered:
        return
    owner = owner_id()
    attempt = token_gate().attempt(entered, expected, guesser=owner)
    if attempt.ok:
        st.session_state[TEACHER_KEY] = True
        st.session_state.pop(TEACHER_ERROR_KEY, None)
        log.info("teacher token accepted: owner %s", short_owner(owner))
        return
    st.session_state[TEACHER_ERROR_KEY] = refusal(attempt)
    why = "wrong" if attempt.compared else "not compared (locked)"
    lock = f"; locked {attempt.wait_s:.0f} s{' for everyone' if attempt.everyone else ''}" if attempt.wait_s else ""
    log.warning("teacher token refused: owner %s, %s%s", short_owner(owner), why, lock)


def teacher_sign_in() -> None:
    """The sidebar's teacher box (shown only when the server has a teacher token), or the line that
    says this browser is the teacher's."""
    if is_teacher():
        st.caption(":material/school: Teacher: you can stop any job.")
        return
    if not os.environ.get(TEACHER_ENV):
        return
    st.text_input("Teacher token", type="password", key=TEACHER_INPUT_KEY, on_change=_check_teacher_token,
                  help="Teachers may stop any student's job; students can stop only their own.")
    if TEACHER_ERROR_KEY in st.session_state:
        st.error(st.session_state.pop(TEACHER_ERROR_KEY))
