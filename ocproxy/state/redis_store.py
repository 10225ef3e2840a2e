"""Breakers, rate-limit windows and key-rotation counters kept in Redis, so
every worker and every host using that Redis shares them.

Each operation is one Lua script (atomic on the server, one round trip).
Keys start with the configured prefix and expire. When Redis cannot be
reached the operation falls back to this process's own state (the memory
backend's objects), with one warning per outage; Redis is tried again after
:data:`RETRY_S`, so a restarted Redis is picked up without a restart here.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Callable, TypeVar
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ocproxy.ratelimit import WINDOW_S, RateLimiter
from ocproxy.routing.breaker import CLOSED, HALF_OPEN_MAX, BreakerRegistry, CircuitBreaker
from ocproxy.upstream.identity import KeyRotator

log = logging.getLogger("ocproxy.state")

#: Seconds before an unreachable Redis is tried again.
RETRY_S = 2.0
#: Connect and read timeout: Redis answers in well under a millisecond, so a
#: silent one is treated as down rather than holding requests.
TIMEOUT_S = 0.5
#: A breaker's record lives at least this long after its last change.
BREAKER_TTL_MS = 600_000
#: Key-rotation counters live this long after their last use.
COUNTER_TTL_MS = 86_400_000

T = TypeVar("T")


def where(url: str) -> str:
    """``host:port`` (or the socket path) of a Redis URL: never its password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


class RedisLink:
    """The client and whether Redis is usable now.

    ``_lock`` guards ``_down_until`` (None: Redis answered last time).
    """

    def __init__(self, url: str, prefix: str, retry_s: float = RETRY_S, clock: Callable[[], float] = time.monotonic):
        self.prefix = prefix
        self.where = where(url)
        # One immediate retry (a pooled connection Redis closed is reconnected);
        # past that the fallback below decides, without redis-py's backoff sleeps.
        self.client = redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S,
                                           retry=Retry(NoBackoff(), 1))
        self._retry_s = retry_s
        self._clock = clock
        self._lock = threading.Lock()
        self._down_until: float | None = None

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def script(self, source: str) -> redis.commands.core.Script:
        return self.client.register_script(source)

    @property
    def up(self) -> bool:
        with self._lock:
            return self._down_until is None

    def run(self, script, keys: list[str], args: list, fallback: Callable[[], T]) -> T | list:
        """``script``'s answer, or ``fallback()`` while Redis is unreachable."""
        with self._lock:
            if self._down_until is not None and self._clock() < self._down_until:
                return fallback()
        try:
            answer = script(keys=keys, args=args)
        except redis.RedisError as exc:
            self._failed(exc)
            return fallback()
        with self._lock:
            was_down, self._down_until = self._down_until is not None, None
        if was_down:
            log.warning("redis at %s answers again: state is shared again", self.where)
        return answer

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            first = self._down_until is None
            self._down_until = self._clock() + self._retry_s
        if first:
            log.warning(
                "redis at %s unreachable (%s: %s): breakers, rate limits and key rotation use "
                "this process's own state until it answers", self.where, type(exc).__name__, exc,
            )

    def close(self) -> None:
        self.client.close()


# -- rate limit --------------------------------------------------------------

# KEYS[1] the client's window, KEYS[2] the set of models with a stored
# breaker; ARGV limit (0: none), window ms. One round trip admits a request:
# the same fixed window as the memory limiter (it starts at the first request
# and holds the tokens left), then the models whose breaker needs asking.
_ADMIT = """
local allowed = 1
local limit = tonumber(ARGV[1])
if limit > 0 then
  local left = redis.call('GET', KEYS[1])
  if not left then
    redis.call('SET', KEYS[1], limit - 1, 'PX', ARGV[2])
  elseif tonumber(left) <= 0 then
    allowed = 0
  else
    redis.call('DECR', KEYS[1])
  end
end
local out = {allowed}
if allowed == 1 then
  for _, name in ipairs(redis.call('SMEMBERS', KEYS[2])) do table.insert(out, name) end
end
return out
"""


class SharedRateLimiter(RateLimiter):
    """The fixed-window limiter with its windows in Redis; the inherited
    in-process windows serve while Redis is unreachable."""

    def __init__(self, link: RedisLink, per_minute: int):
        super().__init__(per_minute)
        self._link = link
        self._script = link.script(_ADMIT)

    def allow(self, key: str) -> bool:
        if self.limit <= 0:  # nothing to count: no round trip
            return True
        return self.admit(key)[0]

    def admit(self, key: str) -> tuple[bool, frozenset[str] | None]:
        """Whether ``key`` may send a request now, and the models that had a
        stored breaker then (None while Redis is unreachable)."""
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        answer = self._link.run(self._script, [self._link.key("rl", digest), self._link.key("breakers")],
                                [max(self.limit, 0), int(WINDOW_S * 1000)], lambda: None)
        if answer is None:
            return RateLimiter.allow(self, key), None
        return bool(int(answer[0])), frozenset(_text(name) for name in answer[1:])


