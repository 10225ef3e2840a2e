"""Model chain building: which models a request tries, in order.

A request's chain is the ordered list of models the fallback loop tries:
primary first, then fallbacks. Three sources, first that applies wins:
a ``model_overrides`` entry for the requested name, the requested name
itself (``respect_requested_model``), or scenario routing.

Only the override path de-duplicates; the other chains are used exactly as
configured, so a model listed twice is tried twice (the Go behaviour).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import tokens
from ..config import GO, Config, ModelConfig
from ..request import MessagesRequest
from .scenarios import detect_scenario

# Claude Code appends context-window hints to model names ("opus[1m]"); they
# are not part of any configured name.
CONTEXT_SUFFIXES = ("[1m]", "[256k]", "[128k]")


class RoutingError(Exception):
    """No usable model is configured for this request (answered as 500
    "routing failed"; the message goes to the log)."""


class RoutingCount:
    """A request's routing token count, counted the first time it is read.

    Scenario routing needs it (long context), so it is counted there; a
    client-chosen model does not, and then only the ``tokens=`` log line
    reads it — lazily, as logging formats ``%d`` arguments (``__index__``)
    only for a record it emits.
    """

    def __init__(self, req: MessagesRequest, known: int | None = None) -> None:
        self._req = req
        self._value = known

    def __index__(self) -> int:
        if self._value is None:
            self._value = tokens.routing_count(self._req)
        return self._value

    __int__ = __index__

    def __str__(self) -> str:
        return str(int(self))


@dataclass(frozen=True)
class Route:
    scenario: str
    chain: tuple[ModelConfig, ...]
    token_count: RoutingCount

    @property
    def primary(self) -> ModelConfig:
        return self.chain[0]


def strip_context_suffix(model: str) -> str:
    """Remove trailing ``[1m]``/``[256k]``/``[128k]``, repeatedly."""
    stripped = True
    while stripped:
        stripped = False
        for suffix in CONTEXT_SUFFIXES:
            if model.endswith(suffix):
                model = model[: -len(suffix)]
                stripped = True
    return model


def _fallbacks(config: Config, key: str) -> tuple[ModelConfig, ...]:
    return tuple(config.fallbacks.get(key) or ())


def scenario_chain(scenario: str, config: Config, streaming: bool) -> tuple[ModelConfig, ...]:
    """The chain for a detected scenario.

    Streaming with the toggle off falls back through ``fast``, never through
    ``fallbacks.default``: interactive streams should stay on fast models.
    """
    if streaming and not config.enable_streaming_scenario_routing:
        primary = (
            config.models.get(scenario)
            or config.models.get("fast")
            or config.models.get("default")
        )
        if primary is None or not primary.model_id:
            raise RoutingError(
                "no model configured for streaming; neither scenario "
                f'"{scenario}", "fast", nor "default" exist in models map'
            )
        rest = _fallbacks(config, scenario) or _fallbacks(config, "fast")
    else:
        primary = config.models.get(scenario) or config.models.get("default")
        if primary is None:
            raise RoutingError("no default model configured")
        rest = _fallbacks(config, scenario) or _fallbacks(config, "default")
    return (primary, *rest)


def _requested_model(name: str, config: Config) -> ModelConfig:
    """The client's model: a configured entry by that key, else a bare Go
    entry that keeps the default's temperature and max_tokens."""
    entry = config.models.get(name)
    if entry is not None:
        return entry
    default = config.models.get("default")
    return ModelConfig(
        provider=GO,
        model_id=name,
        temperature=default.temperature if default else 0.0,
        max_tokens=default.max_tokens if default else 0,
    )


def build_route(req: MessagesRequest, config: Config, streaming: bool) -> Route:
    """Scenario label, model chain and routing token count for ``req``.

    Raises ``RoutingError`` when the configuration has no model to use.
    """
    model = strip_context_suffix(req.model)

    def scenario() -> tuple[str, RoutingCount]:
        system, pairs = tokens.routing_text(req)
        count = tokens.routing_count_of(system, pairs)
        return detect_scenario(pairs, count, config, streaming), RoutingCount(req, count)

    override = config.model_overrides.get(model) if model else None
    if override is not None:
        chain = [override, *(_fallbacks(config, model) or _fallbacks(config, "default"))]
        # The scenario chain is appended as a safety net; if it cannot be
        # built the request fails even though the override was fine (Go).
        label, count = scenario()
        seen = {m.model_id for m in chain}
        for entry in scenario_chain(label, config, streaming):
            if entry.model_id not in seen:
                seen.add(entry.model_id)
                chain.append(entry)
        return Route("override", tuple(chain), count)

    if model and config.respect_requested_model:
        # Scenario detection is bypassed: the client asked for this model.
        chain = (_requested_model(model, config), *_fallbacks(config, "default"))
        return Route("default", chain, RoutingCount(req))

    label, count = scenario()
    return Route(label, scenario_chain(label, config, streaming), count)
