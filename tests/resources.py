"""Counting what a test leaves behind: threads and open sockets of this
process (the proxy, the fake upstream and the test clients all live here)."""

from __future__ import annotations

import os
import threading
import time


def open_sockets() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass  # closed while we looked
    return n


def thread_names() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.is_alive())


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Baseline:
    """``with Baseline() as b: ...`` then ``b.check()``: threads and sockets
    must come back to (at most) what they were, within ``settle`` seconds."""

    def __init__(self, settle: float = 5.0):
        self.settle = settle
        self.threads: list[str] = []
        self.sockets = 0

    def __enter__(self) -> "Baseline":
        self.threads, self.sockets = self._quiet()
        return self

    def __exit__(self, *exc) -> None:
        pass

    @staticmethod
    def _quiet(window: float = 0.3) -> tuple[list[str], int]:
        """A settled reading: the smallest seen over a short window (a
        handler thread of the fake upstream may still be finishing)."""
        best_threads, best_socks = thread_names(), open_sockets()
        end = time.monotonic() + window
        stable = 0
        while time.monotonic() < end and stable < 2:  # two equal readings in a row: settled
            time.sleep(0.03)
            names, socks = thread_names(), open_sockets()
            stable = stable + 1 if (len(names), socks) == (len(best_threads), best_socks) else 0
            if len(names) < len(best_threads):
                best_threads = names
            best_socks = min(best_socks, socks)
        return best_threads, best_socks

    def leftovers(self) -> tuple[int, list[str], int]:
        """(extra threads, their likely names, extra sockets) after settling."""
        end = time.monotonic() + self.settle
        while True:
            names, socks = thread_names(), open_sockets()
            extra = len(names) - len(self.threads)
            if (extra <= 0 and socks <= self.sockets) or time.monotonic() > end:
                new = [n for n in names if n not in self.threads]
                return max(0, extra), new, max(0, socks - self.sockets)
            time.sleep(0.05)

    def check(self) -> None:
        extra, new, socks = self.leftovers()
        assert extra == 0, f"{extra} thread(s) left behind: {new}"
        assert socks == 0, f"{socks} socket(s) left open"