# -- circuit breakers --------------------------------------------------------

# KEYS[1] the breaker's hash, KEYS[2] the set of models with a stored breaker.
# ARGV op, now (s), threshold, recovery (s), ttl ms, half-open max, name.
# The state table of routing/breaker.py's CircuitBreaker, step for step; a
# breaker closed with no failures is stored as no key at all.
_BREAKER = """
local op, now = ARGV[1], tonumber(ARGV[2])
local threshold, recovery, hmax = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6])
local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'successes', 'probes', 'last_failure')
local state = h[1] or 'closed'
local failures, successes = tonumber(h[2] or '0'), tonumber(h[3] or '0')
local probes, last = tonumber(h[4] or '0'), tonumber(h[5] or '0')
local allowed, changed = 1, true
if op == 'allow' then
  changed = false
  if state == 'open' then
    if now - last > recovery then state = 'half_open'; probes = 0; changed = true else allowed = 0 end
  elseif state == 'half_open' then
    if probes < hmax then probes = probes + 1; changed = true else allowed = 0 end
  end
elseif op == 'success' then
  if state == 'closed' then
    changed = failures > 0; failures = 0
  elseif state == 'half_open' then
    successes = successes + 1
    if successes >= hmax then state = 'closed'; failures = 0; successes = 0 end
  else
    changed = false
  end
elseif op == 'failure' then
  last = now; failures = failures + 1
  if state == 'closed' then
    if failures >= threshold then state = 'open' end
  elseif state == 'half_open' then
    state = 'open'; successes = 0
  end
elseif op == 'reset' then
  state = 'closed'; failures = 0; successes = 0; probes = 0
else
  changed = false
end
if changed then
  if state == 'closed' and failures == 0 and successes == 0 then
    redis.call('DEL', KEYS[1])
    redis.call('SREM', KEYS[2], ARGV[7])
  else
    redis.call('HSET', KEYS[1], 'state', state, 'failures', failures, 'successes', successes,
               'probes', probes, 'last_failure', string.format('%.6f', last))
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
    redis.call('SADD', KEYS[2], ARGV[7])
    redis.call('PEXPIRE', KEYS[2], ARGV[5])
  end
end
return {allowed, state, failures, successes, probes, string.format('%.6f', last)}
"""

# KEYS[1] the set of models with a stored breaker; ARGV[1] the breaker key
# prefix; ARGV[2] 'reset' or 'states'. Members whose record expired leave.
_ALL_BREAKERS = """
local out = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. name
  if ARGV[2] == 'reset' then
    redis.call('DEL', key)
  else
    local state = redis.call('HGET', key, 'state')
    if state then
      table.insert(out, name); table.insert(out, state)
    else
      redis.call('SREM', KEYS[1], name)
    end
  end
end
if ARGV[2] == 'reset' then redis.call('DEL', KEYS[1]) end
return out
"""


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SharedBreaker:
    """One model's breaker with its state in Redis; ``local`` (an ordinary
    :class:`CircuitBreaker`) decides while Redis is unreachable.

    ``_lock`` guards ``_clean``: whether the last answer from Redis said
    closed with no failures, in which case a success changes nothing there
    and costs no round trip (the hot path: one script per request).
    """

    def __init__(self, link: RedisLink, name: str, script, params: Callable[[], tuple[int, float]],
                 local: CircuitBreaker, clock: Callable[[], float] = time.time):
        self._link = link
        self.name = name
        self._keys = [link.key("breaker", name), link.key("breakers")]
        self._script = script
        self._params = params
        self.local = local
        self._clock = clock  # wall clock: shared by every host
        self._lock = threading.Lock()
        self._clean = False

    def _run(self, op: str) -> list | None:
        threshold, recovery = self._params()
        answer = self._link.run(
            self._script, self._keys,
            [op, f"{self._clock():.6f}", threshold, recovery, max(BREAKER_TTL_MS, int(recovery * 2000)),
             HALF_OPEN_MAX, self.name],
            lambda: None,
        )
        if answer is not None:
            with self._lock:
                self._clean = _text(answer[1]) == CLOSED and int(answer[2]) == 0
        return answer

    def allow(self) -> bool:
        answer = self._run("allow")
        return self.local.allow() if answer is None else bool(int(answer[0]))

    def record_success(self) -> None:
        with self._lock:
            clean = self._clean
        if clean and self._link.up:
            return
        if self._run("success") is None:
            self.local.record_success()

    def record_failure(self) -> None:
        if self._run("failure") is None:
            self.local.record_failure()

    def reset(self) -> None:
        self.local.reset()
        self._run("reset")

    def configure(self, threshold: int, recovery_s: float) -> None:
        self.local.configure(threshold, recovery_s)

    @property
    def state(self) -> str:
        answer = self._run("peek")
        return self.local.state if answer is None else _text(answer[1])

    def snapshot(self) -> dict:
        answer = self._run("peek")
        if answer is None:
            return self.local.snapshot()
        return {"state": _text(answer[1]), "failures": int(answer[2]), "successes": int(answer[3]),
                "probes": int(answer[4]), "last_failure": float(_text(answer[5]))}


