"""Recorded-shape fixtures of chat upstream quirks, one JSON file per quirk.

Each file names the quirk and the public sources its shape comes from, the
upstream model it stands for, the upstream answer (``stream``: the ``data:``
payloads in order, ``[DONE]`` included when the upstream sends it; or
``whole``: the JSON body) and what the client must end up with (``expect``:
the message's content, stop reason and usage, or for a broken stream the
error text and the text that went out before it).
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load() -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(HERE.glob("*.json"))}


def sse_body(fixture: dict) -> bytes:
    """The upstream's bytes: each payload as one ``data:`` event."""
    return b"".join(b"data: " + payload.encode("utf-8") + b"\n\n" for payload in fixture["stream"])


def streaming(fixtures: dict[str, dict]) -> dict[str, dict]:
    return {name: f for name, f in fixtures.items() if "stream" in f}


def whole(fixtures: dict[str, dict]) -> dict[str, dict]:
    return {name: f for name, f in fixtures.items() if "whole" in f}
