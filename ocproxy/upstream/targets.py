"""Where one chain entry goes: its endpoint kind, URL and dialect, resolved once.

The relay asks for a model's ``Target`` once per chain entry instead of
re-deriving the endpoint, URL and conversions for every attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocproxy.catalog import ANTHROPIC, CHAT, RESPONSES, catalog_endpoint
from ocproxy.config.types import Config, ModelConfig, ProviderConfig
from ocproxy.translate.dialects import DIALECTS, Dialect


def endpoint_for(model: ModelConfig) -> str:
    """The endpoint kind (API) one attempt on ``model`` uses.

    Order: the catalog, then the model's ``endpoint`` setting, then
    ``anthropic_tools_disabled``, which turns anthropic into chat on the same
    provider -- it wins even over an explicit ``endpoint: "anthropic"``,
    because the flag says the upstream cannot take Anthropic tool format.
    """
    kind = model.endpoint or catalog_endpoint(model.provider, model.model_id)
    if kind == ANTHROPIC and model.anthropic_tools_disabled:
        return CHAT
    return kind


def endpoint_url(config: Config, model: ModelConfig) -> str:
    """Upstream URL for the model's endpoint kind.

    URLs are used exactly as configured; only Gemini gets ``/<model_id>``
    appended (the dialect adds ``:generateContent`` or
    ``:streamGenerateContent?alt=sse``). A trailing ``/`` on the Gemini base
    is dropped so the join never produces ``//``.
    """
    provider = config.provider(model)
    kind = endpoint_for(model)
    if kind == CHAT:
        return provider.base_url
    if kind == ANTHROPIC:
        return provider.anthropic_base_url
    if kind == RESPONSES:
        url = provider.responses_base_url
    else:
        url = provider.gemini_base_url.rstrip("/")
        url = url and f"{url}/{model.model_id}"
    if not url:
        # The loader rejects gemini on Go models (and Go has a responses URL); a hand-built
        # config can still get here, and a clear error beats a request to "".
        raise ValueError(f"provider {model.provider} has no {kind} URL configured")
    return url


@dataclass(frozen=True)
class Target:
    model: ModelConfig
    provider: ProviderConfig
    endpoint: str  # "chat" | "anthropic" | "responses" | "gemini"
    base_url: str  # the endpoint's URL before any stream-dependent suffix
    dialect: Dialect

    def url(self, stream: bool) -> str:
        return self.base_url + self.dialect.url_suffix(stream)


def resolve(config: Config, model: ModelConfig) -> Target:
    """The target of ``model`` under ``config``; ``ValueError`` when its
    provider has no URL for the model's endpoint."""
    endpoint = endpoint_for(model)
    return Target(model, config.provider(model), endpoint, endpoint_url(config, model), DIALECTS[endpoint])