class SharedBreakerRegistry(BreakerRegistry):
    """The breaker registry whose breakers keep their state in Redis."""

    def __init__(self, link: RedisLink, threshold: int, recovery_s: float, label: Callable[[str], str],
                 clock: Callable[[], float] = time.time):
        super().__init__(threshold, recovery_s, label=label)
        self._link = link
        self._wall = clock
        self._script = link.script(_BREAKER)
        self._all_script = link.script(_ALL_BREAKERS)

    def _make(self, name: str) -> SharedBreaker:
        local = CircuitBreaker(self._threshold, self._recovery, self._clock)
        return SharedBreaker(self._link, name, self._script, self._parameters, local, self._wall)

    def for_request(self, stored: frozenset[str] | None):
        """The breakers one request asks; ``stored`` is what its admission
        read (None: Redis did not answer, every breaker asks for itself)."""
        return self if stored is None else AdmittedBreakers(self, stored)

    def _parameters(self) -> tuple[int, float]:
        with self._lock:
            return self._threshold, self._recovery

    def _across(self, op: str) -> list | None:
        return self._link.run(self._all_script, [self._link.key("breakers")], [self._link.key("breaker", ""), op],
                              lambda: None)

    def reset_all(self) -> None:
        with self._lock:
            breakers = list(self._breakers.values())
        for breaker in breakers:
            breaker.local.reset()
        self._across("reset")

    def states(self) -> dict[str, str]:
        with self._lock:
            breakers = dict(self._breakers)
        stored = self._across("states")
        if stored is None:
            return {name: b.local.state for name, b in sorted(breakers.items())}
        states = dict.fromkeys(breakers, CLOSED)
        pairs = [_text(v) for v in stored]
        states.update(zip(pairs[0::2], pairs[1::2]))
        return dict(sorted(states.items()))


class _KnownClean:
    """A breaker Redis kept no record of when the request was admitted:
    closed with no failures, so it allows and a success changes nothing,
    without asking again. A failure is recorded as usual."""

    def __init__(self, breaker: SharedBreaker):
        self._breaker = breaker

    def allow(self) -> bool:
        return True

    def record_success(self) -> None:
        pass

    def record_failure(self) -> None:
        self._breaker.record_failure()


class AdmittedBreakers:
    """The breakers as one request sees them, from the admission round
    trip: only models that had a stored breaker then are asked again."""

    def __init__(self, registry: "SharedBreakerRegistry", stored: frozenset[str]):
        self._registry = registry
        self._stored = stored

    def get(self, model_id: str):
        breaker = self._registry.get(model_id)
        return breaker if breaker.name in self._stored else _KnownClean(breaker)

    def reset_all(self) -> None:
        self._registry.reset_all()


# -- key rotation ------------------------------------------------------------

_COUNTER = """
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return n
"""


class SharedKeyRotator(KeyRotator):
    """Round-robin over the key pool with the counters in Redis, so every
    worker takes the next key of one rotation."""

    def __init__(self, link: RedisLink):
        super().__init__()
        self._link = link
        self._script = link.script(_COUNTER)

    def next_key(self, provider: str, pool: tuple[str, ...]) -> str:
        if len(pool) <= 1:  # nothing to rotate: no round trip
            return pool[0] if pool else ""
        n = self._link.run(self._script, [self._link.key("keys", provider)], [COUNTER_TTL_MS], lambda: None)
        if n is None:
            return KeyRotator.next_key(self, provider, pool)
        return pool[(int(n) - 1) % len(pool)]
