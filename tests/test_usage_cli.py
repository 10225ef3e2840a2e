"""``ocproxy usage`` and ``ocproxy statusline`` as a user runs them: real
subprocesses reading a ledger the proxy wrote."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time

import pytest

from ocproxy.usage.ledger import Ledger
from ocproxy.usage.record import QuotaWindow, Tokens, UsageRow
from ocproxy.usage.report import parse_since
from tests.procs import ROOT, clean_env

NOW = time.time()


def row(model, session, inp, out, cost, ago_s=60.0, outcome="ok", client=""):
    return UsageRow(ts=NOW - ago_s, request_id=f"r{inp}{out}{ago_s}", client=client, session=session,
                    requested_model="claude-opus-4-8", model=model, provider="opencode-go", endpoint="chat",
                    attempts=[{"model": model, "outcome": outcome}], outcome=outcome,
                    status=200 if outcome == "ok" else 502, tokens=Tokens(input=inp, output=out),
                    duration_ms=900.0, cost_usd=cost)


@pytest.fixture
def home(tmp_path):
    """A HOME whose config puts the ledger beside it, filled with rows."""
    cfg_dir = tmp_path / ".config" / "ocproxy"
    cfg_dir.mkdir(parents=True)
    (cfg_dir / "config.json").write_text(json.dumps({"api_key": "sk-test-cli-usage-000"}))
    ledger = Ledger(str(cfg_dir / "usage.db"))
    for r in (row("kimi-k2.6", "s1", 12_000, 3_400, 0.0125),
              row("kimi-k2.6", "s1", 48_000, 1_200, 0.031),
              row("glm-5.1", "s2", 2_500_000, 40_000, 1.75, client="alice"),
              row("", "s2", 0, 0, None, outcome="all-failed"),
              row("glm-5.1", "s3", 999, 1, 0.0001, ago_s=3 * 86400)):
        ledger.record(r)
    ledger.record([QuotaWindow("rolling", 12.4, NOW + 3600), QuotaWindow("weekly", 30.0, NOW + 86400),
                   QuotaWindow("monthly", 25.0, NOW + 10 * 86400)])
    assert ledger.flush(5)
    ledger.close()
    return tmp_path


def ocproxy(home, *args, stdin: str = "") -> subprocess.CompletedProcess:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "ocproxy", *args], input=stdin, capture_output=True, text=True,
                          env=clean_env(home), cwd=ROOT, timeout=30)
    print(f"ocproxy {' '.join(args)}: {(time.monotonic() - started) * 1000:.0f} ms")  # timing for the log only
    return done


def test_usage_table_by_model_is_aligned_with_human_numbers(home):
    done = ocproxy(home, "usage", "--by", "model")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    print(done.stdout)
    assert lines[0].split() == ["model", "requests", "failed", "input", "output", "cache", "read", "cache",
                                "write", "cost"]
    # most expensive first; the 3-day-old row is outside the default 24 h
    assert lines[1].split() == ["glm-5.1", "1", "0", "2.5M", "40.0k", "0", "0", "$1.75"]
    assert lines[2].split() == ["kimi-k2.6", "2", "0", "60.0k", "4.6k", "0", "0", "$0.0435"]
    assert lines[3].split()[:3] == ["(none)", "1", "1"]
    assert lines[-1].split() == ["total", "4", "1", "2.6M", "44.6k", "0", "0", "$1.79"]
    # aligned: every row is as wide as the header's columns
    ends = {len(line) for line in lines}
    assert len(ends) == 1, lines


def test_usage_since_and_json_and_csv(home):
    week = json.loads(ocproxy(home, "usage", "--since", "7d", "--by", "session", "--json").stdout)
    assert week["total"]["requests"] == 5
    assert {g["key"]: g["requests"] for g in week["groups"]} == {"s1": 2, "s2": 2, "s3": 1}
    assert week["total"]["output"] == 3_400 + 1_200 + 40_000 + 1
    table = list(csv.reader(io.StringIO(ocproxy(home, "usage", "--by", "client", "--csv").stdout)))
    assert table[0] == ["client", "requests", "failed", "input", "output", "cache_read", "cache_write", "cost_usd"]
    assert ["alice", "1", "0", "2500000", "40000", "0", "0", "1.75"] in table
    assert table[-1][:2] == ["total", "4"]


def test_usage_bad_since_and_missing_ledger_say_why(home, tmp_path):
    bad = ocproxy(home, "usage", "--since", "yesterday")
    assert bad.returncode == 1 and "use a span like 24h" in bad.stderr
    empty = tmp_path / "empty-home"
    empty.mkdir()
    missing = ocproxy(empty, "usage")
    assert missing.returncode == 1 and "no usage ledger at" in missing.stderr


def test_statusline_reads_claude_codes_json_and_prints_one_line(home):
    # the object Claude Code passes to a statusLine command
    status = {"hook_event_name": "Status", "session_id": "s1", "transcript_path": "/tmp/t.jsonl",
              "cwd": "/work", "model": {"id": "claude-opus-4-8", "display_name": "Opus"},
              "workspace": {"current_dir": "/work", "project_dir": "/work"}, "version": "2.1.197",
              "cost": {"total_cost_usd": 0.0}}
    started = time.monotonic()
    done = ocproxy(home, "statusline", stdin=json.dumps(status))
    # reported, not asserted: speed is make bench's business
    print(f"ocproxy statusline took {(time.monotonic() - started) * 1000:.0f} ms, Python start-up included")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "kimi-k2.6 · 60.0k in 4.6k out · $0.0435 · Go 5h 12% wk 30% mo 25%\n"


def test_statusline_without_session_or_ledger_still_prints_a_line(home, tmp_path):
    assert ocproxy(home, "statusline", stdin="not json").stdout == "Go 5h 12% wk 30% mo 25%\n"
    empty = tmp_path / "nobody"
    empty.mkdir()
    done = ocproxy(empty, "statusline", stdin="{}")
    assert done.returncode == 0 and done.stdout == "ocproxy: no usage yet\n"


def test_since_accepts_spans_and_dates():
    assert parse_since("24h", now=100_000.0) == 100_000.0 - 86400
    assert parse_since("30m", now=5000.0) == 3200.0
    assert parse_since("2026-12-01") == pytest.approx(time.mktime((2026, 12, 1, 0, 0, 0, 0, 0, -1)))
    with pytest.raises(ValueError):
        parse_since("soon")
