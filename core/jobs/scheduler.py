"""Which queued job runs next: one lane per owner, served in turn, so a student who queues a batch
of jobs cannot hold back the students who press Start once.

The next job comes from the lane whose owner was served longest ago (an owner never served comes
first, then by who queued first); within a lane, first in, first out. With one slot and a student's
four jobs queued ahead of 29 others who each pressed Start once, each of the 29 starts in the order
they pressed, and the flood's remaining jobs after them. Not thread-safe: the registry holds its lock.
"""
from __future__ import annotations

from collections import deque
from itertools import count


class FairQueue:
    """Queued job ids in per-owner lanes (an owner: a key, or None for the teacher and the CLI)."""

    def __init__(self) -> None:
        self._lanes: dict[str | None, deque[str]] = {}
        self._arrival: dict[str, int] = {}  # job id -> when it was queued (a counter)
        self._served_at: dict[str | None, int] = {}  # owner -> when its last job left the queue
        self._ticks = count()
        self._order: list[str] | None = None  # the serving order, until the queue changes

    def __len__(self) -> int:
        return len(self._arrival)

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._arrival

    def push(self, job_id: str, owner: str | None) -> None:
        self._lanes.setdefault(owner, deque()).append(job_id)
        self._arrival[job_id] = next(self._ticks)
        self._order = None

    def remove(self, job_id: str) -> bool:
        """Take a job out of the queue (stopped while waiting); False when it was not queued."""
        if job_id not in self._arrival:
            return False
        for owner, lane in self._lanes.items():
            if job_id in lane:
                lane.remove(job_id)
                if not lane:
                    del self._lanes[owner]
                break
        del self._arrival[job_id]
        self._order = None
        return True

    def _next_owner(self, lanes: dict, served_at: dict) -> str | None:
        return min(lanes, key=lambda owner: (served_at.get(owner, -1), self._arrival[lanes[owner][0]]))

    def pop(self) -> str | None:
        """The job to start now (None when the queue is empty)."""
        if not self._lanes:
            return None
        owner = self._next_owner(self._lanes, self._served_at)
        job_id = self._lanes[owner].popleft()
        if not self._lanes[owner]:
            del self._lanes[owner]
        del self._arrival[job_id]
        self._served_at[owner] = next(self._ticks)
        self._order = None
        return job_id

    def order(self) -> list[str]:
        """Every queued job id in the order they will start if nothing else is queued or stopped."""
        if self._order is None:
            lanes = {owner: deque(lane) for owner, lane in self._lanes.items()}
            served_at = dict(self._served_at)
            tick = next(self._ticks)  # later than every real turn so far
            order = []
            while lanes:
                owner = self._next_owner(lanes, served_at)
                order.append(lanes[owner].popleft())
                if not lanes[owner]:
                    del lanes[owner]
                served_at[owner], tick = tick, tick + 1
            self._order = order
        return list(self._order)

    def positions(self) -> dict[str, int]:
        """job id -> its 1-based place in order()."""
        return {job_id: i for i, job_id in enumerate(self.order(), 1)}
