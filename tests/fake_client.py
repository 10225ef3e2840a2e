"""A fake for ``UpstreamClient`` at the transport seam (``post`` /
``open_stream``), and a config whose providers it stands in for."""

from __future__ import annotations

import json
import threading

from ocproxy.config import Config, ModelConfig, ProviderConfig
from tests.fakes import chat_completion

GO_CHAT = "http://go.invalid/v1/chat/completions"


class FakeUpstreamClient:
    """Stands in for ``UpstreamClient`` at the transport seam: each model id
    gets a queue of answers (bytes, a list of stream chunks, or an exception
    to raise); the last answer repeats."""

    def __init__(self, **answers):
        self.answers = {k.replace("_", "-"): list(v) for k, v in answers.items()}
        self.calls: list[tuple[str, dict, dict]] = []  # (url, headers, json body)
        self.closed_streams = 0
        self._lock = threading.Lock()  # guards calls and closed_streams: a stream's pump thread appends

    def _next(self, url, headers, body):
        request = json.loads(body)
        with self._lock:
            self.calls.append((url, headers, request))
        queue = self.answers[request["model"]]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def post(self, url, headers, body, attempt):
        return self._next(url, headers, body)

    def open_stream(self, url, headers, body, attempt):
        return _FakeStream(self, self._next(url, headers, body))

    def close(self):
        pass

    @property
    def models(self):
        return [request["model"] for _, _, request in self.calls]


class _FakeStream:
    def __init__(self, owner, chunks):
        self._owner, self._chunks = owner, chunks

    def __iter__(self):
        for chunk in self._chunks:
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk

    def close(self):
        with self._owner._lock:
            self._owner.closed_streams += 1


def sse_chunks(*parts) -> list[bytes]:
    return [b"data: " + (p.encode() if isinstance(p, str) else json.dumps(p).encode()) + b"\n\n" for p in parts]


def completion(text: str) -> bytes:
    return json.dumps(chat_completion(text)).encode()


def config(*models: str, **overrides) -> Config:
    first, *rest = [ModelConfig(model_id=m) for m in models or ("model-a",)]
    provider = ProviderConfig(base_url=GO_CHAT, anthropic_base_url="http://go.invalid/v1/messages", timeout_ms=2000)
    base = dict(api_key="sk-upstream", models={"default": first, "fast": first},
                fallbacks={"default": tuple(rest), "fast": tuple(rest)}, opencode_go=provider,
                opencode_zen=provider, respect_requested_model=False, heartbeat_interval_ms=60_000)
    base.update(overrides)
    return Config(**base)
