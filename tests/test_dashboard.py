"""The /ui dashboard in a real browser: headless Chromium loads the page
after real traffic through the proxy, and what it rendered (the DOM after
parsing, the SVG charts, the tables) carries the ledger's numbers. A
screenshot at phone width is saved as a test artifact.

Chromium comes from Debian's ``chromium`` package, installed by ``make
test`` when it can; without it the test skips saying why, and fails under
``CI=true``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import anthropic
import pytest
import requests

from ocproxy.config import ModelConfig
from ocproxy.usage import dashboard
from tests.conftest import GO_CHAT, ZEN_CHAT, make_config
from tests.fakes import chat_completion, chat_text_chunks, json_body, sse, status
from tests.procs import ROOT, wait_for

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ARTIFACTS = ROOT / ".cache" / "test-artifacts"
USER = [{"role": "user", "content": "hi"}]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found:
        return found
    reason = "headless Chromium is not installed (make test installs Debian's chromium when run as root with apt)"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def browse(url: str, *flags: str) -> subprocess.CompletedProcess:
    """One headless Chromium run with the flags this closed network needs."""
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", *flags, url],
            capture_output=True, timeout=90)


@pytest.fixture
def traffic_proxy(upstream, start_proxy, tmp_path):
    """A proxy with a ledger and some traffic: two answered by kimi (one a
    stream), one saved by glm after kimi's 500, one where both failed."""
    go = ModelConfig(provider="opencode-go", model_id="kimi-k2.6")
    zen = ModelConfig(provider="opencode-zen", model_id="glm-5.1")
    config = make_config(upstream, usage_database_path=str(tmp_path / "usage.db"),
                         client_api_keys=("sk-client-dashboard-key",),
                         models={"default": go, "fast": go}, fallbacks={"default": (zen,), "fast": (zen,)})
    usage = {"prompt_tokens": 1500, "completion_tokens": 40, "total_tokens": 1540}
    upstream.on(GO_CHAT, json_body(chat_completion("a", usage=usage)),
                sse(*chat_text_chunks(["b"], usage=usage)),
                status(500, {"error": {"message": "boom"}}),
                status(500, {"error": {"message": "boom"}}))
    upstream.on(ZEN_CHAT, json_body(chat_completion("c", usage=usage)), status(503, {"error": {"message": "down"}}))
    proxy = start_proxy(config)
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-client-dashboard-key", max_retries=0, timeout=30)
    client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=USER,
                           extra_headers={"x-claude-code-session-id": "sess-dash"})
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=5, messages=USER) as stream:
        stream.get_final_text()
    client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=USER)
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=USER)
    wait_for(proxy.app.idle, 10)
    assert proxy.app.ledger.flush(10)
    return proxy


def test_dashboard_in_headless_chromium_shows_the_ledgers_numbers(traffic_proxy):
    url = traffic_proxy.url + "/ui?key=sk-client-dashboard-key"
    done = browse(url, "--dump-dom", "--virtual-time-budget=3000")
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    dom = done.stdout.decode()
    cards = dict(re.findall(r'data-card="([^"]+)">[^<]*<b>([^<]*)</b>', dom))
    assert cards["requests"] == "4" and cards["failed"] == "1" and cards["fallbacks"] == "1", cards
    assert cards["input tokens"] == "4.5k" and cards["output tokens"] == "120", cards
    # the requests chart: one bar per model in the current hour, with the ledger's counts
    bars = dict(re.findall(r'<rect class="bar" data-model="([^"]+)" data-value="(\d+)"', dom.split('id="tokens-chart"')[0]))
    assert bars == {"kimi-k2.6": "2", "glm-5.1": "1", "(none)": "1"}, bars
    causes = dict(re.findall(r'data-cause="([^"]+)" data-value="(\d+)"', dom))
    assert causes == {"http-500": "2", "http-503": "1"}, causes  # kimi's 500 twice, glm's 503 once
    recent = dom.split('id="recent"')[1]
    assert recent.count("<tr>") == 1 + 4  # header + four requests
    assert "sess-dash" in recent and "all-failed" in recent
    assert re.search(r"<td>kimi-k2.6</td><td>closed</td>", dom.replace(' class="ok"', ""))

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard-phone.png"
    done = browse(url, f"--screenshot={shot}", "--window-size=412,1600", "--hide-scrollbars",
                  "--virtual-time-budget=3000")
    assert done.returncode == 0 and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_dashboard_needs_the_client_key_and_filters_recent_requests(traffic_proxy):
    assert requests.get(traffic_proxy.url + "/ui", timeout=5).status_code == 401
    page = requests.get(traffic_proxy.url + "/ui", params={"key": "sk-client-dashboard-key",
                                                           "outcome": "all-failed"}, timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "ocproxy_key=" in page.headers["Set-Cookie"] and "HttpOnly" in page.headers["Set-Cookie"]
    recent = page.text.split('id="recent"')[1]
    assert recent.count("<tr>") == 2 and "all-failed" in recent
    # the cookie alone lets the page refresh
    again = requests.get(traffic_proxy.url + "/ui", cookies={"ocproxy_key": "sk-client-dashboard-key"}, timeout=5)
    assert again.status_code == 200 and "<svg" in again.text
    assert "sk-client-dashboard-key" not in again.text


def test_render_escapes_what_clients_control():
    snap = dashboard.Snapshot(hours=1, buckets=[0.0])
    snap.recent = [{"ts": 0, "request_id": "r", "session": "<script>x</script>", "requested_model": '"><img>',
                    "model": "m", "outcome": "ok", "status": 200, "streaming": 0, "input_tokens": 1,
                    "output_tokens": 1, "duration_ms": 1.0, "cost_usd": None}]
    page = dashboard.render(snap, {}, {"model": "<b>"})
    assert "<script>x" not in page and "<img>" not in page and "&lt;b&gt;" in page
