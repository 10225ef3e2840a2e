"""Who we are to OpenCode: API keys in rotation, auth headers, session ids."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from typing import TYPE_CHECKING

from .. import __version__
from ..translate.content import first_user_text

if TYPE_CHECKING:
    from ..request import MessagesRequest

ANTHROPIC_VERSION = "2023-06-01"

#: OpenCode asks clients to name themselves rather than send a generic agent.
USER_AGENT = f"ocproxy/{__version__}"

#: Client headers an Anthropic-format upstream gets as the client sent them
#: (WSGI environ key -> header): Claude Code's gateway protocol needs them,
#: or beta-gated fields such as ``context_management`` are rejected.
_ANTHROPIC_CLIENT_HEADERS = {"HTTP_ANTHROPIC_BETA": "anthropic-beta", "HTTP_ANTHROPIC_VERSION": "anthropic-version"}

# One id per proxy process: the last resort of session_id().
_PROCESS_SESSION = "ocproxy-" + uuid.uuid4().hex

# Legacy Claude Code user ids: ``user_<hash>_account_<uuid>_session_<uuid>``.
# The leading ``_`` keeps a JSON key such as ``"session_id"`` from matching.
_SESSION_IN_USER_ID = re.compile(r"(?:^|_)session_([0-9A-Za-z-]+)")

#: A session id goes out as a header and into log lines: printable ASCII
#: without spaces, at most this long, is passed on as it is.
MAX_SESSION_ID = 128
_PLAIN_SESSION = re.compile(r"[!-~]{1,%d}" % MAX_SESSION_ID)


def _header_safe(value: str) -> str:
    """The client's id when it is plain, else a hash of it: still one
    stable id per conversation, and never a header that cannot be sent
    (a non-Latin-1 character) or a log line that runs on."""
    if _PLAIN_SESSION.fullmatch(value):
        return value
    return "ocproxy-" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def session_id(header_value: str | None, req: MessagesRequest) -> str:
    """The ``x-opencode-session`` value: one stable id per conversation.

    OpenCode Go rejects requests without it (400 MissingSessionID). Claude
    Code's own session id wins; else the session part of
    ``metadata.user_id``; else a hash of the conversation's first user
    message, which is the same on every turn of that conversation. An id
    that is not plain ASCII or longer than ``MAX_SESSION_ID`` is hashed.
    """
    if header_value and header_value.strip():
        return _header_safe(header_value.strip())
    metadata = req.metadata
    if metadata is not None:
        user_id = metadata.get("user_id")
        if isinstance(user_id, str):
            from_json = _session_in_json(user_id)
            if from_json:
                return _header_safe(from_json)
            match = _SESSION_IN_USER_ID.search(user_id)
            if match:
                return _header_safe(match.group(1))
    first = first_user_text(req.messages)
    if first:
        return "ocproxy-" + hashlib.sha256(first.encode("utf-8", "replace")).hexdigest()[:32]
    return _PROCESS_SESSION


def _session_in_json(user_id: str) -> str:
    """Newer Claude Code sends ``user_id`` as a JSON object in a string,
    ``{"device_id": …, "account_uuid": …, "session_id": …}``."""
    text = user_id.strip()
    if not text.startswith("{"):
        return ""
    try:
        value = json.loads(text)
    except ValueError:
        return ""
    session = value.get("session_id") if isinstance(value, dict) else None
    return session.strip() if isinstance(session, str) else ""


def auth_headers(endpoint: str, key: str, user_agent: str = "") -> dict[str, str]:
    """Auth the way each upstream API expects it, and who is asking
    (``user_agent``, else ``USER_AGENT``)."""
    headers = {"Content-Type": "application/json", "User-Agent": user_agent or USER_AGENT}
    if endpoint == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
    if not key:
        return headers
    headers["Authorization"] = f"Bearer {key}"
    if endpoint == "anthropic":
        headers["x-api-key"] = key
    elif endpoint == "gemini":
        headers["x-goog-api-key"] = key
    return headers


def upstream_headers(endpoint: str, key: str, user_agent: str, environ: dict) -> dict[str, str]:
    """``auth_headers`` plus, for an Anthropic-format upstream, the client's
    ``anthropic-beta`` and ``anthropic-version``; no other client header
    goes upstream."""
    headers = auth_headers(endpoint, key, user_agent)
    if endpoint == "anthropic":
        for env_key, name in _ANTHROPIC_CLIENT_HEADERS.items():
            value = environ.get(env_key, "").strip()
            if value:
                headers[name] = value
    return headers


class KeyRotator:
    """Round-robin over the key pool, one counter per provider.

    ``_lock`` guards ``_counters``; counters survive config reloads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, int] = {}

    def next_key(self, provider: str, pool: tuple[str, ...]) -> str:
        if not pool:
            return ""
        with self._lock:
            n = self._counters.get(provider, 0)
            self._counters[provider] = n + 1
        return pool[n % len(pool)]
