"""The ``/ui`` page: usage and health at a glance, server-rendered HTML with
inline SVG charts (no script, no CDN, no build step). It refreshes itself.

:func:`collect` reads the ledger; :func:`render` turns what it read plus the
live state (breakers, open streams, quota) into one page. Both are plain
functions of their inputs.
"""

from __future__ import annotations

import html
import json
import sqlite3
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from ocproxy.usage.report import human, money

#: Distinct enough on light and dark backgrounds, in a fixed order per model.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")
RECENT_ROWS = 50
REFRESH_S = 15


@dataclass
class Snapshot:
    """What the ledger says about the last ``hours`` hours."""

    hours: int
    buckets: list[float] = field(default_factory=list)  # bucket start times, hourly
    requests: dict[str, list[int]] = field(default_factory=dict)  # model -> count per bucket
    tokens: dict[str, list[int]] = field(default_factory=dict)  # model -> in+out tokens per bucket
    latency: list[dict] = field(default_factory=list)  # per model: p50/p95/p99 of duration and ttfb
    failures: dict[str, int] = field(default_factory=dict)  # cause -> failed attempts
    fallbacks: int = 0  # requests answered by a model other than the first tried
    totals: dict = field(default_factory=dict)
    recent: list[dict] = field(default_factory=list)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(int(len(values) * q), len(values) - 1)]


