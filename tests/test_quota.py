"""OpenCode Go quota: the poller against a local usage endpoint on a real
socket (normal, 80 %, 100 %, 404, garbage), the switch-over to non-Go
fallbacks, and a GoUsageLimitError answer marking its window spent.

Recorded shapes (written by us from public descriptions):
- the usage endpoint's answer, as the cmd-usage crate documents the
  console's three meters (docs.rs/cmd-usage, src/ocuse/api.rs):
  ``{"usage": {"rolling": {"status": "ok", "percent": 2, "resetsAt": "…Z"}, …}}``
- the alternative shape proposed in anomalyco/opencode#31084
  (``rolling5h.usagePercent``, ``resetInSec``);
- the limit error: 429 ``{"type": "error", "error": {"type": "GoUsageLimitError",
  "message": "Weekly usage limit reached. Resets in 19hr"}}`` as quoted in
  OpenCode users' reports (anomalyco/opencode#49170 quotes "weekly usage limit
  reached. It will reset in 5 days 10 hours").
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from ocproxy.config import ModelConfig
from ocproxy.usage.quota import Quota, limit_window, parse_usage
from tests.conftest import GO_CHAT, ZEN_CHAT, make_config
from tests.fakes import chat_completion, json_body, status

USER = [{"role": "user", "content": "hi"}]


def meters(rolling, weekly=10, monthly=5, status_word="ok"):
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    return {"usage": {name: {"status": status_word if pct >= 100 else "ok", "percent": pct, "resetsAt": reset}
                      for name, pct in (("rolling", rolling), ("weekly", weekly), ("monthly", monthly))}}


class UsageEndpoint:
    """GET /zen/go/v1/usage on a real socket, answering what the test sets."""

    def __init__(self):
        self.answer: tuple[int, bytes] = (200, json.dumps(meters(12)).encode())
        self.hits: list[str] = []  # the Authorization header of each request
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                endpoint.hits.append(self.headers.get("Authorization", ""))
                code, body = endpoint.answer
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/zen/go/v1/usage"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def usage_endpoint():
    endpoint = UsageEndpoint()
    yield endpoint
    endpoint.close()


def polled(quota: Quota) -> Quota:
    quota.poll_once()
    return quota


@pytest.mark.parametrize("rolling, paused", [(12, ""), (80, "Go rolling usage at 80% (switch_at_percent 75)"),
                                             (100, "Go rolling usage limit reached")])
def test_poller_reads_the_windows_and_decides_the_switch(usage_endpoint, rolling, paused):
    usage_endpoint.answer = (200, json.dumps(meters(rolling)).encode())
    quota = polled(Quota(usage_endpoint.url, "sk-go-key-123456", switch_at_percent=75))
    assert usage_endpoint.hits == ["Bearer sk-go-key-123456"]
    assert {w.window: w.percent for w in quota.windows()} == {"rolling": rolling, "weekly": 10, "monthly": 5}
    assert quota.go_paused() == paused
    assert quota.snapshot()["rolling"]["percent"] == rolling


def test_without_switch_at_percent_only_an_exhausted_window_pauses(usage_endpoint):
    usage_endpoint.answer = (200, json.dumps(meters(99)).encode())
    assert polled(Quota(usage_endpoint.url, "sk-go-key-123456")).go_paused() == ""


@pytest.mark.parametrize("answer", [(404, b'{"error":"not found"}'), (200, b"<html>login</html>"),
                                    (200, b'{"usage": "soon"}')])
def test_404_or_garbage_disables_polling_with_one_log_line(usage_endpoint, answer, caplog):
    usage_endpoint.answer = answer
    quota = Quota(usage_endpoint.url, "sk-go-key-123456")
    with caplog.at_level("WARNING", logger="ocproxy.quota"):
        quota.poll_once()
        quota.touch()  # disabled: no thread, no request
        quota.close()
    assert len(usage_endpoint.hits) == 1
    assert not quota.polling and quota.windows() == []
    lines = [r.getMessage() for r in caplog.records if r.name == "ocproxy.quota"]
    assert len(lines) == 1 and "polling disabled" in lines[0]


def test_traffic_wakes_the_poller_at_most_once_a_minute(usage_endpoint):
    quota = Quota(usage_endpoint.url, "sk-go-key-123456")
    try:
        for _ in range(20):
            quota.touch()
        deadline = time.monotonic() + 5
        while not quota.windows() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(usage_endpoint.hits) == 1 and quota.windows()
    finally:
        quota.close()
    assert quota._thread is None  # joined


def test_the_proposed_usage_shape_is_read_too():
    windows = parse_usage({"rolling5h": {"usageDollars": 2.34, "limitDollars": 12, "usagePercent": 19.5,
                                         "resetInSec": 7200},
                           "weekly": {"usagePercent": 29.7, "resetInSec": 345600},
                           "monthly": {"usagePercent": 25.0, "resetInSec": 1414800}}, now=1000.0)
    assert [(w.window, w.percent, w.resets_at) for w in windows] == [
        ("rolling", 19.5, 8200.0), ("weekly", 29.7, 346600.0), ("monthly", 25.0, 1415800.0)]


def test_limit_error_names_the_window_and_its_reset():
    body = json.dumps({"type": "error", "error": {"type": "GoUsageLimitError",
                                                  "message": "Weekly usage limit reached. Resets in 19hr"}})
    w = limit_window(body, None, now=0.0)
    assert (w.window, w.exhausted, w.resets_at) == ("weekly", True, 19 * 3600)
    assert limit_window(body, "300", now=0.0).resets_at == 300
    days = limit_window('{"error":{"type":"GoUsageLimitError","message":"Monthly usage limit reached. '
                        'It will reset in 10 days 19 hours."}}', None, now=0.0)
    assert (days.window, days.resets_at) == ("monthly", 10 * 86400 + 19 * 3600)
    assert limit_window('{"error":{"message":"invalid api key"}}', None, now=0.0) is None


# -- through the real server ------------------------------------------------------


def go_then_zen():
    go = ModelConfig(provider="opencode-go", model_id="kimi-k2.6")
    zen = ModelConfig(provider="opencode-zen", model_id="glm-5.1")
    return dict(models={"default": go, "fast": go}, fallbacks={"default": (zen,), "fast": (zen,)})


def test_above_switch_at_percent_go_models_are_skipped_for_zen(upstream, start_proxy, sdk, usage_endpoint):
    usage_endpoint.answer = (200, json.dumps(meters(85)).encode())
    upstream.on(ZEN_CHAT, json_body(chat_completion("from zen")))
    proxy = start_proxy(make_config(upstream, quota_url=usage_endpoint.url, quota_switch_at_percent=80,
                                    **go_then_zen()))
    proxy.app.quota.poll_once()  # what the first request's wake-up does (tested above)
    msg = sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=USER)
    assert msg.content[0].text == "from zen"
    assert upstream.calls(GO_CHAT) == [] and len(upstream.calls(ZEN_CHAT)) == 1
    health = requests.get(proxy.url + "/health", timeout=5).json()
    assert health["go_quota"]["rolling"]["percent"] == 85
    metrics = requests.get(proxy.url + "/metrics", timeout=5).text
    assert "ocproxy_go_quota_rolling_percent 85" in metrics


def test_go_usage_limit_answer_skips_go_until_the_reset(upstream, start_proxy, sdk):
    body = {"type": "error", "error": {"type": "GoUsageLimitError",
                                       "message": "Weekly usage limit reached. Resets in 19hr"}}
    upstream.on(GO_CHAT, status(429, body))
    upstream.on(ZEN_CHAT, json_body(chat_completion("zen 1")), json_body(chat_completion("zen 2")))
    proxy = start_proxy(make_config(upstream, **go_then_zen()))
    client = sdk(proxy)
    assert client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=USER).content[0].text == "zen 1"
    assert client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=USER).content[0].text == "zen 2"
    assert len(upstream.calls(GO_CHAT)) == 1  # the second turn went straight to Zen
    health = requests.get(proxy.url + "/health", timeout=5).json()
    assert health["go_quota"]["weekly"]["exhausted"] is True
