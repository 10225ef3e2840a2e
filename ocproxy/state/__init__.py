"""Where the proxy's shared mutable state lives: circuit breakers,
rate-limit windows and key-rotation counters.

``state: "memory"`` (the default) keeps them in this process: right for
``ocproxy serve`` and a one-worker WSGI host. ``{"backend": "redis", …}``
keeps them in Redis (``redis_store``) so that every worker and host agrees.
The backend is chosen at start; changing it takes a restart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocproxy.config import Config
from ocproxy.ratelimit import RateLimiter
from ocproxy.routing.breaker import BreakerRegistry
from ocproxy.state.names import ModelNames
from ocproxy.upstream.identity import KeyRotator

if TYPE_CHECKING:
    from ocproxy.state.redis_store import RedisLink

log = logging.getLogger("ocproxy.state")

MEMORY = "memory"
REDIS = "redis"


@dataclass
class State:
    backend: str
    limiter: RateLimiter
    breakers: BreakerRegistry
    keys: KeyRotator
    link: RedisLink | None = None

    def close(self) -> None:
        if self.link is not None:
            self.link.close()


def build_state(cfg: Config, names: ModelNames) -> State:
    threshold, recovery = cfg.breaker_threshold, cfg.breaker_recovery_ms / 1000.0
    if cfg.state.backend != REDIS:
        return State(MEMORY, RateLimiter(cfg.rate_limit_per_minute),
                     BreakerRegistry(threshold, recovery, label=names.label), KeyRotator())
    # Imported only for this backend: the redis package costs the memory
    # backend ~10 MB of RSS and a quarter second of start-up.
    from ocproxy.state.redis_store import RedisLink, SharedBreakerRegistry, SharedKeyRotator, SharedRateLimiter

    link = RedisLink(cfg.state.url, cfg.state.prefix)
    log.info("state: breakers, rate limits and key rotation shared through redis at %s, keys under %r",
             link.where, cfg.state.prefix)
    return State(REDIS, SharedRateLimiter(link, cfg.rate_limit_per_minute),
                 SharedBreakerRegistry(link, threshold, recovery, names.label), SharedKeyRotator(link), link)


def several_workers_warning(workers: int, backend: str) -> str | None:
    """What a host with ``workers`` processes says at start when each would
    keep its own breakers, rate limits and key rotation."""
    if workers <= 1 or backend != MEMORY:
        return None
    return (f"{workers} worker processes with state \"memory\": each worker keeps its own circuit breakers, "
            "rate-limit windows and key rotation (limits multiply by the worker count); "
            'set "state": {"backend": "redis", "url": "redis://..."} to share them')