def collect(conn: sqlite3.Connection, hours: int = 24, now: float | None = None,
            filters: dict[str, str] | None = None) -> Snapshot:
    now = time.time() if now is None else now
    filters = filters or {}
    start = (now // 3600 - hours + 1) * 3600
    snap = Snapshot(hours=hours, buckets=[start + i * 3600 for i in range(hours)])
    durations: dict[str, list[float]] = {}
    ttfbs: dict[str, list[float]] = {}
    totals = dict(requests=0, failed=0, input=0, output=0, cache_read=0, cost=0.0, priced=False)
    for row in conn.execute(
            "SELECT ts, model, outcome, attempts, input_tokens, output_tokens, cache_read_tokens, "
            "cache_write_tokens, duration_ms, ttfb_ms, cost_usd FROM requests WHERE ts >= ? ORDER BY ts", (start,)):
        model = row["model"] or "(none)"
        slot = min(int((row["ts"] - start) // 3600), hours - 1)
        snap.requests.setdefault(model, [0] * hours)[slot] += 1
        snap.tokens.setdefault(model, [0] * hours)[slot] += row["input_tokens"] + row["output_tokens"]
        totals["requests"] += 1
        totals["input"] += row["input_tokens"] + row["cache_read_tokens"] + row["cache_write_tokens"]
        totals["output"] += row["output_tokens"]
        totals["cache_read"] += row["cache_read_tokens"]
        if row["cost_usd"] is not None:
            totals["cost"] += row["cost_usd"]
            totals["priced"] = True
        if row["outcome"] == "ok":
            durations.setdefault(model, []).append(row["duration_ms"])
            if row["ttfb_ms"] is not None:
                ttfbs.setdefault(model, []).append(row["ttfb_ms"])
        else:
            totals["failed"] += 1
        attempts = json.loads(row["attempts"] or "[]")
        for attempt in attempts:
            if attempt.get("outcome") != "ok":
                cause = attempt.get("outcome") or "unknown"
                snap.failures[cause] = snap.failures.get(cause, 0) + 1
        if row["outcome"] == "ok" and len(attempts) > 1:
            snap.fallbacks += 1
    snap.totals = totals
    for model in sorted(durations, key=lambda m: -len(durations[m])):
        d, t = durations[model], ttfbs.get(model, [])
        snap.latency.append({"model": model, "n": len(d),
                             **{f"p{q}": _percentile(d, q / 100) for q in (50, 95, 99)},
                             **{f"ttfb_p{q}": _percentile(t, q / 100) for q in (50, 95)}})
    where, args = ["ts >= ?"], [start]
    for column in ("model", "session", "outcome"):
        if filters.get(column):
            where.append(f"{column} = ?")
            args.append(filters[column])
    snap.recent = [dict(r) for r in conn.execute(
        "SELECT ts, request_id, session, requested_model, model, outcome, status, streaming, input_tokens, "
        f"output_tokens, duration_ms, cost_usd FROM requests WHERE {' AND '.join(where)} "
        f"ORDER BY ts DESC LIMIT {RECENT_ROWS}", args)]
    return snap


# -- rendering ----------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;padding:12px;color:#222;background:#fafafa}
h1{font-size:18px;margin:0 0 8px}h2{font-size:15px;margin:18px 0 6px}
.cards{display:flex;flex-wrap:wrap;gap:8px}.card{background:#fff;border:1px solid #ddd;border-radius:6px;
padding:8px 12px;min-width:110px}.card b{display:block;font-size:18px}
.panel{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;margin-top:8px;overflow-x:auto}
svg{width:100%;height:auto;max-width:900px}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #eee;white-space:nowrap}
td.n,th.n{text-align:right}.legend span{display:inline-block;margin-right:10px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
.ok{color:#2a7d2a}.bad{color:#b22}form{display:flex;flex-wrap:wrap;gap:6px;margin:6px 0}
input,select{font:inherit;padding:2px 4px}
@media (max-width:600px){body{padding:6px}.card{min-width:90px}.wide{display:none}}
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _colors(models: list[str]) -> dict[str, str]:
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}


def bar_chart(series: dict[str, list[int]], labels: list[str], title: str, fmt=str) -> str:
    """Stacked bars, one per bucket, one colour per series."""
    if not series or not any(sum(v) for v in series.values()):
        return f'<p class="empty">{_e(title)}: nothing yet.</p>'
    width, height, left, bottom = 720, 180, 48, 22
    n = len(labels)
    totals = [sum(v[i] for v in series.values()) for i in range(n)]
    top = max(totals) or 1
    step = (width - left) / n
    colors = _colors(list(series))
    parts = [f'<svg viewBox="0 0 {width} {height + bottom}" role="img" aria-label="{_e(title)}">',
             f'<title>{_e(title)}</title>',
             f'<text x="0" y="12" font-size="11">{_e(fmt(top))}</text>',
             f'<line x1="{left}" y1="{height}" x2="{width}" y2="{height}" stroke="#999"/>']
    for i in range(n):
        y = height
        for model, values in series.items():
            if values[i]:
                h = values[i] / top * (height - 16)
                y -= h
                parts.append(f'<rect class="bar" data-model="{_e(model)}" data-value="{values[i]}" '
                             f'x="{left + i * step + 1:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" '
                             f'height="{h:.1f}" fill="{colors[model]}"><title>{_e(model)} {_e(labels[i])}: '
                             f'{_e(fmt(values[i]))}</title></rect>')
        if i % max(n // 6, 1) == 0:
            parts.append(f'<text x="{left + i * step:.1f}" y="{height + 15}" font-size="10">{_e(labels[i])}</text>')
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{c}"></i>{_e(m)}</span>' for m, c in colors.items())
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def hbar_chart(values: dict[str, int], title: str) -> str:
    if not values:
        return f'<p class="empty">{_e(title)}: none.</p>'
    rows = sorted(values.items(), key=lambda kv: -kv[1])
    width, row_h, left = 520, 20, 170
    top = rows[0][1] or 1
    parts = [f'<svg viewBox="0 0 {width} {row_h * len(rows) + 4}" role="img" aria-label="{_e(title)}">',
             f'<title>{_e(title)}</title>']
    for i, (name, n) in enumerate(rows):
        w = n / top * (width - left - 40)
        parts.append(f'<text x="0" y="{i * row_h + 14}" font-size="12">{_e(name)}</text>'
                     f'<rect class="cause" data-cause="{_e(name)}" data-value="{n}" x="{left}" y="{i * row_h + 3}" '
                     f'width="{w:.1f}" height="{row_h - 6}" fill="#e15759"/>'
                     f'<text x="{left + w + 4:.1f}" y="{i * row_h + 14}" font-size="12">{n}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _ms(value) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def render(snap: Snapshot, live: dict, filters: dict[str, str], base_query: dict[str, str] | None = None) -> str:
    """The whole page. ``live``: ``breakers`` (model -> state), ``streams_open``,
    ``quota`` (window -> {percent, resets_at, exhausted}), ``version``."""
    labels = [time.strftime("%H:00", time.localtime(b)) for b in snap.buckets]
    t = snap.totals
    cards = [("requests", t.get("requests", 0)), ("failed", t.get("failed", 0)),
             ("fallbacks", snap.fallbacks), ("input tokens", human(t.get("input", 0))),
             ("output tokens", human(t.get("output", 0))),
             ("est. cost", money(t["cost"]) if t.get("priced") else "-"),
             ("open streams", live.get("streams_open", 0))]
    quota = live.get("quota") or {}
    for window in ("rolling", "weekly", "monthly"):
        if window in quota:
            cards.append((f"Go {window}", f'{quota[window]["percent"]:.0f}%'))
    out = ['<!doctype html><html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width,initial-scale=1">',
           f'<meta http-equiv="refresh" content="{REFRESH_S}">',
           f"<title>ocproxy usage</title><style>{_CSS}</style></head><body>",
           f'<h1>ocproxy <small>{_e(live.get("version", ""))} · last {snap.hours} h · refreshes every '
           f'{REFRESH_S} s</small></h1>',
           '<div class="cards">' + "".join(f'<div class="card" data-card="{_e(k)}">{_e(k)}<b>{_e(v)}</b></div>'
                                           for k, v in cards) + "</div>",
           '<h2>Requests per hour</h2><div class="panel" id="requests-chart">',
           bar_chart(snap.requests, labels, "requests per hour by model"), "</div>",
           '<h2>Tokens per hour (input + output)</h2><div class="panel" id="tokens-chart">',
           bar_chart(snap.tokens, labels, "tokens per hour by model", human), "</div>",
           '<h2>Latency</h2><div class="panel"><table id="latency"><tr><th>model</th><th class="n">n</th>'
           '<th class="n">p50</th><th class="n">p95</th><th class="n wide">p99</th><th class="n">first byte<br>p50</th>'
           '<th class="n">first byte<br>p95</th></tr>']  # a phone shows it without p99, in its width
    for row in snap.latency:
        out.append(f'<tr><td>{_e(row["model"])}</td><td class="n">{row["n"]}</td>'
                   + "".join(f'<td class="{"n wide" if k == "p99" else "n"}">{_ms(row[k])}</td>'
                             for k in ("p50", "p95", "p99", "ttfb_p50", "ttfb_p95")) + "</tr>")
    out.append("</table></div>")
    out += ['<h2>Failed attempts by cause</h2><div class="panel" id="failures-chart">',
            hbar_chart(snap.failures, "failed attempts by cause"), "</div>",
            '<h2>Circuit breakers</h2><div class="panel"><table id="breakers"><tr><th>model</th><th>state</th></tr>']
    breakers = live.get("breakers") or {}
    for model, state in sorted(breakers.items()):
        cls = "ok" if state == "closed" else "bad"
        out.append(f'<tr><td>{_e(model)}</td><td class="{cls}">{_e(state)}</td></tr>')
    if not breakers:
        out.append('<tr><td colspan="2">no model called yet</td></tr>')
    out.append("</table></div>")
    if quota:
        out.append('<h2>OpenCode Go quota</h2><div class="panel"><table id="quota"><tr><th>window</th>'
                   '<th class="n">used</th><th>resets</th></tr>')
        for window, q in quota.items():
            cls = "bad" if q.get("exhausted") else "ok"
            out.append(f'<tr><td>{_e(window)}</td><td class="n {cls}">{q["percent"]:.0f}%</td>'
                       f'<td>{_e(q.get("resets_at") or "-")}</td></tr>')
        out.append("</table></div>")
    query = dict(base_query or {})
    out.append('<h2>Recent requests</h2><div class="panel"><form method="get" action="">')
    for key, value in query.items():
        out.append(f'<input type="hidden" name="{_e(key)}" value="{_e(value)}">')
    for column in ("model", "session", "outcome"):
        out.append(f'<input name="{column}" placeholder="{column}" value="{_e(filters.get(column, ""))}">')
    out.append('<button type="submit">filter</button></form><table id="recent"><tr><th>time</th><th>model</th>'
               '<th class="wide">asked for</th><th>outcome</th><th class="n">in</th><th class="n">out</th>'
               '<th class="n">ms</th><th class="n wide">cost</th><th class="wide">session</th></tr>')
    for r in snap.recent:
        cls = "ok" if r["outcome"] == "ok" else "bad"
        link = "?" + urlencode({**query, "session": r["session"]})
        out.append(
            f'<tr><td>{time.strftime("%H:%M:%S", time.localtime(r["ts"]))}</td><td>{_e(r["model"] or "-")}</td>'
            f'<td class="wide">{_e(r["requested_model"])}</td><td class="{cls}">{_e(r["outcome"])}</td>'
            f'<td class="n">{human(r["input_tokens"])}</td><td class="n">{human(r["output_tokens"])}</td>'
            f'<td class="n">{r["duration_ms"]:,.0f}</td><td class="n wide">{money(r["cost_usd"])}</td>'
            f'<td class="wide"><a href="{_e(link)}">{_e(r["session"][:16])}</a></td></tr>')
    if not snap.recent:
        out.append('<tr><td colspan="9">no requests</td></tr>')
    out.append("</table></div></body></html>")
    return "".join(out)
