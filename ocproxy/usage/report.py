"""``ocproxy usage``: totals from the ledger, by day, model, session or
client, as an aligned table, JSON or CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import sqlite3
import time

#: ``--by`` choice -> the SQL expression that groups rows.
GROUPS = {
    "day": "date(ts, 'unixepoch', 'localtime')",
    "model": "CASE model WHEN '' THEN '(none)' ELSE model END",
    "session": "session",
    "client": "CASE client WHEN '' THEN '(no key)' ELSE client END",
}
FIELDS = ("requests", "failed", "input", "output", "cache_read", "cache_write", "cost_usd")

_SUMS = """
    COUNT(*) AS requests,
    SUM(outcome != 'ok') AS failed,
    SUM(input_tokens) AS input,
    SUM(output_tokens) AS output,
    SUM(cache_read_tokens) AS cache_read,
    SUM(cache_write_tokens) AS cache_write,
    SUM(cost_usd) AS cost_usd
"""

_SPAN = re.compile(r"^(\d+)\s*([mhdw])$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """``24h``, ``7d``, ``30m``, ``2w`` back from now, or a date / ISO time
    (local time). Raises ValueError saying what is accepted."""
    now = time.time() if now is None else now
    text = text.strip()
    span = _SPAN.match(text.lower())
    if span:
        return now - int(span.group(1)) * _UNIT_S[span.group(2)]
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"--since {text!r}: use a span like 24h, 7d, 30m, 2w or a date like 2026-12-01") from None


def totals(conn: sqlite3.Connection, since: float, by: str | None) -> tuple[dict, list[dict]]:
    """The overall totals since ``since`` and, with ``by``, one row per group
    (largest cost first, then most requests; days in date order)."""
    overall = dict(conn.execute(f"SELECT {_SUMS} FROM requests WHERE ts >= ?", (since,)).fetchone())
    groups: list[dict] = []
    if by:
        key = GROUPS[by]
        order = "key" if by == "day" else "COALESCE(SUM(cost_usd), 0) DESC, requests DESC, key"
        groups = [dict(row) for row in conn.execute(
            f"SELECT {key} AS key, {_SUMS} FROM requests WHERE ts >= ? GROUP BY key ORDER BY {order}", (since,))]
    return _clean(overall), [_clean(g) for g in groups]


def _clean(row: dict) -> dict:
    out = dict(row)
    for name in FIELDS:
        value = out.get(name)
        if name == "cost_usd":
            out[name] = None if value is None else round(value, 6)
        else:
            out[name] = int(value or 0)
    return out


def human(n: int) -> str:
    """1234 -> 1.2k, 5_600_000 -> 5.6M: short enough for a terminal column."""
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if n >= size:
            return f"{n / size:.1f}{suffix}"
    return str(n)


def money(cost: float | None) -> str:
    if cost is None:
        return "-"
    return f"${cost:.2f}" if cost >= 1 else f"${cost:.4f}"


def render_table(overall: dict, groups: list[dict], by: str | None) -> str:
    header = [by or "", "requests", "failed", "input", "output", "cache read", "cache write", "cost"]
    lines = [[g["key"] or "-"] + _cells(g) for g in groups]
    lines.append(["total"] + _cells(overall))
    widths = [max(len(str(row[i])) for row in [header, *lines]) for i in range(len(header))]
    out = []
    for row in [header, *lines]:
        first = str(row[0]).ljust(widths[0])
        rest = [str(cell).rjust(width) for cell, width in zip(row[1:], widths[1:])]
        out.append("  ".join([first, *rest]).rstrip())
    return "\n".join(out)


def _cells(row: dict) -> list[str]:
    return [str(row["requests"]), str(row["failed"]), human(row["input"]), human(row["output"]),
            human(row["cache_read"]), human(row["cache_write"]), money(row["cost_usd"])]


def render_json(overall: dict, groups: list[dict], by: str | None, since: float) -> str:
    return json.dumps({"since": dt.datetime.fromtimestamp(since).isoformat(timespec="seconds"),
                       "by": by, "total": overall, "groups": groups}, indent=2)


def render_csv(overall: dict, groups: list[dict], by: str | None) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([by or "group", *FIELDS])
    for row in [*groups, {**overall, "key": "total"}]:
        writer.writerow([row["key"], *(row[name] if row[name] is not None else "" for name in FIELDS)])
    return buf.getvalue().rstrip("\n")
