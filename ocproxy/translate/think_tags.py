"""Reasoning written inline in a chat answer's text as ``<think>…</think>``.

Some chat upstreams (MiniMax M2 on its OpenAI API, Qwen and R1-style models
behind vLLM or llama.cpp) put the reasoning in ``content`` between think tags
instead of a separate field. ``ThinkTagSplitter`` cuts such text, fed in
pieces as it streams, into thinking and text, wherever the pieces split a
tag. Pure: strings in, ``(kind, text)`` pieces out.

Only a ``<think>`` that opens the answer (after blank space) starts
reasoning, so an answer that merely mentions the tag later keeps it as text.
Some models start inside the reasoning and only ever send ``</think>`` (the
opening tag is part of their prompt template); for those, text is held back
until ``</think>`` shows it was reasoning, or the answer ends (or a tool call
starts) without it, which shows it was text.
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"

THINKING = "thinking"
TEXT = "text"

# Model ids whose answers may begin inside the reasoning, the opening tag
# being in their prompt template (MiniMax M2 and M2.1 served that way).
_STARTS_INSIDE = ("minimax",)


def starts_inside_reasoning(model_id: str) -> bool:
    lowered = model_id.lower()
    return any(marker in lowered for marker in _STARTS_INSIDE)


def reasoning_inline(model_id: str) -> bool:
    """MiniMax's OpenAI API wants earlier reasoning back inside the
    assistant's content, in think tags, as it sent it."""
    return "minimax" in model_id.lower()


def inline(reasoning: str, text: str) -> str:
    """Reasoning and answer as one content string, reasoning in think tags."""
    return f"{OPEN}{reasoning}{CLOSE}\n\n{text}"


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a proper start of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class ThinkTagSplitter:
    """States: ``lead`` (only blank space so far, or the start of a tag),
    ``held`` (could still be reasoning whose opening tag was never sent),
    ``think`` (inside ``<think>``), ``gap`` (blank space after ``</think>``)
    and ``text`` (the answer: passed through)."""

    def __init__(self, *, starts_inside: bool = False):
        self._starts_inside = starts_inside
        self._state = "lead"
        # True once every further piece is plain text, unchanged (an
        # attribute, not a property: the stream's fast path reads it per chunk)
        self.passthrough = False
        self._buffer = ""  # lead: blank space and a tag's start; think: a tag's start
        # held: the pieces (joined once, so a long reasoning costs linear
        # time) and their last few characters, where a split tag may begin
        self._held: list[str] = []
        self._tail = ""

    def reasoning_sent_apart(self) -> None:
        """The upstream sends its reasoning in a field of its own, so the
        text is the answer: nothing more is held for a missing ``<think>``."""
        self._starts_inside = False

    def _enter(self, state: str) -> None:
        self._state = state
        self.passthrough = state == "text"

    def feed(self, piece: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if piece:
            self._feed(piece, out)
        return out

    def _feed(self, piece: str, out: list[tuple[str, str]]) -> None:
        state = self._state
        if state == "text":
            out.append((TEXT, piece))
            return
        if state == "gap":
            self._after_close(piece, out)
            return
        if state == "held":
            self._feed_held(piece, out)
            return
        data = self._buffer + piece
        self._buffer = ""
        if state == "lead":
            body = data.lstrip()
            if body.startswith(OPEN):
                self._enter("think")
                self._feed_think(body[len(OPEN):], out)
            elif OPEN.startswith(body):
                self._buffer = data  # blank space or the start of the tag: wait
            elif self._starts_inside:
                self._enter("held")
                self._feed_held(data, out)
            else:
                self._enter("text")
                out.append((TEXT, data))
        else:
            self._feed_think(data, out)

    def _feed_held(self, piece: str, out: list[tuple[str, str]]) -> None:
        window = self._tail + piece
        end = window.find(CLOSE)
        if end < 0:
            self._held.append(piece)
            self._tail = window[-(len(CLOSE) - 1):]
            return
        before = "".join(self._held)
        data = before + piece
        end += len(before) - len(self._tail)
        self._held, self._tail = [], ""
        if data[:end]:
            out.append((THINKING, data[:end]))
        self._after_close(data[end + len(CLOSE):], out)

    def _feed_think(self, data: str, out: list[tuple[str, str]]) -> None:
        end = data.find(CLOSE)
        if end >= 0:
            if data[:end]:
                out.append((THINKING, data[:end]))
            self._after_close(data[end + len(CLOSE):], out)
            return
        keep = _partial_suffix(data, CLOSE)
        if len(data) > keep:
            out.append((THINKING, data[: len(data) - keep]))
        self._buffer = data[len(data) - keep:]

    def _after_close(self, rest: str, out: list[tuple[str, str]]) -> None:
        # The answer after the reasoning usually starts with blank lines that
        # only separated it from the tag: the "gap" state drops them.
        rest = rest.lstrip()
        self._enter("text" if rest else "gap")
        if rest:
            out.append((TEXT, rest))

    def flush(self) -> list[tuple[str, str]]:
        """What is still held, at the end of the answer or before a tool
        call: held text that never met ``</think>`` is text; the unfinished
        end of a think span is still reasoning."""
        data, state = self._buffer + "".join(self._held), self._state
        self._buffer, self._held, self._tail = "", [], ""
        if state in ("lead", "held"):
            # nothing decided it was reasoning: the answer simply began
            if data.strip() or state == "held":
                self._enter("text")
            return [(TEXT, data)] if data else []
        if state == "think":
            return [(THINKING, data)] if data else []
        return []


def split_whole(content: str, *, starts_inside: bool = False) -> list[tuple[str, str]]:
    """A whole answer's text cut into thinking and text pieces, in order."""
    splitter = ThinkTagSplitter(starts_inside=starts_inside)
    return splitter.feed(content) + splitter.flush()
