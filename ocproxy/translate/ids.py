"""Where generated message and tool ids come from.

Translators never invent randomness: the caller hands them an id factory, a
callable that turns a prefix (``"msg_"``, ``"toolu_"``) into an id unique
among the ids it returns. Tests pass ``sequential()`` and get predictable
ids; the relay passes ``sequential(<random hex>)`` made outside this package,
so ids from different attempts and processes do not collide.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

IdFactory = Callable[[str], str]


def sequential(seed: str = "") -> IdFactory:
    """Ids ``prefix + seed + counter`` (counter as at least six hex digits)."""
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}{seed}{next(counter):06x}"
