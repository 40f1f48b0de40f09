"""The session budget: how many model sessions may be live at once.

Each session plans a known amount of memory (`session_memory_bytes`: activations and state,
mostly KV caches; the weights are shared). A request takes its session's bytes from the budget
before the session is made and gives them back when it ends, however it ends, so too many
concurrent requests get a clear 503 instead of the kernel's out-of-memory killer.
"""

from __future__ import annotations

import os
import threading
from collections import Counter

from voxtral_native.server.errors import ApiError


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux), else the physical pages free."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


class SessionBudget:
    def __init__(self, budget_bytes: int, max_sessions: int | None = None):
        self.budget_bytes = budget_bytes
        self.max_sessions = max_sessions
        self._lock = threading.Lock()
        self._in_use = 0
        self._live: Counter[str] = Counter()

    def reserve(self, kind: str, nbytes: int) -> Reservation:
        """Takes `nbytes` for one `kind` session until the reservation is released;
        ApiError(503) if it does not fit."""
        with self._lock:
            count = sum(self._live.values())
            if self._in_use + nbytes > self.budget_bytes or (
                self.max_sessions is not None and count >= self.max_sessions
            ):
                raise ApiError(
                    503, f"the server is at capacity ({count} sessions live, {self._in_use / 2**20:.0f} of "
                    f"{self.budget_bytes / 2**20:.0f} MiB of session memory in use); retry shortly",
                    code="server_at_capacity", headers={"Retry-After": "1"},
                )  # fmt: skip
            self._in_use += nbytes
            self._live[kind] += 1
        return Reservation(self, kind, nbytes)

    def _give_back(self, kind: str, nbytes: int) -> None:
        with self._lock:
            self._in_use -= nbytes
            self._live[kind] -= 1

    def snapshot(self) -> dict:
        with self._lock:
            return {"sessions": {k: v for k, v in self._live.items() if v}, "memory_in_use_bytes": self._in_use,
                    "memory_budget_bytes": self.budget_bytes, "max_sessions": self.max_sessions}  # fmt: skip


class Reservation:
    """One session's share of the budget; release() (or leaving the `with`) gives it back, once."""

    def __init__(self, budget: SessionBudget, kind: str, nbytes: int):
        self._budget, self._kind, self._nbytes = budget, kind, nbytes
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._budget._give_back(self._kind, self._nbytes)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.release()
