"""Logging set-up: one structured line per event, level from config/env."""

from __future__ import annotations

import logging
import sys

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "error": logging.ERROR}


def level_of(name: str) -> int:
    """Any unknown level name behaves as info (config.md §6.1)."""
    return _LEVELS.get((name or "").lower(), logging.INFO)


def setup_logging(level: str, stream=None) -> None:
    root = logging.getLogger("ocproxy")
    if not any(getattr(h, "_ocproxy", False) for h in root.handlers):
        handler = logging.StreamHandler(stream or sys.stdout)
        handler.setFormatter(logging.Formatter("time=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"))
        handler._ocproxy = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False
    set_level(level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def set_level(level: str) -> None:
    logging.getLogger("ocproxy").setLevel(level_of(level))
