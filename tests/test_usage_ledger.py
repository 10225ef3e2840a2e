"""The usage ledger through the real server: every /v1/messages request,
streamed or whole, answered, fallen back or failed, leaves one row with the
models, tokens (from the upstream's usage) and outcome; the ledger never
fails a request."""

from __future__ import annotations

import dataclasses
import json
import re
import time
import sqlite3

import pytest
import requests

from ocproxy.config import ModelConfig
from ocproxy.usage.ledger import SCHEMA_VERSION, WRITER_CACHE_KIB, Ledger, connect, migrate
from ocproxy.usage.record import AnswerTokens, Prices, Tokens, UsageRow, cost_usd
from tests.conftest import GO_CHAT, ZEN_CHAT, chain, make_config
from tests.procs import wait_for
from tests.fakes import chat_completion, chat_text_chunks, json_body, sse, status

USER = [{"role": "user", "content": "count my tokens"}]
USAGE = {"prompt_tokens": 120, "completion_tokens": 7, "total_tokens": 127}


def rows(path) -> list[dict]:
    conn = connect(str(path), readonly=True)
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM requests ORDER BY id")]
    finally:
        conn.close()


@pytest.fixture
def ledger_proxy(upstream, start_proxy, tmp_path):
    def start(**overrides):
        config = make_config(upstream, usage_database_path=str(tmp_path / "usage.db"), **overrides)
        return start_proxy(config)
    return start


def settle(proxy):
    """Wait for the last request to finish (a stream's row is queued after
    its last frame reached the client) and for the writer to write it."""
    wait_for(proxy.app.idle, 10)
    assert proxy.app.ledger.flush(10)


def test_whole_and_streamed_answers_leave_rows_with_upstream_tokens(upstream, ledger_proxy, sdk, tmp_path):
    upstream.on(GO_CHAT, json_body(chat_completion("whole", usage=USAGE)),
                sse(*chat_text_chunks(["str", "eamed"], usage=USAGE)))
    proxy = ledger_proxy()
    client = sdk(proxy)
    client.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=USER,
                           extra_headers={"x-claude-code-session-id": "sess-1"})
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=50, messages=USER,
                                extra_headers={"x-claude-code-session-id": "sess-1"}) as stream:
        assert stream.get_final_text() == "streamed"
    settle(proxy)
    whole, streamed = rows(tmp_path / "usage.db")
    for row in (whole, streamed):
        assert row["session"] == "sess-1"
        assert row["requested_model"] == "claude-sonnet-4-6"
        assert row["model"] == "kimi-k2.6" and row["provider"] == "opencode-go" and row["endpoint"] == "chat"
        assert row["outcome"] == "ok" and row["status"] == 200
        assert (row["input_tokens"], row["output_tokens"]) == (120, 7), row
        # priced from the catalog: kimi-k2.6 on Go costs $0.95 in / $4.00 out per million
        assert row["cost_usd"] == pytest.approx((120 * 0.95 + 7 * 4.0) / 1e6)
        assert json.loads(row["attempts"]) == [{"model": "kimi-k2.6", "outcome": "ok"}]
        assert row["duration_ms"] > 0 and row["ttfb_ms"] is not None and row["ttfb_ms"] <= row["duration_ms"]
    assert (whole["streaming"], streamed["streaming"]) == (0, 1)
    assert whole["request_id"] != streamed["request_id"]
    metrics = requests.get(proxy.url + "/metrics", timeout=10).text
    assert 'ocproxy_tokens_total{kind="input",model="kimi-k2.6"} 240.0' in metrics
    assert 'ocproxy_tokens_total{kind="output",model="kimi-k2.6"} 14.0' in metrics
    cost = float(re.search(r'^ocproxy_cost_usd_total\{model="kimi-k2.6"\} (\S+)$', metrics, re.M).group(1))
    assert cost == pytest.approx(2 * (120 * 0.95 + 7 * 4.0) / 1e6)


