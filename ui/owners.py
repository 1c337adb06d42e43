"""Who may stop a job: the browser session that started it, or the teacher.

The owner id is a random token kept in the page's URL (?owner=...) and in session state. Why the
URL: Streamlit gives a script no way to set a cookie, session state dies with a reload (a new
session), and the URL survives a reload, a restart of the server and a bookmark. The price: a
copied URL carries the id, so whoever opens it may stop that browser's jobs; jobs can be *seen*
by anyone, so a link to share needs only ?job=<id> (say so to students: copy ?job=, not the
whole URL). The teacher, who knows AE_LAB_TEACHER_TOKEN, enters it once per browser session in the
sidebar and may stop any job; it is compared with hmac.compare_digest and never put in the URL.
"""
from __future__ import annotations

import hmac
import os
import re
import secrets

import streamlit as st

from core.jobs import JobPermissionError
from ui.state import get_registry

OWNER_PARAM = "owner"
OWNER_KEY = "owner_id"
TEACHER_KEY = "is_teacher"
TEACHER_INPUT_KEY = "teacher_token"
TEACHER_ERROR_KEY = "teacher_token_error"
TEACHER_ENV = "AE_LAB_TEACHER_TOKEN"
_OWNER_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def owner_id() -> str:
    """This browser session's owner id (made once, then kept in session state and the URL)."""
    owner = st.session_state.get(OWNER_KEY)
    if owner is None:
        from_url = st.query_params.get(OWNER_PARAM)
        owner = from_url if isinstance(from_url, str) and _OWNER_RE.fullmatch(from_url) else secrets.token_urlsafe(16)
        st.session_state[OWNER_KEY] = owner
    if st.query_params.get(OWNER_PARAM) != owner:  # a page switch may have dropped it
        st.query_params[OWNER_PARAM] = owner
    return owner


def is_teacher() -> bool:
    return bool(st.session_state.get(TEACHER_KEY))


def can_stop(job) -> bool:
    return job.owner is None or is_teacher() or job.owner == owner_id()


def stop_job(job_id: str) -> str | None:
    """Stop a job as this session (the teacher as the server itself); None, or the sentence why not."""
    try:
        get_registry().stop(job_id, by=None if is_teacher() else owner_id())
    except (JobPermissionError, KeyError) as exc:
        return str(exc).strip("'\"")
    return None


def _check_teacher_token() -> None:
    expected = os.environ.get(TEACHER_ENV, "")
    entered = st.session_state.get(TEACHER_INPUT_KEY) or ""
    st.session_state[TEACHER_INPUT_KEY] = ""  # never kept on the page
    if not entered:
        return
    if expected and hmac.compare_digest(entered.encode(), expected.encode()):
        st.session_state[TEACHER_KEY] = True
        st.session_state.pop(TEACHER_ERROR_KEY, None)
    else:
        st.session_state[TEACHER_ERROR_KEY] = "That is not the teacher token; check it and try again."


def teacher_sign_in() -> None:
    """The sidebar's teacher box, shown only when the server has a teacher token."""
    if not os.environ.get(TEACHER_ENV):
        return
    if is_teacher():
        st.caption(":material/school: Teacher: you can stop any job.")
        return
    st.text_input("Teacher token", type="password", key=TEACHER_INPUT_KEY, on_change=_check_teacher_token,
                  help="Teachers may stop any student's job; students can stop only their own.")
    if TEACHER_ERROR_KEY in st.session_state:
        st.error(st.session_state.pop(TEACHER_ERROR_KEY))
