"""Thinking and reasoning effort: what was asked, and how each upstream API
says it.

Claude Code 2.1 asks with ``thinking: {"type": "adaptive"}`` plus
``output_config: {"effort": …}``; older clients with ``thinking: {"type":
"enabled", "budget_tokens": N}``; either may say ``{"type": "disabled"}``.
No non-Anthropic upstream knows these shapes, so ``intent`` reads them once
into an :class:`Intent` and one function per API writes it the way that API
takes it. The routed model's ``thinking`` setting can force the answer:
``"off"``, ``"on"`` or an effort word (``config.types.THINKING_MODES``).

Precedence: the forced setting, then the client's on/off, then the model's
``thinking`` object; for the effort, the forced word, then the model's
``reasoning_effort``, then the client's ``output_config.effort``, then its
``budget_tokens``.

Pure: dicts in, dicts out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config.types import ModelConfig
    from ..request import MessagesRequest

#: Anthropic's effort words an OpenAI-style ``reasoning_effort`` can carry;
#: the client's ``xhigh``/``max`` go as ``high`` (OpenAI's enum has neither).
_OPENAI_EFFORTS = ("minimal", "low", "medium", "high")

#: Kimi models that always think; they take no ``thinking`` switch
#: (https://java.agentscope.io/v2/en/integration/model/kimi).
_KIMI_ALWAYS_THINKS = ("kimi-k2.7-code", "kimi-k3")

#: Effort word -> token budget, for APIs that take a budget (Gemini 2.x,
#: non-Claude models behind an Anthropic-format endpoint).
_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 24576, "max": 32768}

#: Anthropic's smallest ``budget_tokens``.
MIN_BUDGET = 1024


def effort_of(budget: int) -> str:
    """A ``budget_tokens`` as an effort word."""
    if budget <= 2048:
        return "low"
    if budget <= 8192:
        return "medium"
    if budget <= 32768:
        return "high"
    return "max"


def _number(value) -> int | None:
    """A positive ``budget_tokens`` (the parser does not type-check it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return int(value)


@dataclass(frozen=True)
class Intent:
    """Thinking as asked for one request on one model.

    ``on``: True/False when someone said, None when nobody did.
    ``effort``: an effort word (forced, configured or the client's
    ``output_config.effort``), or None. ``budget``: the client's
    ``budget_tokens`` when it gave a positive one. ``configured``: the effort
    word came from the model's config, which is sent as written.
    """

    on: bool | None = None
    effort: str | None = None
    budget: int | None = None
    configured: bool = False

    @property
    def any_effort(self) -> str | None:
        """The effort word, else one read from the budget."""
        if self.effort:
            return self.effort
        return effort_of(self.budget) if self.budget else None


def intent(thinking, output_config, model: ModelConfig) -> Intent:
    """What the request (``thinking``, ``output_config``, either absent) and
    ``model``'s settings ask for."""
    thinking = thinking if isinstance(thinking, Mapping) else {}
    kind = thinking.get("type")
    client_on = {"enabled": True, "adaptive": True, "disabled": False}.get(kind)
    budget = _number(thinking.get("budget_tokens")) if kind == "enabled" else None
    said = output_config.get("effort") if isinstance(output_config, Mapping) else None
    client_effort = said if isinstance(said, str) and said else None

    forced = model.thinking if isinstance(model.thinking, str) else None
    if forced == "off":
        return Intent(on=False)
    configured_effort = model.reasoning_effort or None
    if forced is not None and forced != "on":
        return Intent(on=True, effort=forced, budget=budget, configured=True)
    if configured_effort:
        effort, configured = configured_effort, True
    else:
        effort, configured = client_effort, False
    if forced == "on":
        return Intent(on=True, effort=effort, budget=budget, configured=configured)
    on = client_on
    if on is None and isinstance(model.thinking, Mapping) and model.thinking:
        on = model.thinking.get("type") != "disabled"
    if on is False:
        return Intent(on=False)
    return Intent(on=on, effort=effort, budget=budget, configured=configured)


def request_intent(req: MessagesRequest, model: ModelConfig) -> Intent:
    """``intent`` of a parsed request on ``model``."""
    return intent(req.thinking, req.body.get("output_config"), model)


def _switch(on: bool) -> dict:
    return {"type": "enabled" if on else "disabled"}


def chat_params(want: Intent, model_id: str, *, thought_before: bool, answered_before: bool) -> dict:
    """The Chat Completions keys for ``want``: ``thinking`` (DeepSeek's and
    Kimi's switch) and/or ``reasoning_effort``.

    ``thought_before``: an earlier assistant turn carries reasoning, which
    keeps thinking on when nobody said; ``answered_before``: there is an
    earlier assistant turn at all.
    """
    on = want.on
    if model_id.startswith("deepseek-"):
        # DeepSeek 400s in thinking mode when earlier assistant turns lack
        # reasoning_content, which only turns that thought can give back.
        if answered_before and not thought_before:
            return {"thinking": _switch(False)}
        if on is None and thought_before:
            on = True
        if on is None and want.any_effort is None:
            return {}
        if on is False:
            return {"thinking": _switch(False)}
        # DeepSeek maps every effort word itself (minimal … max).
        return {"thinking": _switch(True), "reasoning_effort": want.any_effort or "high"}
    if model_id.startswith("kimi-"):
        out: dict = {}
        if on is None and thought_before:
            on = True
        if on is not None and not model_id.startswith(_KIMI_ALWAYS_THINKS):
            out["thinking"] = _switch(on)
        if on is not False and want.configured and want.effort:
            out["reasoning_effort"] = want.effort
        return out
    if on is False:
        return {}
    if want.configured and want.effort:
        return {"reasoning_effort": want.effort}
    effort = want.any_effort
    if effort is None:
        return {}
    return {"reasoning_effort": effort if effort in _OPENAI_EFFORTS else "high"}


#: The Responses API knows none/minimal/low/medium/high/xhigh.
_RESPONSES_EFFORT = {"max": "high"}


def responses_reasoning(want: Intent) -> dict | None:
    """The Responses ``reasoning`` object, or None to send none; a summary
    is asked for so reasoning comes back as thinking blocks."""
    if want.on is False:
        return None
    effort = want.any_effort
    if effort is None:
        return {"summary": "auto"} if want.on else None
    return {"effort": _RESPONSES_EFFORT.get(effort, effort), "summary": "auto"}


def _gemini_level(effort: str, model_id: str) -> str:
    """Gemini 3 levels: Pro takes low/high, Flash also minimal/medium."""
    flash = "flash" in model_id
    if effort in ("low", "high"):
        return effort
    if effort == "medium":
        return "medium" if flash else "high"
    if effort in ("minimal", "none"):
        return "minimal" if flash else "low"
    return "high"  # xhigh, max and anything unknown


def gemini_thinking_config(want: Intent, model_id: str) -> dict | None:
    """``generationConfig.thinkingConfig``, or None to send none. Gemini 2.x
    takes a ``thinkingBudget``, Gemini 3 a ``thinkingLevel`` (the two
    together are a 400); a bare client budget only turns thoughts on there."""
    if want.on is False:
        return None
    config: dict = {}
    if want.on:
        config["includeThoughts"] = True
    if model_id.startswith(("gemini-1", "gemini-2")):
        budget = want.budget if want.budget and not want.effort else _BUDGET.get(want.any_effort or "")
        if budget:
            config["thinkingBudget"] = budget
    elif want.effort:
        config["thinkingLevel"] = _gemini_level(want.effort, model_id)
    return config or None


#: Claude models that take only ``enabled`` + budget (before 4.6), and those
#: that take only ``adaptive`` (Opus 4.7 on): a 400 otherwise
#: (https://github.com/checkmarble/llmberjack/pull/14 quoting Anthropic's docs,
#: https://github.com/indexable-inc/index/pull/532: "Haiku 4.5 is manual-only").
_CLAUDE_BUDGET_ONLY = ("claude-3", "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5", "claude-opus-4-1",
                       "claude-sonnet-4", "claude-opus-4")
_CLAUDE_ADAPTIVE_ONLY = ("claude-opus-4-7", "claude-opus-4-8", "claude-sonnet-5", "claude-fable-5")
_DATE_SUFFIX = re.compile(r"-\d{8}$")


def _claude_family(model_id: str) -> str:
    return _DATE_SUFFIX.sub("", model_id)


def _is_claude_family(model_id: str, families: tuple[str, ...]) -> bool:
    family = _claude_family(model_id)
    return family in families or family.startswith("claude-3")


def claude_thinking(sent, want: Intent, model_id: str, max_tokens) -> tuple[dict | None, str | None] | None:
    """``(thinking, output_config.effort)`` when Claude ``model_id`` cannot
    take the thinking type the client ``sent`` (Claude Code asked for another
    Claude model); None when it can, and the body stays as sent."""
    kind = sent.get("type") if isinstance(sent, Mapping) else None
    if kind == "adaptive" and _is_claude_family(model_id, _CLAUDE_BUDGET_ONLY):
        return _budget_thinking(want, max_tokens), None
    if kind == "enabled" and _claude_family(model_id) in _CLAUDE_ADAPTIVE_ONLY:
        return {"type": "adaptive"}, want.any_effort
    return None


def _budget_thinking(want: Intent, max_tokens) -> dict | None:
    """``enabled`` with a budget below ``max_tokens``, or None when none fits."""
    budget = want.budget or _BUDGET.get(want.any_effort or "high", _BUDGET["high"])
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        budget = min(budget, max_tokens - 1)
    if budget < MIN_BUDGET:
        return None  # answer without thinking rather than 400
    return {"type": "enabled", "budget_tokens": budget}


def anthropic_thinking(want: Intent, model_id: str, max_tokens) -> tuple[dict | None, str | None]:
    """``(thinking, output_config.effort)`` for a model behind an
    Anthropic-format endpoint; None leaves the key out.

    Claude takes adaptive thinking and ``output_config.effort`` as Claude Code
    sends them. The other models there (Qwen, MiniMax on OpenCode) reject
    ``adaptive`` with a 400 (https://github.com/routatic/proxy/issues/171)
    but take ``enabled`` with a budget below ``max_tokens``.
    """
    if want.on is False:
        return {"type": "disabled"}, None
    if model_id.startswith("claude-") and not _is_claude_family(model_id, _CLAUDE_BUDGET_ONLY):
        if want.on:
            return {"type": "adaptive"}, want.any_effort
        return None, want.effort
    if not want.on:
        return None, None
    return _budget_thinking(want, max_tokens), None