def test_fallback_row_names_the_model_that_answered_and_each_attempt(upstream, ledger_proxy, sdk, tmp_path):
    upstream.on(GO_CHAT, status(500, {"error": {"message": "boom"}}))
    upstream.on(ZEN_CHAT, sse(*chat_text_chunks(["saved"], usage=USAGE)))
    overrides = chain("kimi-k2.6")
    overrides["fallbacks"] = {k: (ModelConfig(provider="opencode-zen", model_id="glm-5.1"),)
                              for k in ("default", "fast")}
    proxy = ledger_proxy(**overrides)
    with sdk(proxy).messages.stream(model="claude-sonnet-4-6", max_tokens=50, messages=USER) as stream:
        assert stream.get_final_text() == "saved"
    settle(proxy)
    (row,) = rows(tmp_path / "usage.db")
    assert row["model"] == "glm-5.1" and row["provider"] == "opencode-zen"
    attempts = json.loads(row["attempts"])
    assert [a["model"] for a in attempts] == ["kimi-k2.6", "glm-5.1"]
    assert attempts[1]["outcome"] == "ok" and attempts[0]["outcome"] != "ok"
    assert row["output_tokens"] == 7


def test_all_failed_row_keeps_the_status_the_client_got(upstream, ledger_proxy, sdk, tmp_path):
    import anthropic

    upstream.on(GO_CHAT, status(401, {"error": {"message": "invalid api key"}}))
    proxy = ledger_proxy()
    with pytest.raises(anthropic.AuthenticationError):
        sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=USER)
    settle(proxy)
    (row,) = rows(tmp_path / "usage.db")
    assert row["outcome"] == "all-failed" and row["status"] == 401
    assert row["model"] == "" and row["input_tokens"] == 0 and row["cost_usd"] is None


def test_database_path_that_cannot_exist_keeps_requests_working(upstream, start_proxy, sdk, tmp_path):
    """Its parent is a file (works even as root, who may write anywhere)."""
    (tmp_path / "a-file").write_text("not a directory")
    upstream.on(GO_CHAT, json_body(chat_completion("still fine", usage=USAGE)))
    proxy = start_proxy(make_config(upstream, usage_database_path=str(tmp_path / "a-file" / "usage.db")))
    msg = sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=USER)
    assert msg.content[0].text == "still fine"
    assert not proxy.app.ledger.enabled


def test_unwritable_database_warns_once_and_requests_still_answer(upstream, start_proxy, sdk, tmp_path, caplog):
    """A path that is a directory cannot be a database: one warning, no failure."""
    target = tmp_path / "is-a-dir.db"
    target.mkdir()
    upstream.on(GO_CHAT, json_body(chat_completion("fine", usage=USAGE)), json_body(chat_completion("fine")))
    with caplog.at_level("WARNING", logger="ocproxy.usage"):
        proxy = start_proxy(make_config(upstream, usage_database_path=str(target)))
        client = sdk(proxy)
        for _ in range(2):
            assert client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=USER).content[0].text
    warnings = [r for r in caplog.records if r.name == "ocproxy.usage"]
    assert len(warnings) == 1 and "usage ledger disabled" in warnings[0].getMessage()


def test_disabled_ledger_writes_nothing(upstream, ledger_proxy, sdk, tmp_path):
    upstream.on(GO_CHAT, json_body(chat_completion("x")))
    proxy = ledger_proxy(usage_enabled=False)
    sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=USER)
    assert not (tmp_path / "usage.db").exists()
    # /metrics still counts the tokens
    assert 'ocproxy_tokens_total{kind="output"' in requests.get(proxy.url + "/metrics", timeout=10).text


# -- the pieces -----------------------------------------------------------


def test_schema_is_versioned_and_migrates_once(tmp_path):
    path = str(tmp_path / "u.db")
    conn = connect(path)
    assert migrate(conn) == 0
    assert migrate(conn) == SCHEMA_VERSION
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(sqlite3.DatabaseError, match="newer than this ocproxy"):
        migrate(conn)


