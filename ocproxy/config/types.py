"""The typed configuration: frozen dataclasses, each default written once.

Code below the app layer only ever sees these objects, never the raw dicts
from the file. A ``Config`` is immutable, so a hot reload swaps the whole
object and a request keeps the one it started with.

The field defaults here are the only place a default value is written: the
loader fills unset values from them and the ``init`` template copies them.
This module imports nothing heavy (no jsonschema, no loader), so the
translators can use it on their own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from ocproxy.catalog import GO, ZEN

#: Also the fallback for a timeout set to zero or less on a hand-built config.
DEFAULT_TIMEOUT_MS = 300_000
#: Also the fallback for a heartbeat interval of zero or less.
DEFAULT_HEARTBEAT_MS = 3000
#: How long a stream may wait for its first payload byte (headers included);
#: thinking models stream reasoning early, so a minute of silence means stuck.
DEFAULT_FIRST_BYTE_MS = 60_000
#: The string values of a model's ``thinking`` setting: each forces thinking
#: off, on, or on at that effort, whatever the client asked.
THINKING_MODES = ("off", "on", "low", "medium", "high", "max")


@dataclass(frozen=True)
class ModelConfig:
    """One entry of ``models``, ``fallbacks[*]`` or ``model_overrides``.

    ``temperature``/``max_tokens``/``context_threshold`` of 0 mean "not set".
    """

    provider: str = GO
    model_id: str = ""
    temperature: float = 0.0
    max_tokens: int = 0
    context_threshold: int = 0
    reasoning_effort: str = ""
    #: an object (the legacy form, a default) or one of ``THINKING_MODES``
    thinking: Mapping | str | None = None
    vision: bool = False
    #: a chat upstream that takes PDFs as OpenAI ``file`` parts; other chat
    #: models get the PDF's extracted text
    pdf: bool = False
    anthropic_tools_disabled: bool = False
    endpoint: str | None = None  # overrides the catalog's choice of API
    #: streams only, read from the scenario's entry: with no payload byte by
    #: then, the chain's next model starts too (0: off)
    hedge_after_ms: int = 0

    @property
    def is_zen(self) -> bool:
        return self.provider == ZEN


@dataclass(frozen=True)
class ProviderConfig:
    """An OpenCode provider block (``opencode_go`` / ``opencode_zen``)."""

    base_url: str
    anthropic_base_url: str
    responses_base_url: str = ""
    gemini_base_url: str = ""
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    streaming_timeout_ms: int = 0
    stream_timeout_ms: int = 0
    first_byte_timeout_ms: int = DEFAULT_FIRST_BYTE_MS
    #: the User-Agent sent upstream ("": ocproxy/<version>)
    user_agent: str = ""

    def _or_default(self, *values: int) -> float:
        for v in values:
            if v and v > 0:
                return v / 1000.0
        return DEFAULT_TIMEOUT_MS / 1000.0

    @property
    def request_timeout(self) -> float:
        """Seconds for one non-streaming attempt."""
        return self._or_default(self.timeout_ms)

    @property
    def streaming_timeout(self) -> float:
        """Seconds for one whole streaming attempt."""
        return self._or_default(self.streaming_timeout_ms, self.timeout_ms)

    @property
    def stream_idle_timeout(self) -> float:
        """Largest silent gap, in seconds, between two upstream reads."""
        return self._or_default(self.stream_timeout_ms, self.timeout_ms)

    @property
    def first_byte_timeout(self) -> float:
        """Seconds a stream may wait for its first payload byte: never more
        than the idle limit, which also bounds every silent gap."""
        ms = self.first_byte_timeout_ms if self.first_byte_timeout_ms > 0 else DEFAULT_FIRST_BYTE_MS
        return min(ms / 1000.0, self.stream_idle_timeout)


DEFAULT_GO = ProviderConfig(
    base_url="https://opencode.ai/zen/go/v1/chat/completions",
    anthropic_base_url="https://opencode.ai/zen/go/v1/messages",
    responses_base_url="https://opencode.ai/zen/go/v1/responses",
)
DEFAULT_ZEN = ProviderConfig(
    base_url="https://opencode.ai/zen/v1/chat/completions",
    anthropic_base_url="https://opencode.ai/zen/v1/messages",
    responses_base_url="https://opencode.ai/zen/v1/responses",
    gemini_base_url="https://opencode.ai/zen/v1/models",
)

_EMPTY: Mapping = MappingProxyType({})

#: Concurrent client connections ``ocproxy serve`` holds (each one thread,
#: plus an upstream socket while it streams): room for 1,000 open streams
#: and their clients' idle keep-alive connections.
DEFAULT_MAX_CONNECTIONS = 1024
#: The longest a client may take to send one whole request, headers and body.
DEFAULT_REQUEST_READ_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class ClientKey:
    """One entry of ``client_api_keys``: the name logs, metrics and rate
    limits use, never the key itself."""

    name: str
    key: str = field(repr=False)

    @classmethod
    def of(cls, entry: "str | ClientKey") -> "ClientKey":
        """A plain string key gets a name from its hash: stable across
        reloads, and it says nothing usable about the key."""
        if isinstance(entry, ClientKey):
            return entry
        return cls("key-" + hashlib.sha256(entry.encode("utf-8")).hexdigest()[:8], entry)


@dataclass(frozen=True)
class StateConfig:
    """Where breakers, rate-limit windows and key-rotation counters live:
    ``memory`` (this process) or ``redis`` (shared by every worker and host
    using ``url``, under keys starting with ``prefix``)."""

    backend: str = "memory"
    url: str = ""
    prefix: str = "ocproxy:"


@dataclass(frozen=True)
class Config:
    api_key: str = ""
    api_keys: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 3456
    hot_reload: bool = False
    enable_streaming_scenario_routing: bool = False
    respect_requested_model: bool = True  # absent in the file reads as true
    # default_factory: Python 3.11 refuses an unhashable (mappingproxy) default
    models: Mapping[str, ModelConfig] = field(default_factory=lambda: _EMPTY)
    fallbacks: Mapping[str, tuple[ModelConfig, ...]] = field(default_factory=lambda: _EMPTY)
    model_overrides: Mapping[str, ModelConfig] = field(default_factory=lambda: _EMPTY)
    #: family keyword (case-insensitive substring of the requested name, such
    #: as "haiku") -> the model for it: a ``models`` key or catalog id, or a
    #: whole entry (routatic-proxy's form)
    model_family_overrides: Mapping[str, "str | ModelConfig"] = field(default_factory=lambda: _EMPTY)
    opencode_go: ProviderConfig = DEFAULT_GO
    opencode_zen: ProviderConfig = DEFAULT_ZEN
    log_level: str = "info"
    log_requests: bool = False
    # settings the original Go proxy did not have
    heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_MS
    breaker_threshold: int = 3
    breaker_recovery_ms: int = 30_000
    max_request_bytes: int = 33_554_432
    rate_limit_per_minute: int = 0
    #: plain strings given here are turned into ClientKey (see __post_init__)
    client_api_keys: tuple[ClientKey, ...] = ()
    #: peers (CIDRs) whose X-Forwarded-For names the client
    trusted_proxies: tuple[str, ...] = ()
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    request_read_timeout_ms: int = DEFAULT_REQUEST_READ_TIMEOUT_MS
    state: StateConfig = StateConfig()
    #: the usage ledger; "" (a hand-built config) keeps none, the loader
    #: fills in the path beside the config file
    usage_enabled: bool = True
    usage_database_path: str = ""
    usage_retention_days: int = 90
    #: OpenCode Go's usage windows, polled with the Go key; "" polls nothing
    quota_url: str = ""
    #: above this percentage of a Go window, Go models are skipped (0: never)
    quota_switch_at_percent: float = 0.0
    #: debug capture of upstream request/response pairs; "" captures nothing
    capture_dir: str = ""
    capture_max_bytes: int = 10_000_000
    capture_backups: int = 3
    #: provider -> the ids its model list named at the last
    #: ``ocproxy models --refresh`` (empty: never refreshed)
    listed_models: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _EMPTY)
    #: the file this config came from (None: built-in defaults)
    source_path: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "client_api_keys", tuple(ClientKey.of(k) for k in self.client_api_keys))

    def listed_provider(self, model_id: str) -> str | None:
        """The provider whose refreshed model list names ``model_id`` (Go
        first, as in the catalog); None when no list does."""
        return next((p for p in (GO, ZEN) if model_id in self.listed_models.get(p, ())), None)

    def provider(self, model: ModelConfig) -> ProviderConfig:
        return self.opencode_zen if model.is_zen else self.opencode_go

    @property
    def request_read_timeout(self) -> float:
        ms = self.request_read_timeout_ms if self.request_read_timeout_ms > 0 else DEFAULT_REQUEST_READ_TIMEOUT_MS
        return ms / 1000.0

    @property
    def key_pool(self) -> tuple[str, ...]:
        """The keys to rotate through: ``api_keys`` when set, else ``api_key`` alone."""
        return self.api_keys or (self.api_key,)

    @property
    def heartbeat_interval(self) -> float:
        ms = self.heartbeat_interval_ms if self.heartbeat_interval_ms > 0 else DEFAULT_HEARTBEAT_MS
        return ms / 1000.0


#: The built-in value of every setting; the loader fills unset values from it.
DEFAULTS = Config()
