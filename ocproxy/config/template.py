"""The config file ``ocproxy init`` writes, which is also the built-in config.

Settings that have a default take it from ``types`` (so the template and the
defaults cannot drift apart); the model choices are the template's own.
"""

from __future__ import annotations

from typing import Any

from ocproxy.catalog import GO, ZEN
from ocproxy.config.types import DEFAULT_GO, DEFAULT_ZEN, DEFAULTS


def _m(model_id: str, temperature: float, provider: str = GO, **extra: Any) -> dict:
    """A model entry. No ``max_tokens``: Claude Code asks for what it needs
    (32000 on a main turn) and each model's real output limit is applied
    from the catalog; a smaller cap here cut its tool calls mid-JSON."""
    return {"provider": provider, "model_id": model_id, "temperature": temperature, **extra}


def _chain(*ids: str) -> list[dict]:
    return [{"provider": GO, "model_id": i} for i in ids]


def default_template() -> dict:
    """The config ``ocproxy init`` writes, and the one used when there is no
    config file at all.

    A fresh dict every call, so callers may mutate it.
    """
    return {
        "api_key": "${OCPROXY_API_KEY}",
        "host": DEFAULTS.host,
        "port": DEFAULTS.port,
        "hot_reload": DEFAULTS.hot_reload,
        "enable_streaming_scenario_routing": DEFAULTS.enable_streaming_scenario_routing,
        "respect_requested_model": DEFAULTS.respect_requested_model,
        "models": {
            "background": _m("qwen3.5-plus", 0.5),
            "default": _m("kimi-k2.6", 0.7),
            "long_context": _m("minimax-m2.5", 0.7, context_threshold=80000),
            "think": _m("glm-5", 0.7),
            "complex": _m("glm-5.1", 0.7),
            "fast": _m("qwen3.6-plus", 0.7),
        },
        "fallbacks": {
            "background": _chain("qwen3.6-plus", "minimax-m2.5"),
            "default": _chain("mimo-v2.5-pro", "qwen3.6-plus"),
            "long_context": _chain("minimax-m2.7", "kimi-k2.6"),
            "think": _chain("kimi-k2.6", "mimo-v2.5-pro"),
            "complex": _chain("glm-5", "kimi-k2.6"),
            "fast": _chain("qwen3.5-plus", "minimax-m2.5"),
        },
        # Claude Code names its own models in every request: main turns
        # (opus, sonnet, fable) go to the default model, its haiku background
        # calls to the background one; long requests go to long_context all
        # the same.
        "model_family_overrides": {
            "opus": "default",
            "sonnet": "default",
            "fable": "default",
            "haiku": "background",
        },
        "model_overrides": {
            "deepseek-v4-pro": _m(
                "deepseek-v4-pro", 0.7, ZEN, reasoning_effort="max", thinking={"type": "enabled"}
            ),
            **{
                i: _m(i, 0.7, ZEN)
                for i in (
                    "deepseek-v4-flash-free",
                    "grok-build-0.1",
                    "big-pickle",
                    "mimo-v2.5-free",
                    "north-mini-code-free",
                    "nemotron-3-ultra-free",
                )
            },
        },
        "opencode_go": {
            "base_url": DEFAULT_GO.base_url,
            "anthropic_base_url": DEFAULT_GO.anthropic_base_url,
            "responses_base_url": DEFAULT_GO.responses_base_url,
            "timeout_ms": DEFAULT_GO.timeout_ms,
        },
        "opencode_zen": {
            "base_url": DEFAULT_ZEN.base_url,
            "anthropic_base_url": DEFAULT_ZEN.anthropic_base_url,
            "responses_base_url": DEFAULT_ZEN.responses_base_url,
            "gemini_base_url": DEFAULT_ZEN.gemini_base_url,
            "timeout_ms": DEFAULT_ZEN.timeout_ms,
        },
        # requests: true is the template's choice; the default is false
        "logging": {"level": DEFAULTS.log_level, "requests": True},
    }
