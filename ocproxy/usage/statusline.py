"""``ocproxy statusline``: the one line Claude Code shows under its prompt.

Claude Code runs the ``statusLine`` command with a JSON object on stdin
(``session_id``, ``model``, ``workspace``, …) and shows the first line it
prints. This reads the ledger directly (read-only, no proxy round trip),
so it answers in milliseconds even when the proxy is busy or down.
"""

from __future__ import annotations

import json
import sqlite3
import time

from ocproxy.usage.report import human, money


def session_of(stdin_text: str) -> str:
    """The session id in Claude Code's statusLine JSON ("" when absent or garbled)."""
    try:
        data = json.loads(stdin_text or "{}")
    except ValueError:
        return ""
    value = data.get("session_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


def line_for(conn: sqlite3.Connection, session: str, now: float | None = None) -> str:
    """``kimi-k2.6 · 12.3k in 4.5k out · $0.0123 · Go 5h 12% wk 30% mo 25%``."""
    now = time.time() if now is None else now
    parts = []
    if session:
        last = conn.execute(
            "SELECT model FROM requests WHERE session = ? AND model != '' ORDER BY ts DESC LIMIT 1",
            (session,)).fetchone()
        sums = conn.execute(
            "SELECT COUNT(*), SUM(input_tokens + cache_read_tokens + cache_write_tokens), SUM(output_tokens), "
            "SUM(cost_usd) FROM requests WHERE session = ?", (session,)).fetchone()
        if last is not None:
            parts.append(last[0])
        if sums[0]:
            parts.append(f"{human(sums[1] or 0)} in {human(sums[2] or 0)} out")
            if sums[3] is not None:
                parts.append(money(sums[3]))
    windows = {row[0]: row for row in conn.execute(
        "SELECT window, percent, resets_at, exhausted FROM quota WHERE resets_at IS NULL OR resets_at > ?", (now,))}
    if windows:
        labels = (("rolling", "5h"), ("weekly", "wk"), ("monthly", "mo"))
        shown = [f"{short} {windows[name][1]:.0f}%" for name, short in labels if name in windows]
        parts.append("Go " + " ".join(shown))
    return " · ".join(parts) if parts else "ocproxy: no usage yet"
