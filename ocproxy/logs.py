"""Logging set-up: one structured line per event, level from config/env.

Every line passes through :class:`RedactingFormatter`, which replaces the
configured secrets (upstream API keys, client API keys) wherever they
appear. Code never logs a key on purpose, but upstream error bodies are
logged (they are what explains a failure) and an upstream may echo the key
it was sent ("invalid api key: sk-..."); redacting the final text is the one
place that catches every such path (contract.md "Security defaults").
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Iterable

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "error": logging.ERROR}

REDACTED = "[redacted]"
#: Shorter strings are not treated as secrets: replacing "a" everywhere
#: would garble the log and such a key protects nothing anyway.
MIN_SECRET_LEN = 6

#: Lock ``_secrets_lock`` guards writes to ``_secrets``; the formatter reads
#: the tuple reference without it (one atomic load of an immutable tuple).
_secrets_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def level_of(name: str) -> int:
    """Any unknown level name behaves as info (config.md §6.1)."""
    return _LEVELS.get((name or "").lower(), logging.INFO)


def set_secrets(secrets: Iterable[str]) -> None:
    """Strings that must never reach a log line; longest first, so a key
    that contains another one is replaced whole."""
    global _secrets
    unique = {s for s in secrets if s and len(s) >= MIN_SECRET_LEN}
    with _secrets_lock:
        _secrets = tuple(sorted(unique, key=len, reverse=True))


def secrets_of(config) -> list[str]:
    """The secrets a Config carries: the upstream key pool and client keys."""
    return [*config.key_pool, *config.client_api_keys]


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str, stream=None, secrets: Iterable[str] = ()) -> None:
    root = logging.getLogger("ocproxy")
    if not any(getattr(h, "_ocproxy", False) for h in root.handlers):
        handler = logging.StreamHandler(stream or sys.stdout)
        handler.setFormatter(RedactingFormatter(
            "time=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"))
        handler._ocproxy = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False
    set_secrets(secrets)
    set_level(level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def set_level(level: str) -> None:
    logging.getLogger("ocproxy").setLevel(level_of(level))


def apply_config(config) -> None:
    """Hot-reload callback: level and secrets follow the new config (§9.3)."""
    set_secrets(secrets_of(config))
    set_level(config.log_level)
