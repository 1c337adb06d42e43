"""Signing in with the school's account (OpenID Connect through Streamlit's own `st.login`), for a
server whose `.streamlit/secrets.toml` has an [auth] section; without one the app needs no sign-in
and a browser's identity is the id in its URL (ui.owners).

With a login: every page first asks the visitor to sign in (`sign_in_screen`); the sidebar says
who is signed in and offers Sign out (`account_box`). Who a signed-in person is comes from their
ID token's issuer and subject (`account`); ui.owners turns that into the owner id. Nothing here
shows or logs a token.
"""
from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import streamlit as st

log = logging.getLogger(__name__)

# What st.login needs in [auth] (Streamlit's own check raises an exception instead) and in a provider.
AUTH_KEYS = ("redirect_uri", "cookie_secret")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
NOT_SET_UP = ("Sign-in is not set up completely on this server, so nobody can sign in yet: "
              "tell the teacher (the server's log says what is missing).")
NO_SUBJECT = ("Your school's sign-in did not say who you are (the answer had no subject): "
              "sign out and try again, or tell the teacher.")
_PROBLEM_LOGGED_KEY = "login_problem_logged"


@dataclass(frozen=True)
class Account:
    """Who a signed-in person is, from their ID token's claims (st.user)."""
    issuer: str
    subject: str
    email: str
    email_verified: bool
    name: str

    @property
    def shown_name(self) -> str:
        if self.name and self.email and self.name != self.email:
            return f"{self.name} ({self.email})"
        return self.name or self.email or "your school account"


def _auth_section() -> Mapping | None:
    try:
        auth = st.secrets.get("auth")
    except FileNotFoundError:  # no secrets.toml at all: no login
        return None
    return auth if isinstance(auth, Mapping) else None


def login_configured() -> bool:
    """Whether this server asks everyone to sign in: its secrets have an [auth] section."""
    return _auth_section() is not None


def providers() -> list[str | None]:
    """The identity providers to offer: None for [auth]'s own, else the names of [auth.<name>]."""
    auth = _auth_section() or {}
    named = [name for name, value in auth.items() if isinstance(value, Mapping) and "client_id" in value]
    return named or [None]


def setup_problem() -> str | None:
    """What keeps st.login from working (for the server's log), or None."""
    auth = _auth_section() or {}
    missing = [key for key in AUTH_KEYS if not auth.get(key)]
    for name in providers():
        section = auth if name is None else auth[name]
        missing += [key if name is None else f"{name}.{key}" for key in PROVIDER_KEYS if not section.get(key)]
    if missing:
        return f"[auth] in secrets.toml lacks {', '.join(missing)}"
    if importlib.util.find_spec("authlib") is None:
        return "st.login needs the Authlib package (pip install -r requirements.txt)"
    return None


def signed_in() -> bool:
    return bool(st.user.get("is_logged_in"))


def account() -> Account | None:
    """The signed-in account, or None (not signed in, or the provider gave no subject)."""
    if not signed_in():
        return None
    claims = st.user.to_dict()
    subject = str(claims.get("sub") or "")
    if not subject:
        return None
    return Account(issuer=str(claims.get("iss") or claims.get("provider") or ""), subject=subject,
                   email=str(claims.get("email") or ""), email_verified=claims.get("email_verified") is not False,
                   name=str(claims.get("name") or ""))


def _log_problem_once(problem: str) -> None:
    if not st.session_state.get(_PROBLEM_LOGGED_KEY):
        st.session_state[_PROBLEM_LOGGED_KEY] = True
        log.warning("sign-in is not possible: %s", problem)


def sign_in_screen() -> None:
    """The page a visitor sees until they are signed in (then st.stop() by the caller)."""
    st.title(":material/lock: Autoencoder Lab")
    if signed_in():  # signed in, but the provider's answer named nobody
        st.error(NO_SUBJECT)
        _log_problem_once("the provider's answer had no subject (sub)")
        st.button("Sign out", key="sign_out_no_subject", icon=":material/logout:", on_click=st.logout)
        return
    st.markdown("This class signs in with the school's account. Your jobs and runs are kept under "
                "your account: everyone can look at them, only you (and the teacher) can stop or change them.")
    problem = setup_problem()
    if problem:
        st.error(NOT_SET_UP)
        _log_problem_once(problem)
        return
    for name in providers():
        label = "Sign in" if name is None else f"Sign in with {name.title()}"
        if st.button(label, key=f"sign_in_{name or 'default'}", icon=":material/login:", type="primary"):
            st.login(name)
    st.caption("Signing in opens your school's sign-in page; afterwards you come back to the start page.")


def account_box() -> None:
    """The sidebar's 'signed in as' line and Sign out (only on a server with a login)."""
    person = account()
    if person is None:
        return
    st.text(f"Signed in as {person.shown_name}")  # a name is the student's own text: never Markdown
    st.button("Sign out", key="sign_out", icon=":material/logout:", on_click=st.logout)
