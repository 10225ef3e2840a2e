"""OpenCode Go's usage windows (rolling 5 hours, weekly, monthly): read from
its usage endpoint, and learnt from ``GoUsageLimitError`` answers.

Shapes accepted from ``GET https://opencode.ai/zen/go/v1/usage`` (the Go key
as Bearer token):

- ``{"usage": {"rolling": {"status": "ok", "percent": 2, "resetsAt": "…Z"},
  "weekly": {…}, "monthly": {…}}}``, the answer the OpenCode console's
  meters show, as recorded by the cmd-usage crate
  (docs.rs/cmd-usage, src/ocuse/api.rs);
- ``{"rolling5h": {"usagePercent": 19.5, "resetInSec": 7200}, "weekly": …,
  "monthly": …}``, the shape proposed in anomalyco/opencode#31084.

The poller is woken by traffic, never by a clock: with no requests it sleeps
(a laptop on battery pays nothing), and it asks at most once a minute.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
import time
from typing import Callable

from ocproxy.usage.record import QuotaWindow

log = logging.getLogger("ocproxy.quota")

WINDOWS = ("rolling", "weekly", "monthly")
_ALIASES = {"rolling": "rolling", "rolling5h": "rolling", "five_hour": "rolling", "weekly": "weekly",
            "monthly": "monthly"}
POLL_EVERY_S = 60.0
#: When a limit error names no reset time, the window is taken as exhausted this long.
UNKNOWN_RESET_S = 15 * 60.0


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _reset_time(window: dict, now: float) -> float | None:
    at = window.get("resetsAt") or window.get("resets_at") or window.get("resetAt")
    if isinstance(at, str):
        try:
            return dt.datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    seconds = _number(window.get("resetInSec"))
    return None if seconds is None else now + seconds


def parse_usage(data: object, now: float) -> list[QuotaWindow] | None:
    """The windows in a usage answer, or None when it is not one."""
    if not isinstance(data, dict):
        return None
    body = data.get("usage") if isinstance(data.get("usage"), dict) else data
    out = []
    for key, window in body.items():
        name = _ALIASES.get(key)
        if name is None or not isinstance(window, dict):
            continue
        percent = _number(window.get("percent"))
        if percent is None:
            percent = _number(window.get("usagePercent"))
        if percent is None:
            continue
        exhausted = percent >= 100 or str(window.get("status", "")).lower() in ("exhausted", "limited", "blocked")
        out.append(QuotaWindow(name, percent, _reset_time(window, now), exhausted))
    return out or None


_RESETS_IN = re.compile(r"resets? in\s+(?:(\d+)\s*d\w*)?\s*(?:(\d+)\s*h\w*)?\s*(?:(\d+)\s*m\w*)?", re.I)
_WINDOW_WORD = re.compile(r"\b(rolling|5[- ]?hour|weekly|monthly)\b", re.I)


def limit_window(body: str, retry_after: str | None, now: float) -> QuotaWindow | None:
    """The window a ``GoUsageLimitError`` answer says is exhausted, or None
    when the body is no such error. Its reset time comes from
    ``Retry-After``, else from the message ("Weekly usage limit reached.
    It will reset in 5 days 10 hours"), else :data:`UNKNOWN_RESET_S`."""
    if "GoUsageLimitError" not in body and "usage limit reached" not in body.lower():
        return None
    message = body
    name = None
    try:
        parsed = json.loads(body)
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if isinstance(error, dict):
            message = str(error.get("message") or body)
        metadata = parsed.get("metadata") if isinstance(parsed, dict) else None
        if isinstance(metadata, dict) and isinstance(metadata.get("limitName"), str):
            name = metadata["limitName"].lower()
    except ValueError:
        pass
    if name is None:
        word = _WINDOW_WORD.search(message)
        name = word.group(1).lower() if word else "rolling"
    name = "rolling" if name.startswith(("5", "rolling")) else name
    reset = None
    if retry_after and retry_after.strip().isdigit():
        reset = now + int(retry_after.strip())
    else:
        found = _RESETS_IN.search(message)
        if found and any(found.groups()):
            days, hours, minutes = (int(g or 0) for g in found.groups())
            reset = now + days * 86400 + hours * 3600 + minutes * 60
    return QuotaWindow(name if name in WINDOWS else "rolling", 100.0, reset or now + UNKNOWN_RESET_S, True)


class Quota:
    """The latest Go windows and whether Go models should be skipped.

    Owner of the poller thread (started by the first :meth:`touch`, stopped
    and joined by :meth:`close`). Lock ``_lock`` guards ``_windows``,
    ``_disabled``, ``_last_poll`` and ``_thread``.
    """

    def __init__(self, url: str, key: str, switch_at_percent: float = 0.0,
                 fetch: Callable[[str, str], tuple[int, bytes]] | None = None,
                 publish: Callable[[list[QuotaWindow]], None] | None = None):
        self.url = url if key else ""
        self.key = key
        self.switch_at = switch_at_percent
        self._fetch = fetch or _http_get
        self._publish = publish
        self._lock = threading.Lock()
        self._windows: dict[str, QuotaWindow] = {}
        self._disabled = not self.url
        self._last_poll = float("-inf")
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    # -- what the proxy asks ------------------------------------------------

    def windows(self, now: float | None = None) -> list[QuotaWindow]:
        now = time.time() if now is None else now
        with self._lock:
            return [w for w in self._windows.values() if w.resets_at is None or w.resets_at > now
                    or not w.exhausted]

    def go_paused(self, now: float | None = None) -> str:
        """Why Go models are skipped now ("" when they are not): a window
        exhausted until its reset, or past ``switch_at_percent``."""
        for w in self.windows(now):
            if w.exhausted:
                return f"Go {w.window} usage limit reached"
            if self.switch_at and w.percent >= self.switch_at:
                return f"Go {w.window} usage at {w.percent:g}% (switch_at_percent {self.switch_at:g})"
        return ""

    def exhausted(self, window: QuotaWindow) -> None:
        """A ``GoUsageLimitError`` said so: believe it until its reset."""
        with self._lock:
            self._windows[window.window] = window
        log.warning("OpenCode Go %s usage limit reached; Go models are skipped until %s", window.window,
                    time.strftime("%Y-%m-%d %H:%M", time.localtime(window.resets_at)) if window.resets_at else "reset")
        if self._publish:
            self._publish([window])

    # -- polling ------------------------------------------------------------

    def touch(self) -> None:
        """A request arrived: poll if the last poll is a minute old."""
        if self._disabled:
            return
        with self._lock:
            if time.monotonic() - self._last_poll < POLL_EVERY_S or self._stop:
                return
            self._last_poll = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ocproxy-quota", daemon=True)
                self._thread.start()
        self._wake.set()

    def close(self) -> None:
        with self._lock:
            self._stop = True
            thread, self._thread = self._thread, None
        self._wake.set()
        if thread is not None:
            thread.join(5)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                if self._stop:
                    return
            self.poll_once()

    def poll_once(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        try:
            status, body = self._fetch(self.url, self.key)
        except Exception as exc:  # network trouble: try again a minute later
            log.info("OpenCode Go usage endpoint unreachable: %s", exc)
            return
        windows = None
        if status == 200:
            try:
                windows = parse_usage(json.loads(body), now)
            except ValueError:
                windows = None
        if windows is None:
            with self._lock:
                self._disabled = True
            log.warning("OpenCode Go usage polling disabled: %s answered %s", self.url,
                        f"HTTP {status}" if status != 200 else "no usage windows")
            return
        with self._lock:
            for w in windows:
                known = self._windows.get(w.window)
                # a limit error is trusted over a poll that does not show it yet
                if known is not None and known.exhausted and not w.exhausted and known.resets_at \
                        and known.resets_at > now:
                    continue
                self._windows[w.window] = w
        if self._publish:
            self._publish(windows)

    @property
    def polling(self) -> bool:
        return not self._disabled

    def snapshot(self, now: float | None = None) -> dict:
        """For /health: each window's percentage and reset time."""
        return {w.window: {"percent": w.percent, "exhausted": w.exhausted,
                           "resets_at": _iso(w.resets_at)} for w in self.windows(now)}


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _http_get(url: str, key: str) -> tuple[int, bytes]:
    import requests

    from ocproxy import __version__

    resp = requests.get(url, headers={"Authorization": f"Bearer {key}", "Accept": "application/json",
                                      "User-Agent": f"ocproxy/{__version__}"}, timeout=10)
    return resp.status_code, resp.content[:65536]
