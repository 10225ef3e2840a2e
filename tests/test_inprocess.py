"""The application in process: werkzeug's test client in front, a fake
upstream client behind (``ProxyApp(config, client=...)``). No socket, no
thread of our own; what only sockets show stays in the e2e suites."""

from __future__ import annotations

import io
import json

import pytest
from werkzeug.test import Client

from ocproxy.app import ProxyApp
from ocproxy.config import Config
from ocproxy.errors import UpstreamConnectionError, UpstreamHTTPError
from tests.fake_client import GO_CHAT, FakeUpstreamClient, completion, config, sse_chunks
from tests.fakes import chat_text_chunks
from tests.sseclient import parse_frames

MODEL = "claude-sonnet-4-6"
USER = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def make():
    apps: list[ProxyApp] = []

    def build(fake: FakeUpstreamClient, cfg: Config | None = None) -> Client:
        app = ProxyApp(cfg or config("model-a", "model-b"), client=fake)
        apps.append(app)
        return Client(app)

    yield build
    for app in apps:
        app.close()


def messages(client: Client, stream: bool = False, **kwargs):
    body = {"model": MODEL, "max_tokens": 10, "messages": USER, **({"stream": True} if stream else {})}
    return client.post("/v1/messages", json=body, **kwargs)


def error_of(resp) -> tuple[str, str]:
    body = resp.get_json()
    assert body["type"] == "error"
    return body["error"]["type"], body["error"]["message"]


# -- routes, auth, limits -------------------------------------------------------


@pytest.mark.parametrize("method, path, status, allow", [
    ("GET", "/v1/messages", 405, "POST"),
    ("PUT", "/v1/messages/count_tokens", 405, "POST"),
    ("POST", "/v1/models", 405, "GET, HEAD"),
    ("DELETE", "/metrics", 405, "GET, HEAD"),
    ("GET", "/v1/messages/", 404, None),
    ("GET", "//health", 404, None),
    ("POST", "/nothing", 404, None),
])
def test_unknown_routes_404_and_wrong_methods_405_with_allow(make, method, path, status, allow):
    resp = make(FakeUpstreamClient()).open(path, method=method)
    assert resp.status_code == status
    assert error_of(resp)[0] == ("not_found_error" if status == 404 else "invalid_request_error")
    assert resp.headers.get("Allow") == allow
    assert "X-Request-ID" not in resp.headers


def test_health_answers_any_method_and_head_has_no_body(make):
    client = make(FakeUpstreamClient())
    for method in ("GET", "POST", "DELETE"):
        resp = client.open("/health", method=method)
        assert resp.status_code == 200 and resp.get_json()["status"] == "ok"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    head = client.head("/v1/models")
    assert head.status_code == 200 and head.data == b""


def test_models_and_count_tokens(make):
    client = make(FakeUpstreamClient())
    listing = client.get("/v1/models").get_json()
    ids = [m["id"] for m in listing["data"]]
    assert listing["object"] == "list" and len(ids) == 20 and listing["has_more"] is True  # Anthropic's page size
    ids = [m["id"] for m in client.get("/v1/models?limit=1000").get_json()["data"]]
    assert [i for i in ids if not i.startswith("claude-")][:2] == ["default", "fast"]
    counted = client.post("/v1/messages/count_tokens", json={"model": MODEL, "messages": USER}).get_json()
    assert counted["input_tokens"] == counted["token_count"] > 0


def test_client_keys_are_checked_on_messages_and_count_tokens(make):
    fake = FakeUpstreamClient(model_a=[completion("hi")])
    client = make(fake, config("model-a", client_api_keys=("k1",)))
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        resp = client.post(path, json={"model": MODEL, "max_tokens": 10, "messages": USER})
        assert resp.status_code == 401 and error_of(resp)[0] == "authentication_error"
    assert messages(client, headers={"x-api-key": "k1"}).status_code == 200
    assert messages(client, headers={"Authorization": "Bearer k1", "x-api-key": "nope"}).status_code == 200
    assert fake.models == ["model-a", "model-a"]


def test_rate_limit_429_and_counted(make):
    client = make(FakeUpstreamClient(model_a=[completion("hi")]), config("model-a", rate_limit_per_minute=1))
    assert messages(client).status_code == 200
    resp = messages(client)
    assert resp.status_code == 429 and error_of(resp) == ("rate_limit_error", "rate limited")
    assert client.get("/health").get_json()["metrics"]["rate_limited"] == 1


@pytest.mark.parametrize("body, environ, status, text", [
    (b"{not json", {}, 400, "invalid request body"),
    (b"x" * 2000, {}, 413, "request body too large"),
    (b"{}", {"CONTENT_LENGTH": "1e3"}, 400, "invalid Content-Length"),
    (b"{}", {"CONTENT_LENGTH": "50"}, 400, "request body shorter than Content-Length"),
])
def test_bad_bodies(make, body, environ, status, text):
    client = make(FakeUpstreamClient(), config("model-a", max_request_bytes=1000))
    resp = client.post("/v1/messages", data=body, headers={"Content-Type": "application/json"},
                       environ_overrides=environ)
    assert resp.status_code == status
    assert text in error_of(resp)[1]
    assert resp.headers["X-Request-ID"].startswith("req-")


