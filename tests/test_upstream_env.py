"""The process environment the upstream client honours, read once per origin.

requests re-reads proxy variables and ~/.netrc on every call; ocproxy
resolves them when it first talks to an upstream origin (re-reading them
cost a real share of a request's CPU). These tests pin down what a user
still gets: HTTP(S)_PROXY and NO_PROXY work, and a ~/.netrc entry for the
upstream's host never replaces the provider key.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.conftest import API_KEY, GO_CHAT, make_config
from tests.fakes import chat_completion, json_body

USER = [{"role": "user", "content": "Hello, how are you?"}]
REMOTE = "http://upstream.invalid:8080"


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_http_proxy_from_the_environment_carries_the_upstream_call(upstream, start_proxy, sdk, monkeypatch):
    # The fake upstream plays the forward proxy: it receives the absolute URL.
    monkeypatch.setenv("HTTP_PROXY", upstream.base)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the SDK's own calls to ocproxy go direct
    upstream.on(REMOTE + GO_CHAT, json_body(chat_completion("via the proxy")))
    config = make_config(upstream, timeout_ms=3000)
    config = dataclasses.replace(config, opencode_go=dataclasses.replace(config.opencode_go,
                                                                         base_url=REMOTE + GO_CHAT))
    proxy = start_proxy(config)
    msg = sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    assert msg.content[0].text == "via the proxy"
    [call] = upstream.calls(REMOTE + GO_CHAT)
    assert call.headers["authorization"] == f"Bearer {API_KEY}"


def test_no_proxy_sends_the_call_direct(upstream, start_proxy, sdk, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens: used, it would fail
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    upstream.on(GO_CHAT, json_body(chat_completion("direct")))
    proxy = start_proxy(make_config(upstream, timeout_ms=3000))
    msg = sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    assert msg.content[0].text == "direct"
    assert len(upstream.calls(GO_CHAT)) == 1


def test_a_netrc_entry_for_the_upstream_host_never_replaces_the_provider_key(upstream, start_proxy, sdk,
                                                                              monkeypatch, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    upstream.on(GO_CHAT, json_body(chat_completion("ok")))
    proxy = start_proxy(make_config(upstream, timeout_ms=3000))
    sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    [call] = upstream.calls(GO_CHAT)
    assert call.headers["authorization"] == f"Bearer {API_KEY}"
