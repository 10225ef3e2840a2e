"""Routing of requests that carry a server tool (``web_search``, ``web_fetch``).

Only some upstreams run a web search themselves: Claude on OpenCode Zen's
Anthropic API (the tool passes through), the Responses API (its
``web_search`` tool) and Gemini (Google Search grounding). Such a request
goes to the ``web_search`` scenario (``models.web_search`` and
``fallbacks.web_search``) when one is configured, else to the models its
ordinary route would try, in both cases keeping only models that can run
the search. With none, the client is told plainly instead of getting an
answer from a model that could not search.
"""

from __future__ import annotations

from ..catalog import ANTHROPIC, GEMINI, RESPONSES, ZEN, normalise_provider
from ..config import Config, ModelConfig
from ..errors import ProxyError
from ..request import MessagesRequest
from ..translate import server_tools
from ..upstream.targets import endpoint_for
from .scenarios import WEB_SEARCH

SCENARIO = WEB_SEARCH

NOT_AVAILABLE = (
    "web search is not available through this proxy: no configured model can search the web "
    "(configure models.web_search with a Claude, GPT or Gemini model on OpenCode Zen)"
)


def wants_server_tool(req: MessagesRequest) -> bool:
    return bool(server_tools.requested(req.tools))


def runs_server_tools(model: ModelConfig) -> bool:
    """A model whose upstream runs web search itself."""
    endpoint = endpoint_for(model)
    if endpoint in (RESPONSES, GEMINI):
        return True
    return (
        endpoint == ANTHROPIC
        and normalise_provider(model.provider) == ZEN
        and model.model_id.startswith("claude-")
    )


def web_search_chain(config: Config, ordinary: tuple[ModelConfig, ...]) -> tuple[ModelConfig, ...]:
    """The chain for a request with a server tool: the ``web_search``
    scenario's when configured, else ``ordinary``, keeping only models that
    search. Raises a 400 ``ProxyError`` when none is left."""
    entry = config.models.get(SCENARIO)
    candidates = (entry, *(config.fallbacks.get(SCENARIO) or ())) if entry is not None else ordinary
    chain = tuple(m for m in candidates if runs_server_tools(m))
    if not chain:
        raise ProxyError(400, NOT_AVAILABLE)
    return chain
