"""Claude Code 2.1's request shape, written by us from public captures, and
the rules real upstreams enforce against it. Each value names its source.
"""

from __future__ import annotations

import json
import re

#: The ``anthropic-beta`` header Claude Code 2.1.185 sent, captured through a
#: logging forward proxy:
#: https://github.com/ex-machina-co/opencode-anthropic-auth/issues/174
CLAUDE_CODE_BETAS = (
    "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14,thinking-token-count-2026-05-13,"
    "context-management-2025-06-27,prompt-caching-scope-2026-01-05,mid-conversation-system-2026-04-07,"
    "advisor-tool-2026-03-01,effort-2025-11-24,extended-cache-ttl-2025-04-11"
)
CONTEXT_MANAGEMENT_BETA = "context-management-2025-06-27"

#: system[0] of every Claude Code request; ``cch`` changes on every request:
#: https://github.com/anthropics/claude-code/issues/68900 (2.1.177),
#: https://github.com/waybarrios/vllm-mlx/pull/277 (2.1.100)
BILLING_BLOCKS = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.01c; cc_entrypoint=cli; cch=36ee5;"},
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.01c; cc_entrypoint=cli; cch=0aaa9;"},
]
SYSTEM_REST = [
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
     "cache_control": {"type": "ephemeral"}},
    {"type": "text", "text": "You are an interactive CLI tool that helps users with software engineering tasks.",
     "cache_control": {"type": "ephemeral"}},
]

#: Main-loop thinking and effort: ``thinking: {type: adaptive}`` with
#: ``output_config.effort`` (https://github.com/router-for-me/CLIProxyAPI/issues/1540);
#: 2.1.252 also puts ``budget_tokens: 0`` in it
#: (https://github.com/routatic/proxy/issues/171).
ADAPTIVE = {"budget_tokens": 0, "type": "adaptive"}
EFFORT = {"effort": "high"}

#: Claude Code's context edit; beta-gated by ``context-management-2025-06-27``
#: (https://github.com/router-for-me/CLIProxyAPI/issues/4784,
#: https://github.com/anthropics/claude-code/issues/26215); sent without the
#: beta it is "context_management: Extra inputs are not permitted"
#: (https://github.com/anomalyco/opencode/issues/34694, Claude Code 2.1.197 on Zen).
CONTEXT_MANAGEMENT = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}

#: Kimi's own tool-call id form (https://github.com/vllm-project/vllm/pull/20789,
#: https://github.com/maximhq/bifrost/issues/5097).
KIMI_TOOL_ID = "functions.Read:0"

READ_TOOL = {
    "name": "Read",
    "description": "Reads a file from the local filesystem.",
    "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"],
                     "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#"},
}


def request(model="claude-opus-4-8", *, billing=0, messages=None, stream=True, max_tokens=32000):
    """A Claude Code 2.1 main-loop request body."""
    return {
        "model": model,
        "max_tokens": max_tokens,
        "stream": stream,
        "system": [BILLING_BLOCKS[billing], *SYSTEM_REST],
        "messages": messages or [{"role": "user", "content": [{"type": "text", "text": "Read README.md"}]}],
        "tools": [READ_TOOL],
        "metadata": {"user_id": json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": "5e7a1c2b"})},
        "thinking": dict(ADAPTIVE),
        "output_config": dict(EFFORT),
        "context_management": json.loads(json.dumps(CONTEXT_MANAGEMENT)),
    }


def second_turn_after_kimi():
    """The next turn of a session whose first answer came from Kimi: its
    tool call carries Kimi's id, and the tool result answers that id."""
    return [
        {"role": "user", "content": [{"type": "text", "text": "Read README.md"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should read it.", "signature": "proxy-thinking-placeholder"},
            {"type": "tool_use", "id": KIMI_TOOL_ID, "name": "Read", "input": {"file_path": "README.md"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": KIMI_TOOL_ID, "content": "# ocproxy"},
        ]},
    ]


# -- what an Anthropic upstream rejects (400 invalid_request_error) -----------

#: https://github.com/BlockRunAI/ClawRouter/issues/17,
#: https://github.com/maximhq/bifrost/issues/5097
_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def anthropic_rejection(body: dict, headers: dict, *, adaptive_ok: bool) -> str | None:
    """Why Anthropic's Messages API would answer 400, or None.

    ``adaptive_ok``: Claude takes adaptive thinking; the other models behind
    OpenCode's Anthropic endpoint answer 400 to it
    (https://github.com/routatic/proxy/issues/171)."""
    betas = {b.strip() for b in headers.get("anthropic-beta", "").split(",")}
    if "context_management" in body and CONTEXT_MANAGEMENT_BETA not in betas:
        return "context_management: Extra inputs are not permitted"
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "adaptive" and not adaptive_ok:
        return json.dumps({"model": body.get("model")})
    if thinking.get("type") == "adaptive" and "budget_tokens" in thinking and thinking["budget_tokens"]:
        return "thinking.adaptive.budget_tokens: Extra inputs are not permitted"
    edits = (body.get("context_management") or {}).get("edits") or []
    if any(e.get("type", "").startswith("clear_thinking_") for e in edits) \
            and thinking.get("type") not in ("enabled", "adaptive"):
        return "`clear_thinking_20251015` strategy requires `thinking` to be enabled or adaptive"
    assistants = [i for i, m in enumerate(body.get("messages") or []) if m.get("role") == "assistant"]
    if assistants and thinking.get("type") in ("enabled", "adaptive"):
        # https://github.com/anthropics/claude-code/issues/10823,
        # https://github.com/router-for-me/CLIProxyAPI/issues/344
        last = body["messages"][assistants[-1]].get("content")
        if isinstance(last, list) and any(b.get("type") == "tool_use" for b in last) \
                and last[0].get("type") not in ("thinking", "redacted_thinking"):
            return (f"messages.{assistants[-1]}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                    f"`{last[0].get('type')}`. When `thinking` is enabled, a final `assistant` message must start "
                    "with a thinking block")
    for i, message in enumerate(body.get("messages") or []):
        content = message.get("content")
        for j, block in enumerate(content if isinstance(content, list) else []):
            key = {"tool_use": "id", "tool_result": "tool_use_id"}.get(block.get("type"))
            if key and not _TOOL_ID.match(block.get(key) or ""):
                return f"messages.{i}.content.{j}.{block['type']}.{key}: String should match pattern '^[a-zA-Z0-9_-]+$'"
    return None
