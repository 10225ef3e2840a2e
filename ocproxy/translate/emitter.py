"""The Anthropic event sequence of one streamed message.

``MessageEmitter`` owns the block bookkeeping that the chat, Responses and
Gemini translators all need, so none of them re-implements it; they only
decide what the upstream's chunks mean.
"""

from __future__ import annotations

from .ids import IdFactory
from .message import final_stop
from .sse import THINKING_SIGNATURE, dumps, encode_event, utf8_json

_MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


def _text_delta_template(index: int) -> tuple[bytes, bytes]:
    """The bytes around the JSON text of a text delta: most frames of a long
    answer are text deltas, and building them from bytes instead of
    encoding a dict each time saves a measurable share of CPU per stream."""
    head = (
        'event: content_block_delta\ndata: {"type":"content_block_delta",'
        f'"index":{index},"delta":{{"type":"text_delta","text":'
    ).encode()
    return head, b"}}\n\n"


class MessageEmitter:
    """Builds one Anthropic message event sequence.

    Rules kept here: ``message_start`` is written lazily, before the first
    other frame and at most once, so an attempt that produced nothing can
    still be replaced by the next model; block indices run 0, 1, 2… without
    gaps or reuse; at most one text-or-thinking block is open and it is
    closed before a different kind opens; tool blocks stay open until
    ``close_all``; closing is in ascending index order and a thinking block
    gets its signature delta first.
    """

    def __init__(self, model: str, ids: IdFactory):
        self.model = model
        self.message_id = ids("msg_")
        self.started = False
        self.tool_emitted = False
        self._ids = ids
        self._next_index = 0
        self._open: dict[int, str] = {}  # index -> block type ("text", "thinking", "tool_use", …)
        self._flow: tuple[int, str] | None = None  # the open text/thinking block
        self._tools: dict[object, int] = {}  # upstream tool key -> block index
        self._signatures: dict[int, str] = {}  # thinking index -> upstream state to carry
        self._text_head = b""
        self._text_tail = b""

    # -- building blocks -------------------------------------------------

    def _start_message(self, out: list[bytes]) -> None:
        if not self.started:
            self.started = True
            message = {
                "id": self.message_id,
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": self.model,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }
            out.append(encode_event({"type": "message_start", "message": message}))

    def _open_block(self, kind: str, block: dict, out: list[bytes]) -> int:
        self._start_message(out)
        index = self._next_index
        self._next_index += 1
        self._open[index] = kind
        out.append(encode_event({"type": "content_block_start", "index": index, "content_block": block}))
        return index

    def _delta(self, index: int, delta: dict) -> bytes:
        return encode_event({"type": "content_block_delta", "index": index, "delta": delta})

    def _close(self, index: int, out: list[bytes]) -> None:
        kind = self._open.pop(index)
        if kind == "thinking":
            signature = self._signatures.pop(index, THINKING_SIGNATURE)
            out.append(self._delta(index, {"type": "signature_delta", "signature": signature}))
        out.append(encode_event({"type": "content_block_stop", "index": index}))
        if self._flow and self._flow[0] == index:
            self._flow = None

    def _ensure_flow(self, kind: str, out: list[bytes]) -> int:
        if self._flow and self._flow[1] == kind:
            return self._flow[0]
        if self._flow:
            self._close(self._flow[0], out)
        if kind == "text":
            block = {"type": "text", "text": ""}
        else:
            block = {"type": "thinking", "thinking": "", "signature": THINKING_SIGNATURE}
        index = self._open_block(kind, block, out)
        self._flow = (index, kind)
        if kind == "text":
            self._text_head, self._text_tail = _text_delta_template(index)
        return index

    # -- public API ------------------------------------------------------

    def text(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        if text:
            self._ensure_flow("text", out)
            out.append(self._text_head + utf8_json(dumps(text)) + self._text_tail)
        return out

    def text_json(self, json_string: bytes) -> list[bytes]:
        """``json_string`` is an already-encoded, non-empty JSON string
        literal (quotes included) that is exactly what ``text`` would write."""
        out: list[bytes] = []
        self._ensure_flow("text", out)
        out.append(self._text_head + json_string + self._text_tail)
        return out

    def thinking(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        if text:
            index = self._ensure_flow("thinking", out)
            out.append(self._delta(index, {"type": "thinking_delta", "thinking": text}))
        return out

    def thinking_signature(self, signature: str) -> list[bytes]:
        """Close the open thinking block (an empty one when none is open:
        reasoning with no visible text still has state to carry) with
        ``signature`` instead of the placeholder."""
        out: list[bytes] = []
        index = self._ensure_flow("thinking", out)
        self._signatures[index] = signature
        self._close(index, out)
        return out

    def whole_block(self, block: dict) -> list[bytes]:
        """A block that arrives complete (``server_tool_use``,
        ``web_search_tool_result``): started, its ``input`` (if any) as one
        ``input_json_delta`` the way Anthropic streams it, stopped."""
        out: list[bytes] = []
        if self._flow:
            self._close(self._flow[0], out)
        start = dict(block)
        has_input = "input" in block
        if has_input:
            start["input"] = {}
        index = self._open_block(block["type"], start, out)
        if has_input:
            out.append(self._delta(index, {"type": "input_json_delta", "partial_json": dumps(block["input"])}))
        self._close(index, out)
        return out

    def tool_is_open(self, key: object) -> bool:
        return key in self._tools

    def tool_start(self, key: object, tool_id: str | None, name: str) -> list[bytes]:
        """Open a tool_use block for upstream call ``key`` (closing an open
        text/thinking block first)."""
        out: list[bytes] = []
        if self._flow:
            self._close(self._flow[0], out)
        block = {"type": "tool_use", "id": tool_id or self._ids("toolu_"), "name": name, "input": {}}
        self._tools[key] = self._open_block("tool_use", block, out)
        self.tool_emitted = True
        return out

    def tool_args(self, key: object, partial_json: str) -> list[bytes]:
        if not partial_json or key not in self._tools:
            return []
        return [self._delta(self._tools[key], {"type": "input_json_delta", "partial_json": partial_json})]

    def close_all(self) -> list[bytes]:
        """Close every open block in ascending index order; forget tool keys."""
        out: list[bytes] = []
        for index in sorted(self._open):
            self._close(index, out)
        self._tools.clear()
        return out

    def finish(self, stop_reason: str, usage: dict | None) -> list[bytes]:
        """The closing frames: message_start if still owed, every open block
        closed, one message_delta, message_stop."""
        out: list[bytes] = []
        self._start_message(out)
        out.extend(self.close_all())
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": final_stop(stop_reason, self.tool_emitted), "stop_sequence": None},
            "usage": usage or {"input_tokens": 0, "output_tokens": 0},
        }
        out.append(encode_event(delta))
        out.append(_MESSAGE_STOP)
        return out

