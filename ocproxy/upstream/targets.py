"""Where one chain entry goes: its endpoint kind, URL and dialect, resolved once.

The relay asks for a model's ``Target`` once per chain entry instead of
re-deriving the endpoint, URL and conversions for every attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocproxy import catalog
from ocproxy.config import Config, ModelConfig, ProviderConfig
from ocproxy.translate.dialects import DIALECTS, Dialect


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
    endpoint = catalog.endpoint_for(model)
    return Target(model, config.provider(model), endpoint, catalog.endpoint_url(config, model), DIALECTS[endpoint])
