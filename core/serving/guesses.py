"""Guessing the teacher token is made impractical: after a few wrong guesses the box is locked for
a while, each further wrong guess doubling the lock (up to a cap), for the guesser and, since a new
browser session is one reload away, for the whole server too.

Both locks end on their own (at most `max_lock_s`), a right token clears both, and the counts are
forgotten after `quiet_s` without a wrong guess: the real teacher is never locked out for good (a
restart of the server forgets everything). While a lock is on, a guess is refused before it is
compared with the token at all.
"""
from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass
from time import monotonic

GUESSER_FREE = 5         # wrong guesses a guesser makes before its first lock
SERVER_FREE = 20         # wrong guesses from everyone together before the server-wide lock
FIRST_LOCK_S = 30.0      # the first lock; each further wrong guess doubles it
MAX_LOCK_S = 15 * 60.0   # no lock is longer
QUIET_S = 60 * 60.0      # counts are forgotten after this long without a wrong guess
MAX_GUESSERS = 10_000    # tallies kept at most (a flood of new sessions cannot grow memory)


@dataclass
class _Tally:
    wrong: int = 0
    last_wrong: float = 0.0
    locked_until: float = 0.0


@dataclass(frozen=True)
class Attempt:
    """What became of a guess. ok: it was the token. wait_s > 0: the box is locked for that long
    (a refused guess, or a wrong one that started a lock); everyone: the lock is the server's."""
    ok: bool
    compared: bool
    wait_s: float = 0.0
    everyone: bool = False


def matches(entered: str, expected: str) -> bool:
    """The token comparison (constant time); its own function so tests can tell it was not called."""
    return hmac.compare_digest(entered.encode("utf-8"), expected.encode("utf-8"))


class TokenGate:
    """The teacher token's door for one server: thread-safe, in memory."""

    def __init__(self, guesser_free: int = GUESSER_FREE, server_free: int = SERVER_FREE,
                 first_lock_s: float = FIRST_LOCK_S, max_lock_s: float = MAX_LOCK_S, quiet_s: float = QUIET_S):
        self.guesser_free = guesser_free
        self.server_free = server_free
        self.first_lock_s = first_lock_s
        self.max_lock_s = max_lock_s
        self.quiet_s = quiet_s
        self._lock = threading.Lock()
        self._server = _Tally()
        self._guessers: dict[str, _Tally] = {}

    def _fresh(self, tally: _Tally, now: float) -> _Tally:
        if tally.wrong and now - tally.last_wrong > self.quiet_s and now >= tally.locked_until:
            tally.wrong = 0
        return tally

    def _guesser(self, guesser: str, now: float) -> _Tally:
        tally = self._guessers.get(guesser)
        if tally is None:
            if len(self._guessers) >= MAX_GUESSERS:  # forget the longest-quiet one
                oldest = min(self._guessers, key=lambda key: self._guessers[key].last_wrong)
                del self._guessers[oldest]
            tally = self._guessers[guesser] = _Tally()
        return self._fresh(tally, now)

    def wait_s(self, guesser: str) -> tuple[float, bool]:
        """(seconds until `guesser` may guess again, whether the lock is the server's); (0, False): now."""
        with self._lock:
            now = monotonic()
            server = self._fresh(self._server, now)
            if server.locked_until > now:
                return server.locked_until - now, True
            tally = self._guessers.get(guesser)
            if tally is not None and tally.locked_until > now:
                return tally.locked_until - now, False
            return 0.0, False

    def _count_wrong(self, tally: _Tally, free: int, now: float) -> None:
        tally.wrong += 1
        tally.last_wrong = now
        if tally.wrong >= free:
            tally.locked_until = now + min(self.first_lock_s * 2 ** (tally.wrong - free), self.max_lock_s)

    def attempt(self, entered: str, expected: str, guesser: str) -> Attempt:
        """Compare `entered` with `expected` for `guesser` (a browser's or account's owner id),
        unless a lock is on: then it is refused uncompared."""
        wait, everyone = self.wait_s(guesser)
        if wait > 0:
            return Attempt(ok=False, compared=False, wait_s=wait, everyone=everyone)
        ok = bool(expected) and matches(entered, expected)
        with self._lock:
            now = monotonic()
            if ok:
                self._server = _Tally()
                self._guessers.pop(guesser, None)
                return Attempt(ok=True, compared=True)
            server = self._fresh(self._server, now)
            self._count_wrong(server, self.server_free, now)
            tally = self._guesser(guesser, now)
            self._count_wrong(tally, self.guesser_free, now)
            if server.locked_until > now:
                return Attempt(ok=False, compared=True, wait_s=server.locked_until - now, everyone=True)
            return Attempt(ok=False, compared=True, wait_s=max(tally.locked_until - now, 0.0))
