"""The HTTP surface — routes, bad input, limits, client keys, rate limit,
request ids, /health, /metrics, /v1/models — against the real server on a
real socket.

Malformed input goes out through ``http.client`` / raw sockets (the SDK
cannot send it); every bad-input case is followed by a good request on the
same proxy, which must still succeed.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import time

import anthropic
import pytest
import requests

from ocproxy.config import ModelConfig
from tests.conftest import API_KEY, GO_CHAT, RunningProxy, chain, make_config
from tests.fakes import FakeUpstream, chat_completion, json_body, status

FAST = dict(timeout_ms=2000)
MODEL = "claude-sonnet-4-6"
USER = [{"role": "user", "content": "Hello, how are you?"}]
GOOD = json.dumps({"model": MODEL, "max_tokens": 10, "messages": USER}).encode()
LIMIT = 1000
REQ_ID = re.compile(r"^req-\d+-\d+-\d+$")  # time, worker pid, counter: unique across workers


def error_shape(body: dict, kind: str) -> str:
    """The Anthropic error body, exactly; returns the message."""
    assert set(body) == {"type", "error"}
    assert body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == kind
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]["message"]


def raw(proxy, method, path, body=None, headers=None, conn=None):
    """One request through http.client; returns (status, headers, parsed body or bytes)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", proxy.server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        if own:
            conn.close()
    try:
        return resp.status, hdrs, json.loads(data)
    except ValueError:
        return resp.status, hdrs, data


def good_sdk_request(proxy):
    client = anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0, timeout=10)
    msg = client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert msg.content[0].text == "fine"


# -- one proxy shared by the bad-input table -----------------------------------


@pytest.fixture(scope="module")
def shared():
    fake = FakeUpstream()
    fake.on(GO_CHAT, json_body(chat_completion("fine")))
    proxy = RunningProxy(make_config(fake, max_request_bytes=LIMIT, **FAST))
    yield proxy
    proxy.stop()
    fake.close()


JSON_CT = {"Content-Type": "application/json"}
BIG = json.dumps({"model": MODEL, "max_tokens": 10,
                  "messages": [{"role": "user", "content": "x" * (LIMIT + 10)}]}).encode()

