"""Shared fixtures: a fake upstream on a real socket and the real proxy
server (werkzeug, threaded) on a free port, pointed at it."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from ocproxy.config import Config, ModelConfig, ProviderConfig
from ocproxy.reload import ConfigHolder
from ocproxy.server import Server
from tests.fakes import FakeUpstream
from tests.redis_server import redis_server  # noqa: F401  (a fixture: a real redis-server)

API_KEY = "sk-upstream-secret-0123456789"

GO_CHAT = "/go/v1/chat/completions"
GO_MESSAGES = "/go/v1/messages"
ZEN_CHAT = "/zen/v1/chat/completions"
ZEN_MESSAGES = "/zen/v1/messages"
ZEN_RESPONSES = "/zen/v1/responses"
ZEN_MODELS = "/zen/v1/models"


def make_config(upstream: FakeUpstream, *, timeout_ms=10_000, streaming_timeout_ms=0, stream_timeout_ms=0,
                **overrides) -> Config:
    go = ProviderConfig(
        base_url=upstream.url(GO_CHAT),
        anthropic_base_url=upstream.url(GO_MESSAGES),
        timeout_ms=timeout_ms,
        streaming_timeout_ms=streaming_timeout_ms,
        stream_timeout_ms=stream_timeout_ms,
    )
    zen = ProviderConfig(
        base_url=upstream.url(ZEN_CHAT),
        anthropic_base_url=upstream.url(ZEN_MESSAGES),
        responses_base_url=upstream.url(ZEN_RESPONSES),
        gemini_base_url=upstream.url(ZEN_MODELS),
        timeout_ms=timeout_ms,
        streaming_timeout_ms=streaming_timeout_ms,
        stream_timeout_ms=stream_timeout_ms,
    )
    base = dict(
        api_key=API_KEY,
        port=0,
        respect_requested_model=False,
        models={"default": ModelConfig(model_id="kimi-k2.6"), "fast": ModelConfig(model_id="kimi-k2.6")},
        opencode_go=go,
        opencode_zen=zen,
        heartbeat_interval_ms=100,
    )
    base.update(overrides)
    return Config(**base)


def chain(*ids: str, provider: str = "opencode-go") -> dict:
    """Config overrides making ``ids`` the default and streaming chain."""
    first, *rest = [ModelConfig(provider=provider, model_id=i) for i in ids]
    return dict(
        models={"default": first, "fast": first},
        fallbacks={"default": tuple(rest), "fast": tuple(rest)},
    )


class RunningProxy:
    def __init__(self, config: Config):
        self.holder = ConfigHolder(config)
        self.server = Server(self.holder)
        self.app = self.server.app
        self.url = f"http://127.0.0.1:{self.server.port}"
        self._thread = threading.Thread(target=self.server.serve, daemon=True)
        self._thread.start()

    def stop(self, grace: float = 1.0):
        self.server.request_stop()
        self._thread.join(10)
        self.server.drain(grace)


@pytest.fixture
def upstream():
    fake = FakeUpstream()
    yield fake
    fake.close()


@pytest.fixture
def procs(tmp_path):
    """Subprocesses a test starts (CLI servers, WSGI hosts); all killed after it."""
    from tests.procs import Procs

    owner = Procs(tmp_path)
    yield owner
    owner.cleanup()


@pytest.fixture
def start_proxy():
    running: list[RunningProxy] = []

    def start(config: Config) -> RunningProxy:
        proxy = RunningProxy(config)
        running.append(proxy)
        return proxy

    yield start
    for proxy in running:
        proxy.stop()


@pytest.fixture
def sdk():
    """The official anthropic SDK pointed at a proxy URL."""
    import anthropic

    def make(proxy: RunningProxy, **kwargs):
        return anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0,
                                   timeout=kwargs.pop("timeout", 30.0), **kwargs)

    return make


def replace(config: Config, **changes) -> Config:
    return dataclasses.replace(config, **changes)
