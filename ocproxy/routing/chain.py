"""Model chain building: which models a request tries, in order.

A request's chain is the ordered list of models the fallback loop tries:
primary first, then fallbacks. Four sources, first that applies wins:

1. a ``model_overrides`` entry for the exact requested name;
   then a ``/v1/models`` alias (``claude-go-kimi-k2.6``, see ``aliases``);
2. a ``model_family_overrides`` keyword found in the name (``haiku`` in
   ``claude-haiku-4-5-20251001``), longest keyword first -- except that a
   request over the long-context threshold goes to ``long_context`` when
   one is configured, since the family's model may not hold it;
3. the requested name itself (``respect_requested_model``), only when it is
   a ``models`` key or a catalog id -- and never a bare Claude name, which
   is what Claude Code sends for every turn, not a choice of upstream;
4. scenario routing (also for every unknown name: an unknown name sent
   upstream could only fail there).

Both override paths append the scenario chain as a de-duplicated safety
net; the other chains are used exactly as configured, so a model listed
twice is tried twice (the Go behaviour).

Then the chain is fitted to the request (:func:`fit_chain`): a request with
images goes to the ``image`` scenario when one is configured, else to the
chain's vision-capable models; a model whose context window (catalog) is
smaller than the request is skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .. import tokens
from ..aliases import alias_target
from ..catalog import context_window, is_claude_name, provider_of
from ..config import Config, ModelConfig
from ..request import MessagesRequest
from ..translate.content import reads_images
from .scenarios import WEB_SEARCH, detect_scenario
from .web_search import web_search_chain, wants_server_tool

# Claude Code appends context-window hints to model names ("opus[1m]"); they
# are not part of any configured name.
CONTEXT_SUFFIXES = ("[1m]", "[256k]", "[128k]")


log = logging.getLogger("ocproxy.routing")

#: The scenario a request with images goes to, when configured.
IMAGE_SCENARIO = "image"


class RoutingError(Exception):
    """No usable model is configured for this request (answered as 500
    "routing failed"; the message goes to the log)."""


class PromptTooLong(Exception):
    """The request is larger than every model's context window: answered
    400 ``prompt is too long``, the words Claude Code reacts to by
    offering to compact the conversation."""

    def __init__(self, count: int, largest: int):
        super().__init__(f"prompt is too long: {count} tokens > {largest} maximum")
        self.count, self.largest = count, largest


class RoutingCount:
    """A request's routing token count, counted the first time it is read.

    Scenario routing needs it (long context), and so does the context-window
    check when the request may be larger than a model's window; otherwise
    only the ``tokens=`` log line reads it — lazily, as logging formats
    ``%d`` arguments (``__index__``) only for a record it emits.
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


def _catalog_model(model_id: str, config: Config) -> ModelConfig | None:
    """A catalog id, or an id a refreshed model list named, as a bare entry
    on the provider that serves it (so a Zen GPT goes to Responses, a Zen
    Gemini to Gemini); None for an id in no table and no list."""
    provider = provider_of(model_id) or config.listed_provider(model_id)
    if provider is None:
        return None
    return _bare_model(provider, model_id, config)


def _bare_model(provider: str, model_id: str, config: Config) -> ModelConfig:
    """An entry for a model the config does not name, with the default's
    temperature and max_tokens."""
    default = config.models.get("default")
    return ModelConfig(
        provider=provider,
        model_id=model_id,
        temperature=default.temperature if default else 0.0,
        max_tokens=default.max_tokens if default else 0,
    )


def _alias_model(provider: str, model_id: str, config: Config) -> ModelConfig:
    """The model a picker alias names: the configured entry for that model on
    that provider when there is one (its settings apply), else a bare entry."""
    for entry in (*config.model_overrides.values(), *config.models.values()):
        if entry.provider == provider and entry.model_id == model_id:
            return entry
    return _bare_model(provider, model_id, config)


def _requested_model(name: str, config: Config) -> ModelConfig | None:
    """The client's model when ``respect_requested_model`` may pass it: a
    configured entry by that key, else a catalog id that is not a Claude
    name; None sends the request to scenario routing."""
    entry = config.models.get(name)
    if entry is not None:
        return entry
    if is_claude_name(name):
        return None
    return _catalog_model(name, config)


def family_of(name: str, config: Config) -> str | None:
    """The ``model_family_overrides`` keyword found in ``name``
    (case-insensitive), the longest first; None when none is."""
    lowered = name.lower()
    for key in sorted(config.model_family_overrides, key=lambda k: (-len(k), k)):
        if key and key.lower() in lowered:
            return key
    return None


def _family_chain(key: str, config: Config) -> tuple[str, list[ModelConfig]]:
    """Label and chain (before the safety net) of a family mapping. A name
    that is a ``models`` key brings that key's fallbacks along and labels
    the route with it (``haiku -> background`` reads as background)."""
    target = config.model_family_overrides[key]
    if isinstance(target, ModelConfig):
        return "family", [target, *(_fallbacks(config, key) or _fallbacks(config, "default"))]
    entry = config.models.get(target)
    if entry is not None:
        return target, [entry, *(_fallbacks(config, target) or _fallbacks(config, "default"))]
    entry = _catalog_model(target, config)
    if entry is None:  # the loader refuses such a config; a hand-built one may have it
        raise RoutingError(f'model_family_overrides["{key}"] names unknown model "{target}"')
    return "family", [entry, *(_fallbacks(config, key) or _fallbacks(config, "default"))]