def test_ledger_is_in_wal_mode_and_purges_rows_past_retention(tmp_path):
    path = str(tmp_path / "u.db")
    ledger = Ledger(path, retention_days=1)
    old = UsageRow(ts=1.0, request_id="old", client="", session="s", requested_model="m", model="m",
                   provider="p", endpoint="chat")
    ledger.record(old)
    assert ledger.flush(5)
    ledger.close()
    ledger = Ledger(path, retention_days=1)  # a new writer purges on its first batch
    ledger.record(dataclasses.replace(old, ts=time.time(), request_id="new"))
    assert ledger.flush(5)
    ledger.close()
    conn = connect(path, readonly=True)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [r[0] for r in conn.execute("SELECT request_id FROM requests")] == ["new"]


def test_the_writer_connection_keeps_a_small_page_cache(tmp_path):
    """The writer only appends and purges; with sqlite's default 2 MB page
    cache a long-running proxy's memory grew with the ledger file."""
    conn = Ledger(str(tmp_path / "u.db"), retention_days=1)._open()
    try:
        assert conn.execute("PRAGMA cache_size").fetchone()[0] == -WRITER_CACHE_KIB
    finally:
        conn.close()


def test_stream_tokens_read_message_start_and_delta_only():
    seen = AnswerTokens()
    seen.feed([
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":9,'
        b'"cache_read_input_tokens":4,"output_tokens":0}}}\n\n',
        b'event: content_block_delta\ndata: {"usage":{"input_tokens":999}}\n\n',
        b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":11}}\n\n',
    ])
    assert seen.tokens == Tokens(input=9, output=11, cache_read=4, cache_write=0)


def test_cost_uses_input_price_for_cached_tokens_without_their_own():
    tokens = Tokens(input=1_000_000, output=500_000, cache_read=2_000_000)
    assert cost_usd(tokens, Prices(input=0.6, output=2.5)) == pytest.approx(0.6 + 1.25 + 1.2)
    assert cost_usd(tokens, Prices(input=0.6, output=2.5, cache_read=0.1)) == pytest.approx(0.6 + 1.25 + 0.2)
    assert cost_usd(tokens, Prices(input=None, output=2.5)) is None


def test_config_puts_the_ledger_beside_the_config_file(tmp_path):
    from ocproxy.config import load_config

    path = tmp_path / "conf" / "config.json"
    path.parent.mkdir()
    env = {"HOME": str(tmp_path / "home")}
    path.write_text(json.dumps({"api_key": "sk-ledger-config-test"}))
    config = load_config(str(path), env)
    assert config.usage_database_path == str(tmp_path / "conf" / "usage.db") and config.usage_enabled
    assert config.usage_retention_days == 90 and config.capture_dir == ""
    path.write_text(json.dumps({"api_key": "sk-ledger-config-test", "usage": {
        "database_path": "data/ledger.sqlite", "retention_days": 7, "enabled": False},
        "logging": {"capture": {"enabled": True}}, "quota": {"switch_at_percent": 90}}))
    config = load_config(str(path), env)
    assert config.usage_database_path == str(tmp_path / "conf" / "data" / "ledger.sqlite")
    assert (config.usage_retention_days, config.usage_enabled) == (7, False)
    assert config.capture_dir == str(tmp_path / "conf" / "capture")
    assert config.quota_switch_at_percent == 90 and config.quota_url.endswith("/zen/go/v1/usage")
    builtin = load_config(None, env)
    assert builtin.usage_database_path == str(tmp_path / "home" / ".config" / "ocproxy" / "usage.db")


def test_a_row_recorded_just_before_close_is_written(tmp_path):
    """close() right after the writer thread started: the thread still
    opens the database and writes what was queued (the app's shutdown)."""
    path = str(tmp_path / "u.db")
    for n in range(30):
        ledger = Ledger(path)
        ledger.record(UsageRow(ts=time.time(), request_id=f"r{n}", client="", session="s", requested_model="m",
                               model="m", provider="p", endpoint="chat"))
        ledger.close()
    assert len(rows(path)) == 30