def test_chunked_body_past_the_limit_is_413_and_at_the_limit_is_read(make):
    client = make(FakeUpstreamClient(model_a=[completion("hi")]), config("model-a", max_request_bytes=1000))

    def send(body: bytes):
        return client.post("/v1/messages", input_stream=io.BytesIO(body),
                           headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})

    good = json.dumps({"model": MODEL, "max_tokens": 10, "messages": USER}).encode()
    padded = good[:-1] + b" " * (1000 - len(good)) + b"}"
    assert len(padded) == 1000 and send(padded).status_code == 200
    assert send(padded + b" ").status_code == 413


# -- whole answers -----------------------------------------------------------------


def test_whole_answer_is_translated_and_carries_the_session(make):
    fake = FakeUpstreamClient(model_a=[completion("hello there")])
    client = make(fake)
    resp = messages(client, headers={"x-claude-code-session-id": "sess-1"})
    assert resp.status_code == 200 and resp.content_type == "application/json"
    body = resp.get_json()
    assert body["type"] == "message" and body["content"][0]["text"] == "hello there"
    url, headers, request = fake.calls[0]
    assert url == GO_CHAT and request["model"] == "model-a"
    assert headers["x-opencode-session"] == "sess-1" and headers["Authorization"] == "Bearer sk-upstream"
    m = client.get("/health").get_json()["metrics"]
    assert m["requests_success"] == m["upstream_calls"] == 1 and m["fallbacks"] == 0


def test_whole_answer_falls_back_and_charges_only_retryable_failures(make):
    fake = FakeUpstreamClient(model_a=[UpstreamHTTPError(500, "boom")], model_b=[completion("from b")])
    client = make(fake, config("model-a", "model-b", breaker_threshold=1))
    resp = messages(client)
    assert resp.status_code == 200 and resp.get_json()["content"][0]["text"] == "from b"
    assert fake.models == ["model-a", "model-b"]
    health = client.get("/health").get_json()
    assert health["circuit_breakers"] == {"model-a": "open", "model-b": "closed"}
    assert health["metrics"]["fallbacks"] == 1


def test_every_model_failing_is_502_and_resets_the_breakers(make):
    fake = FakeUpstreamClient(model_a=[UpstreamConnectionError("connection refused")],
                              model_b=[UpstreamHTTPError(404, "no such model")])
    client = make(fake, config("model-a", "model-b", breaker_threshold=1))
    resp = messages(client)
    assert resp.status_code == 502 and error_of(resp) == (
        "api_error", "all models failed: model-a: connection failed; model-b: 404 no such model")
    health = client.get("/health").get_json()
    assert set(health["circuit_breakers"].values()) == {"closed"}
    assert health["metrics"]["requests_failed"] == 1


# -- streams ----------------------------------------------------------------------


def events_of(resp) -> list[dict]:
    frames = parse_frames(resp.get_data())
    resp.close()
    return [json.loads(f.split(b"\n")[1][6:]) for f in frames if f != b":keepalive"]


def test_streamed_answer_is_translated_frame_by_frame(make):
    fake = FakeUpstreamClient(model_a=[sse_chunks(*chat_text_chunks(["Hel", "lo"]))])
    client = make(fake)
    resp = messages(client, stream=True)
    assert resp.status_code == 200 and resp.mimetype == "text/event-stream"
    events = events_of(resp)
    assert [e["type"] for e in events][0] == "message_start" and events[-1]["type"] == "message_stop"
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert text == "Hello"
    assert fake.calls[0][1]["Accept"] == "text/event-stream" and fake.closed_streams == 1
    assert client.get("/health").get_json()["metrics"]["requests_streamed"] == 1


def test_stream_falls_back_before_payload_and_charges_the_breaker(make):
    fake = FakeUpstreamClient(model_a=[UpstreamHTTPError(503, "busy")],
                              model_b=[sse_chunks(*chat_text_chunks(["B"]))])
    client = make(fake, config("model-a", "model-b", breaker_threshold=1))
    events = events_of(messages(client, stream=True))
    assert [e["type"] for e in events].count("message_start") == 1
    assert fake.models == ["model-a", "model-b"]
    assert client.get("/health").get_json()["circuit_breakers"] == {"model-a": "open", "model-b": "closed"}


def test_stream_broken_after_payload_ends_with_one_error_and_no_fallback(make):
    broken = sse_chunks(*chat_text_chunks(["partial"])[:2]) + [UpstreamConnectionError("reset")]
    fake = FakeUpstreamClient(model_a=[broken], model_b=[sse_chunks(*chat_text_chunks(["B"]))])
    client = make(fake)
    events = events_of(messages(client, stream=True))
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "error"
    assert events[-1]["error"]["message"] == "all upstream models failed after SSE payload started"
    assert fake.models == ["model-a"]


def test_stream_with_every_model_failing_is_the_same_502_as_a_whole_answer(make):
    # Nothing reached the client yet, so the stream's headers carry the
    # failure: the status a non-streaming request gets, with a JSON body.
    fake = FakeUpstreamClient(model_a=[UpstreamHTTPError(500, "x")], model_b=[UpstreamHTTPError(500, "y")])
    resp = messages(make(fake), stream=True)
    assert resp.status_code == 502 and resp.headers["Content-Type"] == "application/json"
    assert resp.get_json()["error"] == {"type": "api_error",
                                        "message": "all upstream models failed: model-a: 500 x; model-b: 500 y"}