def _with_safety_net(chain: list[ModelConfig], net: tuple[ModelConfig, ...]) -> tuple[ModelConfig, ...]:
    """``chain`` followed by each entry of ``net`` whose model_id it lacks."""
    seen = {m.model_id for m in chain}
    for entry in net:
        if entry.model_id not in seen:
            seen.add(entry.model_id)
            chain.append(entry)
    return tuple(chain)


def build_route(req: MessagesRequest, config: Config, streaming: bool) -> Route:
    """Scenario label, model chain and routing token count for ``req``,
    the chain fitted to the request's size and images; a request with a
    server tool keeps only models that run it (``web_search``).

    Raises ``RoutingError`` when the configuration has no model to use,
    ``PromptTooLong`` when no model of the chain can hold the request.
    """
    route = _choose_route(req, config, streaming)
    if wants_server_tool(req):
        route = Route(WEB_SEARCH, web_search_chain(config, route.chain), route.token_count)
    return fit_chain(route, req, config, streaming)


def _choose_route(req: MessagesRequest, config: Config, streaming: bool) -> Route:
    model = strip_context_suffix(req.model)

    def scenario() -> tuple[str, RoutingCount]:
        _, pairs = tokens.routing_text(req)
        count = RoutingCount(req)
        return detect_scenario(pairs, int(count), config, streaming), count

    override = config.model_overrides.get(model) if model else None
    if override is not None:
        chain = [override, *(_fallbacks(config, model) or _fallbacks(config, "default"))]
        # The scenario chain is appended as a safety net; if it cannot be
        # built the request fails even though the override was fine (Go).
        label, count = scenario()
        return Route("override", _with_safety_net(chain, scenario_chain(label, config, streaming)), count)

    aliased = alias_target(model) if model else None
    if aliased is not None:
        # A /v1/models alias (claude-go-kimi-k2.6) is the client's explicit
        # choice of one model, picked before any family keyword in it counts.
        return Route("alias", (_alias_model(*aliased, config), *_fallbacks(config, "default")), RoutingCount(req))

    family = family_of(model, config) if model else None
    if family is not None:
        label, count = scenario()
        net = scenario_chain(label, config, streaming)
        if label == "long_context" and "long_context" in config.models:
            return Route(label, net, count)
        family_label, chain = _family_chain(family, config)
        return Route(family_label, _with_safety_net(chain, net), count)

    requested = _requested_model(model, config) if model and config.respect_requested_model else None
    if requested is not None:
        # Scenario detection is bypassed: the client asked for this model.
        chain = (requested, *_fallbacks(config, "default"))
        return Route("default", chain, RoutingCount(req))

    label, count = scenario()
    return Route(label, scenario_chain(label, config, streaming), count)


def has_images(req: MessagesRequest) -> bool:
    """An image block anywhere in the messages, tool results included."""
    for message in req.messages:
        body = message.get("content")
        if isinstance(body, str):
            continue
        for block in body or ():
            kind = block.get("type")
            if kind == "image":
                return True
            if kind == "tool_result" and isinstance(block.get("content"), list):
                if any(isinstance(b, dict) and b.get("type") == "image" for b in block["content"]):
                    return True
    return False


def _vision_first(route: Route, config: Config, streaming: bool) -> Route:
    """The chain for a request with images: the ``image`` scenario (then the
    rest of the chain) when configured, else the chain as it was; either
    way only its vision-capable models, unless it has none."""
    chain = route.chain
    label = route.scenario
    if IMAGE_SCENARIO in config.models:
        chain = _with_safety_net(list(scenario_chain(IMAGE_SCENARIO, config, streaming)), chain)
        label = IMAGE_SCENARIO
    seeing = tuple(m for m in chain if reads_images(m))
    if not seeing:
        log.warning("request has images but no model of its chain reads them: chain=%s",
                    ",".join(m.model_id for m in chain))
        return Route(label, chain, route.token_count)
    if len(seeing) < len(chain):
        log.info("request has images: skipping models that do not read them: %s",
                 ",".join(m.model_id for m in chain if not reads_images(m)))
    return Route(label, seeing, route.token_count)


def _fitting(route: Route, req: MessagesRequest) -> Route:
    """``route`` without the models whose context window is smaller than
    the request. The request is counted only when its size could matter."""
    windows = [context_window(m.provider, m.model_id) for m in route.chain]
    known = [w for w in windows if w]
    if not known or tokens.routing_bound(req) <= min(known):
        return route
    count = int(route.token_count)
    kept = tuple(m for m, w in zip(route.chain, windows) if not w or count <= w)
    for m, w in zip(route.chain, windows):
        if w and count > w:
            log.info("skipping model=%s: its context window (%d tokens) is smaller than the request (%d tokens)",
                     m.model_id, w, count)
    if not kept:
        raise PromptTooLong(count, max(known))
    return Route(route.scenario, kept, route.token_count)


def fit_chain(route: Route, req: MessagesRequest, config: Config, streaming: bool) -> Route:
    """Fit ``route`` to the request: images to models that read them, then
    no model too small for it."""
    if has_images(req):
        route = _vision_first(route, config, streaming)
    return _fitting(route, req)
