"""core.serving.guesses: guessing the teacher token is throttled for the guesser and for the whole
server, the locks end on their own, and a guess made while locked is never compared."""
from __future__ import annotations

import pytest

from core.serving import guesses
from core.serving.guesses import TokenGate

TOKEN = "correct horse battery staple"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(guesses, "monotonic", fake)
    return fake


@pytest.fixture
def compared(monkeypatch) -> list[str]:
    """Every guess that reached the comparison."""
    seen: list[str] = []
    real = guesses.matches

    def spy(entered, expected):
        seen.append(entered)
        return real(entered, expected)

    monkeypatch.setattr(guesses, "matches", spy)
    return seen


def test_a_guesser_is_locked_after_five_wrong_guesses_and_the_lock_doubles(clock, compared):
    gate = TokenGate()
    for n in range(4):
        attempt = gate.attempt(f"guess {n}", TOKEN, "alice")
        assert (attempt.ok, attempt.compared, attempt.wait_s) == (False, True, 0.0)
    attempt = gate.attempt("guess 4", TOKEN, "alice")
    assert attempt.compared and attempt.wait_s == 30.0 and not attempt.everyone

    refused = gate.attempt(TOKEN, TOKEN, "alice")  # even the right token waits out the lock
    assert (refused.ok, refused.compared) == (False, False) and refused.wait_s == 30.0
    assert len(compared) == 5
    assert gate.attempt("bob's first guess", TOKEN, "bob").wait_s == 0.0  # others are not locked

    clock.now += 30.0
    assert gate.attempt("guess 5", TOKEN, "alice").wait_s == 60.0
    clock.now += 60.0
    assert gate.attempt("guess 6", TOKEN, "alice").wait_s == 120.0
    clock.now += 120.0
    assert gate.attempt(TOKEN, TOKEN, "alice").ok
    assert gate.attempt("a typo", TOKEN, "alice").wait_s == 0.0  # the right token cleared the count


def test_guesses_from_many_browsers_lock_the_whole_server_for_a_bounded_time(clock, compared):
    gate = TokenGate()
    for n in range(guesses.SERVER_FREE - 1):
        assert gate.attempt("wrong", TOKEN, f"session-{n}").wait_s == 0.0  # one guess per new session
    attempt = gate.attempt("wrong", TOKEN, "session-last")
    assert attempt.everyone and attempt.wait_s == 30.0
    teacher = gate.attempt(TOKEN, TOKEN, "the-teacher")
    assert (teacher.ok, teacher.compared, teacher.everyone) == (False, False, True)
    assert len(compared) == guesses.SERVER_FREE

    for _ in range(10):  # an attacker who waits out every lock: the lock grows, never past the cap
        clock.now += attempt.wait_s
        attempt = gate.attempt("wrong", TOKEN, "patient-attacker")
    assert attempt.everyone and attempt.wait_s == guesses.MAX_LOCK_S
    clock.now += guesses.MAX_LOCK_S
    assert gate.attempt(TOKEN, TOKEN, "the-teacher").ok  # after the window the teacher gets in
    assert gate.wait_s("patient-attacker") == (0.0, False)


def test_counts_are_forgotten_after_a_quiet_hour(clock):
    gate = TokenGate()
    for _ in range(4):
        gate.attempt("wrong", TOKEN, "alice")
    clock.now += guesses.QUIET_S + 1
    assert gate.attempt("wrong again", TOKEN, "alice").wait_s == 0.0  # a fresh count: 1 of 5


def test_no_token_set_never_matches(clock):
    assert not TokenGate().attempt("", "", "alice").ok


def test_a_flood_of_guessers_keeps_a_bounded_tally(clock, monkeypatch):
    monkeypatch.setattr(guesses, "MAX_GUESSERS", 50)
    gate = TokenGate(server_free=10_000)
    for n in range(200):
        clock.now += 1
        gate.attempt("wrong", TOKEN, f"session-{n}")
    assert len(gate._guessers) == 50
