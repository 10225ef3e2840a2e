"""Scenario detection: which kind of request this is.

The scenario picks which ``models[...]`` entry serves a request. Keyword
rules are deliberately crude literal substring tests (``dir`` matches
"redirect"): they reproduce the Go proxy's routing so existing configs keep
landing on the same models.
"""

from __future__ import annotations

from typing import Iterable

from ..config import Config

DEFAULT_LONG_CONTEXT_THRESHOLD = 100_000
#: Requests carrying a server tool (``routing.web_search``); not a keyword rule.
WEB_SEARCH = "web_search"

COMPLEX_WORDS = (
    "architect", "architecture", "refactor", "redesign", "complex", "difficult",
    "challenging", "optimize", "performance", "efficiency", "design pattern",
    "best practice", "execute", "run command", "bash", "shell", "implement",
    "build", "create", "add feature", "write to", "edit file", "create file",
)
THINK_WORDS = (
    "think", "thinking", "plan", "reason", "reasoning", "analyze", "analysis",
    "step by step",
)
THINK_MARKER = "antThinking"  # the only case-sensitive test
BACKGROUND_BLOCKERS = (
    "tool", "function", "execute", "run command", "write", "edit", "create",
    "delete", "remove", "implement", "build", "add", "modify",
)
BACKGROUND_WORDS = (
    "list directory", "ls -", "dir", "show file", "view file", "cat file",
    "what is", "what's", "tell me about", "check status", "show status",
)

# Joins message texts so one substring search covers them all; no keyword
# contains it, so a match can never straddle two messages.
_SEP = "\x00"


def long_context_threshold(config: Config) -> int:
    """T: ``models.long_context.context_threshold`` when set (> 0), else 100000."""
    entry = config.models.get("long_context")
    if entry is not None and entry.context_threshold > 0:
        return entry.context_threshold
    return DEFAULT_LONG_CONTEXT_THRESHOLD


def _any_in(words: Iterable[str], haystack: str) -> bool:
    return any(w in haystack for w in words)


def detect_scenario(
    pairs: list[tuple[str, str]], count: int, config: Config, streaming: bool
) -> str:
    """Scenario label for the messages' ``(role, text)`` pairs
    (``tokens.routing_text``).

    Streaming requests go to ``fast`` unless the streaming toggle is on:
    the keyword rules were written for one-shot requests and would
    send most interactive Claude Code turns to slow "complex" models.
    Over the long-context threshold wins in every mode.
    """
    if count > long_context_threshold(config):
        return "long_context"
    if streaming and not config.enable_streaming_scenario_routing:
        return "fast"

    every = _SEP.join(text for _, text in pairs)
    every_lower = every.lower()
    asking = _SEP.join(text for role, text in pairs if role in ("user", "system")).lower()

    if _any_in(COMPLEX_WORDS, asking):
        return "complex"
    if _any_in(THINK_WORDS, asking) or THINK_MARKER in every:
        return "think"
    if not _any_in(BACKGROUND_BLOCKERS, every_lower) and _any_in(BACKGROUND_WORDS, every_lower):
        return "background"
    return "default"
