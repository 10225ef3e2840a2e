"""Reasoning state an upstream needs back on the next turn, carried through
Claude Code inside the blocks it returns unchanged.

- Gemini 3 signs its function calls (``thoughtSignature`` on the
  ``functionCall`` part) and rejects a replayed call without its signature.
  The signature rides in the ``tool_use`` id, the one field of that block
  Claude Code returns verbatim and per call: ``<id>__gts<urlsafe base64>``
  (the id stays within Anthropic's ``[a-zA-Z0-9_-]``). ``<id>__gts`` alone
  marks a call the proxy saw that Gemini did not sign (a parallel call
  after the first).
- The Responses API with ``store: false`` hands out each reasoning item's
  ``encrypted_content``; replaying the items keeps the model's reasoning
  across tool calls. They ride in the thinking block's ``signature`` as
  ``ocproxy-rs1:`` + JSON ``{"id", "encrypted_content"}``.

A signature the proxy made means nothing to Anthropic, so
``is_proxy_signature`` tells the passthrough which thinking blocks to drop.

Pure: strings in, strings out.
"""

from __future__ import annotations

import base64
import binascii
import json

from .sse import THINKING_SIGNATURE

_GEMINI_MARK = "__gts"
_RESPONSES_PREFIX = "ocproxy-rs1:"


def is_proxy_signature(signature) -> bool:
    """A thinking signature the proxy made (a placeholder or carried state)."""
    return isinstance(signature, str) and (
        signature == THINKING_SIGNATURE or signature.startswith(_RESPONSES_PREFIX)
    )


# -- Gemini ------------------------------------------------------------------


def gemini_tool_id(base: str, signature) -> str:
    """A tool_use id for a Gemini function call, carrying its signature."""
    if not isinstance(signature, str) or not signature:
        return base + _GEMINI_MARK
    encoded = base64.urlsafe_b64encode(signature.encode()).decode().rstrip("=")
    return f"{base}{_GEMINI_MARK}{encoded}"


def gemini_signature(tool_id) -> tuple[bool, str | None]:
    """``(seen, signature)`` for a replayed tool_use id: ``seen`` when the
    proxy made it from a Gemini answer, ``signature`` the one Gemini gave
    that call (None when it gave none, or the id is not ours)."""
    if not isinstance(tool_id, str):
        return False, None
    at = tool_id.find(_GEMINI_MARK)
    if at < 0:
        return False, None
    encoded = tool_id[at + len(_GEMINI_MARK):]
    if not encoded:
        return True, None
    try:
        return True, base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False, None


# -- Responses ---------------------------------------------------------------


def responses_signature(item: dict) -> str | None:
    """The thinking signature carrying a reasoning item's encrypted state;
    None when the item has none."""
    encrypted = item.get("encrypted_content")
    if not isinstance(encrypted, str) or not encrypted:
        return None
    state = {"encrypted_content": encrypted}
    if isinstance(item.get("id"), str):
        state["id"] = item["id"]
    return _RESPONSES_PREFIX + json.dumps(state, separators=(",", ":"))


def responses_reasoning_item(block: dict) -> dict | None:
    """The reasoning input item to replay for a thinking block whose
    signature the proxy made from one; None for any other block."""
    signature = block.get("signature")
    if not isinstance(signature, str) or not signature.startswith(_RESPONSES_PREFIX):
        return None
    try:
        state = json.loads(signature[len(_RESPONSES_PREFIX):])
    except ValueError:
        return None
    if not isinstance(state, dict) or not isinstance(state.get("encrypted_content"), str):
        return None
    text = block.get("thinking")
    summary = [{"type": "summary_text", "text": text}] if isinstance(text, str) and text else []
    item = {"type": "reasoning", "summary": summary, "encrypted_content": state["encrypted_content"]}
    if isinstance(state.get("id"), str):
        item["id"] = state["id"]
    return item