# (id, method, path, body, status, error type, message must contain, request id expected)
BAD = [
    ("wrong_method_GET_messages", "GET", "/v1/messages", None, 405, "invalid_request_error",
     "Method not allowed", False),
    ("wrong_method_PUT_messages", "PUT", "/v1/messages", GOOD, 405, "invalid_request_error",
     "Method not allowed", False),
    ("GET_count_tokens_405", "GET", "/v1/messages/count_tokens", None, 405, "invalid_request_error",
     "Method not allowed", False),
    ("POST_models_405", "POST", "/v1/models", b"{}", 405, "invalid_request_error", "Method not allowed", False),
    ("POST_metrics_405", "POST", "/metrics", b"{}", 405, "invalid_request_error", "Method not allowed", False),
    ("trailing_slash_404", "POST", "/v1/messages/", GOOD, 404, "not_found_error", "not found", False),
    ("unknown_path_404", "GET", "/v2/nothing", None, 404, "not_found_error", "not found", False),
    ("unknown_post_404", "POST", "/v1/complete", GOOD, 404, "not_found_error", "not found", False),
    ("not_json", "POST", "/v1/messages", b"this is not json", 400, "invalid_request_error",
     "invalid request body", True),
    ("truncated_json", "POST", "/v1/messages", GOOD[:-7], 400, "invalid_request_error",
     "invalid request body", True),
    ("empty_body", "POST", "/v1/messages", b"", 400, "invalid_request_error", "invalid request body", True),
    ("json_array", "POST", "/v1/messages", b"[]", 400, "invalid_request_error", "invalid request body", True),
    ("stream_yes", "POST", "/v1/messages",
     json.dumps({"model": MODEL, "max_tokens": 10, "messages": USER, "stream": "yes"}).encode(),
     400, "invalid_request_error", "stream", True),
    ("max_tokens_1.5", "POST", "/v1/messages",
     json.dumps({"model": MODEL, "max_tokens": 1.5, "messages": USER}).encode(),
     400, "invalid_request_error", "max_tokens", True),
    ("messages_string", "POST", "/v1/messages",
     json.dumps({"model": MODEL, "max_tokens": 10, "messages": "x"}).encode(),
     400, "invalid_request_error", "messages", True),
    ("model_missing", "POST", "/v1/messages", json.dumps({"max_tokens": 10, "messages": USER}).encode(),
     400, "invalid_request_error", "model is required", True),
    ("model_empty", "POST", "/v1/messages",
     json.dumps({"model": "", "max_tokens": 10, "messages": USER}).encode(),
     400, "invalid_request_error", "model is required", True),
    ("messages_missing", "POST", "/v1/messages", json.dumps({"model": MODEL, "max_tokens": 10}).encode(),
     400, "invalid_request_error", "messages is required", True),
    ("messages_empty", "POST", "/v1/messages",
     json.dumps({"model": MODEL, "max_tokens": 10, "messages": []}).encode(),
     400, "invalid_request_error", "messages is required", True),
    ("body_too_large", "POST", "/v1/messages", BIG, 413, "request_too_large", "request body too large", True),
    ("beta_query_bad_body", "POST", "/v1/messages?beta=true", b"{oops", 400, "invalid_request_error",
     "invalid request body", True),
    ("count_tokens_not_json", "POST", "/v1/messages/count_tokens", b"{oops", 400, "invalid_request_error",
     "invalid request body", False),
    ("count_tokens_too_large", "POST", "/v1/messages/count_tokens?beta=true", BIG, 413, "request_too_large",
     "request body too large", False),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_then_good_request_succeeds(shared, case):
    _, method, path, body, code, kind, text, has_rid = case
    conn = http.client.HTTPConnection("127.0.0.1", shared.server.port, timeout=10)
    try:
        got, headers, parsed = raw(shared, method, path, body, JSON_CT if body is not None else {}, conn=conn)
        assert got == code
        assert headers["content-type"] == "application/json"
        assert isinstance(parsed, dict), parsed
        assert text in error_shape(parsed, kind)
        if has_rid:
            assert REQ_ID.match(headers["x-request-id"])
        elif path.startswith("/v1/messages") and code == 405:
            assert "x-request-id" not in headers  # refused before a request id is made
        # the same connection (or a fresh one if the server closed it) still works
        got, _, parsed = raw(shared, "POST", "/v1/messages", GOOD, JSON_CT, conn=conn)
        assert got == 200 and parsed["content"][0]["text"] == "fine"
    finally:
        conn.close()
    good_sdk_request(shared)


def test_declared_content_length_over_limit_refused_without_reading_body(shared):
    """A Content-Length above max_request_bytes is refused with 413 at
    once; the server does not wait for the 50 MB that never come."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", shared.server.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 52428800\r\n\r\n{\"model\":")
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    assert time.monotonic() - started < 2
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"application/json" in head.lower()
    error_shape(json.loads(body), "request_too_large")
    good_sdk_request(shared)


def test_chunked_body_over_limit_is_413(shared):
    def chunks():
        for _ in range(5):
            yield b" " * 400
        yield GOOD

    conn = http.client.HTTPConnection("127.0.0.1", shared.server.port, timeout=10)
    try:
        conn.request("POST", "/v1/messages", body=chunks(), headers=JSON_CT, encode_chunked=True)
        resp = conn.getresponse()
        assert resp.status == 413
        error_shape(json.loads(resp.read()), "request_too_large")
    finally:
        conn.close()
    good_sdk_request(shared)


def test_beta_query_on_both_post_routes_via_sdk(shared):
    """The SDK's beta namespace calls ``/v1/messages?beta=true`` and
    ``/v1/messages/count_tokens?beta=true`` (what Claude Code does)."""
    client = anthropic.Anthropic(base_url=shared.url, api_key="unused", max_retries=0, timeout=10)
    msg = client.beta.messages.create(model=MODEL, max_tokens=10, messages=USER, betas=["some-beta-2025"])
    assert msg.content[0].text == "fine"
    count = client.beta.messages.count_tokens(model="x", messages=[{"role": "user", "content": "hello world"}])
    assert count.input_tokens == 10


# -- count_tokens -----------------------------------------------------------------


def test_count_tokens_example_is_10_and_empty_object_is_3(shared):
    client = anthropic.Anthropic(base_url=shared.url, api_key="unused", max_retries=0, timeout=10)
    assert client.messages.count_tokens(model="x", messages=[{"role": "user", "content": "hello world"}]) \
        .input_tokens == 10
    got, headers, body = raw(shared, "POST", "/v1/messages/count_tokens", b"{}", JSON_CT)
    assert got == 200 and headers["content-type"] == "application/json"
    assert body == {"input_tokens": 3, "token_count": 3}
    got, _, body = raw(shared, "POST", "/v1/messages/count_tokens",
                       b'{"model":"x","messages":[{"role":"user","content":"hello world"}]}', JSON_CT)
    assert body == {"input_tokens": 10, "token_count": 10}


# -- client keys ------------------------------------------------------------------


def test_client_api_keys_401_without_or_wrong_key_200_with_either_header(upstream, start_proxy):
    upstream.on(GO_CHAT, json_body(chat_completion("fine")))
    proxy = start_proxy(make_config(upstream, client_api_keys=("client-key-1", "client-key-2"), **FAST))

    def client(**kw):
        return anthropic.Anthropic(base_url=proxy.url, max_retries=0, timeout=10, **kw)

    with pytest.raises(anthropic.AuthenticationError) as info:
        client(api_key="unused").messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert info.value.status_code == 401
    error_shape(info.value.body, "authentication_error")
    assert REQ_ID.match(info.value.response.headers["x-request-id"])
    got, headers, body = raw(proxy, "POST", "/v1/messages", GOOD, JSON_CT)  # no key at all
    assert got == 401 and headers["content-type"] == "application/json"
    error_shape(body, "authentication_error")
    got, _, body = raw(proxy, "POST", "/v1/messages/count_tokens", b"{}", JSON_CT)
    assert got == 401
    assert upstream.calls(GO_CHAT) == []

    assert client(api_key="client-key-2").messages.create(
        model=MODEL, max_tokens=10, messages=USER).content[0].text == "fine"
    assert client(api_key=None, auth_token="client-key-1").messages.create(
        model=MODEL, max_tokens=10, messages=USER).content[0].text == "fine"
    got, _, body = raw(proxy, "POST", "/v1/messages/count_tokens", b"{}",
                       {**JSON_CT, "Authorization": "Bearer client-key-1"})
    assert got == 200 and body["input_tokens"] == 3
    for call in upstream.calls(GO_CHAT):
        assert "client-key" not in json.dumps(call.headers)


# -- rate limit and request id --------------------------------------------------


def test_rate_limit_fourth_request_429_other_client_passes(upstream, start_proxy):
    upstream.on(GO_CHAT, json_body(chat_completion("fine")))
    # the test's own address is a trusted proxy here, so X-Forwarded-For names the client
    proxy = start_proxy(make_config(upstream, rate_limit_per_minute=3, trusted_proxies=("127.0.0.1/32",), **FAST))
    client = anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0, timeout=10,
                                 default_headers={"X-Forwarded-For": "10.0.0.1"})
    for _ in range(3):
        assert client.messages.create(model=MODEL, max_tokens=10, messages=USER).content[0].text == "fine"
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model=MODEL, max_tokens=10, messages=USER,
                               extra_headers={"X-Request-ID": "mine-429"})
    assert info.value.status_code == 429
    assert info.value.body == {"type": "error", "error": {"type": "rate_limit_error", "message": "rate limited"}}
    assert info.value.response.headers["content-type"] == "application/json"
    assert info.value.response.headers["x-request-id"] == "mine-429"
    got, headers, body = raw(proxy, "POST", "/v1/messages", GOOD, {**JSON_CT, "X-Forwarded-For": "10.0.0.1"})
    assert got == 429 and REQ_ID.match(headers["x-request-id"])
    # another client (the right-most entry: the one our trusted proxy saw) has its own window
    other = client.messages.create(model=MODEL, max_tokens=10, messages=USER,
                                   extra_headers={"X-Forwarded-For": "10.0.0.1, 10.0.0.2"})
    assert other.content[0].text == "fine"
    assert len(upstream.calls(GO_CHAT)) == 4
    h = requests.get(proxy.url + "/health", timeout=5).json()["metrics"]
    assert h["rate_limited"] == 2 and h["requests_received"] == 4


def test_request_id_echoed_and_generated(upstream, start_proxy):
    upstream.on(GO_CHAT, json_body(chat_completion("fine")))
    proxy = start_proxy(make_config(upstream, **FAST))
    client = anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0, timeout=10)
    resp = client.messages.with_raw_response.create(model=MODEL, max_tokens=10, messages=USER,
                                                    extra_headers={"X-Request-ID": "trace-abc-123"})
    assert resp.headers["x-request-id"] == "trace-abc-123"
    first = client.messages.with_raw_response.create(model=MODEL, max_tokens=10, messages=USER)
    second = client.messages.with_raw_response.create(model=MODEL, max_tokens=10, messages=USER)
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(REQ_ID.match(i) for i in ids) and ids[0] != ids[1]
    assert int(ids[1].rsplit("-", 1)[1]) > int(ids[0].rsplit("-", 1)[1])
    assert abs(int(ids[0].split("-")[1]) - time.time()) < 60
    _, headers, _ = raw(proxy, "POST", "/v1/messages", b"{}", {**JSON_CT, "X-Request-ID": "bad-1"})
    assert headers["x-request-id"] == "bad-1"


# -- /health, /metrics, /v1/models ---------------------------------------------


def test_health_shape_and_counters_after_success_502_cancel_429(upstream, start_proxy):
    def held(h, rec):
        h.wait_or_peer_close(3, rec)

    upstream.on(GO_CHAT, json_body(chat_completion("fine", model="kimi-k2.6")), status(500), held,
                json_body(chat_completion("fine")))
    proxy = start_proxy(make_config(upstream, rate_limit_per_minute=3, timeout_ms=500))
    client = anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0, timeout=10,
                                 default_headers={"X-Forwarded-For": "10.9.9.9"})

    fresh = requests.get(proxy.url + "/health", timeout=5)
    assert fresh.status_code == 200
    assert fresh.headers["Content-Type"] == "application/json"
    assert fresh.headers["X-Content-Type-Options"] == "nosniff"
    body = fresh.json()
    assert body["status"] == "ok" and body["service"] == "ocproxy"
    assert {"requests_received", "requests_success", "requests_failed", "requests_streamed", "upstream_calls",
            "rate_limited", "deduplicated", "p95_latency_ms", "p99_latency_ms"} <= set(body["metrics"])
    assert all(v == 0 for k, v in body["metrics"].items() if k != "streams_open")
    assert body["circuit_breakers"] == {} and body["models"] == {}

    client.messages.create(model=MODEL, max_tokens=10, messages=USER)  # success
    with pytest.raises(anthropic.InternalServerError):  # 500 then the chain [kimi-k2.6] ... exhausted
        client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    # cancellation: the client leaves while the only attempt is held upstream
    sock = socket.create_connection(("127.0.0.1", proxy.server.port))
    sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"X-Forwarded-For: 10.9.9.9\r\nContent-Length: %d\r\n\r\n%s" % (len(GOOD), GOOD))
    deadline = time.monotonic() + 3
    while len(upstream.calls(GO_CHAT)) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    sock.close()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        m = requests.get(proxy.url + "/health", timeout=5).json()["metrics"]
        if m["client_cancelled"]:
            break
        time.sleep(0.05)
    with pytest.raises(anthropic.RateLimitError):  # limit 3: success, 502, cancelled, then 429
        client.messages.create(model=MODEL, max_tokens=10, messages=USER)

    h = requests.get(proxy.url + "/health", timeout=5).json()
    m = h["metrics"]
    assert m["requests_received"] == 3
    assert m["requests_success"] == 1 and m["upstream_calls"] == 1
    assert m["requests_failed"] == 1
    assert m["client_cancelled"] == 1
    assert m["rate_limited"] == 1
    assert m["requests_streamed"] == 0 and m["deduplicated"] == 0
    assert isinstance(m["p95_latency_ms"], int) and isinstance(m["p99_latency_ms"], int)
    assert h["models"] == {"kimi-k2.6": 1}
    assert h["circuit_breakers"] == {"kimi-k2.6": "closed"}
    assert API_KEY not in json.dumps(h)


def test_models_configured_names_overrides_win_paging_post_405(upstream, start_proxy):
    cfg = make_config(
        upstream, **FAST,
        models={"default": ModelConfig(model_id="kimi-k2.6"), "think": ModelConfig(model_id="glm-5.1"),
                "claude-sonnet-4-6": ModelConfig(model_id="glm-5.1")},
        model_overrides={"claude-sonnet-4-6": ModelConfig(provider="opencode_zen", model_id="claude-sonnet-4-6"),
                         "big-pickle": ModelConfig(provider="opencode-zen", model_id="big-pickle")},
    )
    proxy = start_proxy(cfg)
    # a cursor that names no listed model is refused, not silently restarted (#15)
    resp = requests.get(proxy.url + "/v1/models?limit=1&after_id=zzz", timeout=5)
    assert resp.status_code == 400 and resp.headers["Content-Type"] == "application/json"
    assert "zzz" in error_shape(resp.json(), "invalid_request_error")
    body = requests.get(proxy.url + "/v1/models?limit=1000", timeout=5).json()
    assert body["object"] == "list" and body["has_more"] is False
    ids = [d["id"] for d in body["data"]]
    configured = [i for i in ids if i in ("big-pickle", "claude-sonnet-4-6", "default", "think")]
    assert configured == ["big-pickle", "claude-sonnet-4-6", "default", "think"]
    owners = {d["id"]: d["owned_by"] for d in body["data"]}
    assert {i: owners[i] for i in configured} == {"big-pickle": "opencode-zen", "claude-sonnet-4-6": "opencode-zen",
                                                 "default": "opencode-go", "think": "opencode-go"}
    names = {d["id"]: d["display_name"] for d in body["data"]}
    assert names["default"] == "Kimi K2.6 (OpenCode Go)"
    assert names["claude-sonnet-4-6"] == "Claude Sonnet 4.6 (OpenCode Zen)"  # the override's model
    for d in body["data"]:
        assert d["type"] == "model" and d["created_at"] == "1970-01-01T00:00:00Z"
    client = anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0, timeout=10)
    assert [m.id for m in client.models.list()] == ids  # the SDK pages through 20 at a time
    got, headers, err = raw(proxy, "POST", "/v1/models", b"{}", JSON_CT)
    assert got == 405 and headers["content-type"] == "application/json"
    error_shape(err, "invalid_request_error")


def test_metrics_is_prometheus_text(upstream, start_proxy):
    upstream.on(GO_CHAT, json_body(chat_completion("fine")))
    proxy = start_proxy(make_config(upstream, **FAST))
    anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0, timeout=10).messages.create(
        model=MODEL, max_tokens=10, messages=USER)
    resp = requests.get(proxy.url + "/metrics", timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = resp.text
    assert "# TYPE ocproxy_requests_received_total counter" in text
    # prometheus_client writes every value as a float
    assert re.search(r"^ocproxy_requests_received_total 1\.0$", text, re.M)
    assert re.search(r'^ocproxy_model_success_total\{model="kimi-k2.6"\} 1\.0$', text, re.M)
    for line in text.splitlines():  # every line is a comment or "name{labels} value"
        assert line.startswith("#") or re.match(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eEinfNa]+$", line), line
    assert API_KEY not in text


def test_upstream_keys_absent_from_every_surface(upstream, start_proxy):
    keys = ("sk-pool-key-aaaa-1111", "sk-pool-key-bbbb-2222")
    leak = {"error": {"message": f"bad key {keys[0]} {keys[1]} {API_KEY}"}}
    upstream.on(GO_CHAT, status(403, leak))
    proxy = start_proxy(make_config(upstream, api_keys=keys, **FAST, **chain("model-a", "model-b")))
    client = anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0, timeout=10)
    with pytest.raises(anthropic.AuthenticationError) as info:  # every key refused: 401, quoting the upstream
        client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    surfaces = [info.value.response.text,
                requests.get(proxy.url + "/health", timeout=5).text,
                requests.get(proxy.url + "/metrics", timeout=5).text,
                requests.get(proxy.url + "/v1/models", timeout=5).text,
                raw(proxy, "POST", "/v1/messages", b"{", JSON_CT)[2]["error"]["message"]]
    for text in surfaces:
        for key in (*keys, API_KEY):
            assert key not in text


def test_routing_error_500_routing_failed_not_counted_as_failure(upstream, start_proxy):
    proxy = start_proxy(make_config(upstream, models={}, **FAST))  # no default model: routing cannot work
    client = anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0, timeout=10)
    with pytest.raises(anthropic.InternalServerError) as info:
        client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert info.value.status_code == 500
    assert info.value.body == {"type": "error", "error": {"type": "api_error", "message": "routing failed"}}
    assert info.value.response.headers["content-type"] == "application/json"
    assert REQ_ID.match(info.value.response.headers["x-request-id"])
    assert upstream.calls() == []
    m = requests.get(proxy.url + "/health", timeout=5).json()["metrics"]
    assert m["requests_received"] == 1 and m["requests_failed"] == 0


def test_client_api_keys_either_header_may_carry_the_key(upstream, start_proxy):
    """Every request must carry a client key in x-api-key or Authorization:
    Bearer. A client sending both headers (Claude Code with
    ANTHROPIC_AUTH_TOKEN plus a stray x-api-key) passes when either is valid."""
    upstream.on(GO_CHAT, json_body(chat_completion("fine")))
    proxy = start_proxy(make_config(upstream, client_api_keys=("client-key-1",), **FAST))
    both = anthropic.Anthropic(base_url=proxy.url, api_key=None, auth_token="client-key-1", max_retries=0,
                               timeout=10, default_headers={"x-api-key": "unused"})
    assert both.messages.create(model=MODEL, max_tokens=10, messages=USER).content[0].text == "fine"
    got, _, _ = raw(proxy, "POST", "/v1/messages", GOOD,
                    {**JSON_CT, "x-api-key": "client-key-1", "Authorization": "Bearer nope"})
    assert got == 200
    got, _, body = raw(proxy, "POST", "/v1/messages", GOOD,
                       {**JSON_CT, "x-api-key": "nope", "Authorization": "Bearer also-nope"})
    assert got == 401
    error_shape(body, "authentication_error")
