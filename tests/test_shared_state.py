"""The Redis state backend against a real redis-server: breakers, rate-limit
windows and key-rotation counters shared by several "workers" (each its own
connection and objects, as separate processes would have), the same state
table as the memory backend, prefixed expiring keys, and per-process state
with one warning while Redis is unreachable."""

from __future__ import annotations

import json
import logging
import random

import pytest


from ocproxy.routing.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from ocproxy.state.redis_store import RedisLink, SharedBreakerRegistry, SharedKeyRotator, SharedRateLimiter

PREFIX = "t-ocproxy:"


class FakeClock:
    def __init__(self, now=1_700_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def links(server, n, prefix=PREFIX):
    return [RedisLink(server.url, prefix) for _ in range(n)]


def same_name(model_id):
    return model_id


def test_breaker_state_table_matches_the_memory_breaker_step_for_step(redis_server):
    """Random sequences of allow / success / failure / time passing, run on
    the memory breaker and on the Redis one: every answer and state agrees."""
    rng = random.Random(17)
    seen = set()
    for run in range(20):
        mem_clock, red_clock = FakeClock(1000.0), FakeClock()
        memory = CircuitBreaker(3, 30.0, mem_clock)
        registry = SharedBreakerRegistry(RedisLink(redis_server.url, f"{PREFIX}{run}:"), 3, 30.0, same_name,
                                         clock=red_clock)
        shared = registry.get("m")
        for step in range(60):
            op = rng.choice(["allow", "allow", "success", "failure", "wait", "wait_short"])
            if op == "wait":
                mem_clock.now += 31
                red_clock.now += 31
                continue
            if op == "wait_short":
                mem_clock.now += 5
                red_clock.now += 5
                continue
            if op == "allow":
                assert shared.allow() == memory.allow(), (run, step)
            elif op == "success":
                shared.record_success()
                memory.record_success()
            else:
                shared.record_failure()
                memory.record_failure()
            got, want = shared.snapshot(), memory.snapshot()
            seen.add(want["state"])
            assert (got["state"], got["failures"], got["successes"]) == (want["state"], want["failures"],
                                                                         want["successes"]), (run, step, op)
    assert seen == {CLOSED, OPEN, HALF_OPEN}


def test_a_breaker_opened_by_one_worker_is_open_in_every_worker(redis_server):
    clock = FakeClock()
    workers = [SharedBreakerRegistry(link, 3, 30.0, same_name, clock=clock) for link in links(redis_server, 3)]
    for worker in workers:  # one failure in each worker: 3 in all
        assert worker.get("kimi-k2.6").allow() is True
        worker.get("kimi-k2.6").record_failure()
    assert [w.get("kimi-k2.6").allow() for w in workers] == [False, False, False]
    assert all(w.states() == {"kimi-k2.6": OPEN} for w in workers)
    clock.now += 31
    # half-open: the request that moves it admitted, then 3 probes across all workers, then refused
    admitted = [w.get("kimi-k2.6").allow() for w in workers + workers]
    assert admitted == [True, True, True, True, False, False]
    assert workers[2].states() == {"kimi-k2.6": HALF_OPEN}
    for worker in workers:
        worker.get("kimi-k2.6").record_success()
    assert [w.states()["kimi-k2.6"] for w in workers] == [CLOSED] * 3
    workers[0].get("glm-5.1").record_failure()
    workers[1].reset_all()  # a fully failed request closes every breaker, everywhere
    assert workers[2].get("glm-5.1").snapshot()["failures"] == 0


def test_the_rate_limit_window_is_one_for_every_worker(redis_server):
    workers = [SharedRateLimiter(link, 10) for link in links(redis_server, 3)]
    verdicts = [workers[i % 3].allow("alice") for i in range(30)]
    assert verdicts == [True] * 10 + [False] * 20
    assert workers[0].allow("bob") is True  # keys are independent
    workers[1].configure(0)
    assert workers[1].allow("alice") is True  # 0 = off


def test_keys_are_prefixed_and_expire(redis_server):
    link = RedisLink(redis_server.url, "team-a:")
    SharedRateLimiter(link, 5).allow("x" * 100_000)  # a huge client key is stored as a fixed-size digest
    registry = SharedBreakerRegistry(link, 3, 30.0, same_name)
    registry.get("kimi-k2.6").record_failure()
    SharedKeyRotator(link).next_key("opencode-go", ("k1", "k2"))
    client = redis_server.client()
    keys = client.keys("*")
    assert len(keys) == 4 and all(k.startswith("team-a:") for k in keys), keys
    assert all(len(k) < 80 for k in keys)
    for key in keys:
        assert 0 < client.pttl(key) <= 86_400_000, key
    ttl = {k.split(":")[1]: client.pttl(k) for k in keys}
    assert ttl["rl"] <= 60_000


def test_key_rotation_is_one_round_robin_across_workers(redis_server):
    pool = ("k1", "k2", "k3")
    workers = [SharedKeyRotator(link) for link in links(redis_server, 2)]
    got = [workers[i % 2].next_key("opencode-go", pool) for i in range(6)]
    assert got == ["k1", "k2", "k3", "k1", "k2", "k3"]
    assert workers[0].next_key("opencode-zen", pool) == "k1"  # one counter per provider


def test_unreachable_redis_falls_back_to_process_state_with_one_warning(redis_server, caplog):
    caplog.set_level(logging.WARNING, logger="ocproxy.state")
    link = RedisLink(redis_server.url, PREFIX, retry_s=0.0)
    limiter = SharedRateLimiter(link, 2)
    registry = SharedBreakerRegistry(link, 2, 30.0, same_name)
    rotator = SharedKeyRotator(link)
    assert limiter.allow("a") is True
    redis_server.stop()
    # every operation still answers, from this process's own state
    assert [limiter.allow("a"), limiter.allow("a"), limiter.allow("a")] == [True, True, False]
    breaker = registry.get("m")
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.allow() is False and registry.states() == {"m": OPEN}
    assert rotator.next_key("opencode-go", ("k1", "k2")) == "k1"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unreachable" in warnings[0], warnings
    assert redis_server.url.split("//")[1].split("/")[0] in warnings[0]
    redis_server.start()  # back: shared state again (the Redis breaker never saw those failures)
    assert registry.get("m").allow() is True
    assert any("answers again" in r.getMessage() for r in caplog.records)


def _scripts_run(client) -> int:
    """Scripts Redis ran (the backend sends nothing else on a request's path;
    the commands inside a script are not round trips)."""
    stats = client.info("commandstats")
    return sum(int(stats.get(name, {}).get("calls", 0)) for name in ("cmdstat_evalsha", "cmdstat_eval"))


def test_a_healthy_request_costs_one_redis_round_trip(redis_server, upstream, start_proxy, sdk):
    """Through the real server: one script per answered request, with a
    rate limit or without (the admission reads the window and which
    breakers need asking; a clean breaker's success costs nothing). A
    model with a stored breaker is asked again: two."""
    from ocproxy.config.types import StateConfig
    from tests.conftest import GO_CHAT, make_config
    from tests.fakes import chat_completion, json_body

    upstream.on(GO_CHAT, json_body(chat_completion("fine")))
    state = StateConfig("redis", redis_server.url, "t-rt:")
    client = redis_server.client()
    for limit, per_request in ((0, 1), (1000, 1)):
        proxy = start_proxy(make_config(upstream, state=state, rate_limit_per_minute=limit))
        anthropic_client = sdk(proxy)
        ask = dict(model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        anthropic_client.messages.create(**ask)  # loads the scripts
        before = _scripts_run(client)
        for _ in range(10):
            assert anthropic_client.messages.create(**ask).content[0].text == "fine"
        assert _scripts_run(client) - before == 10 * per_request


@pytest.mark.parametrize("value, expected", [
    (None, ("memory", "", "ocproxy:")),
    ("memory", ("memory", "", "ocproxy:")),
    ({"backend": "memory"}, ("memory", "", "ocproxy:")),
    ({"backend": "redis", "url": "redis://10.0.0.5:6379/2"}, ("redis", "redis://10.0.0.5:6379/2", "ocproxy:")),
    ({"backend": "redis", "url": "rediss://h:6380/0", "prefix": "team-a:"}, ("redis", "rediss://h:6380/0", "team-a:")),
    ({"backend": "redis", "url": "${REDIS_URL}"}, ("redis", "unix:///run/redis.sock", "ocproxy:")),
], ids=["absent", "memory-string", "memory-object", "redis", "redis-tls-prefix", "redis-url-from-env"])
def test_the_state_setting(tmp_path, value, expected):
    from ocproxy.config import load_config

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"api_key": "sk-x", **({} if value is None else {"state": value})}))
    state = load_config(str(path), {"HOME": str(tmp_path), "REDIS_URL": "unix:///run/redis.sock"}).state
    assert (state.backend, state.url, state.prefix) == expected


@pytest.mark.parametrize("value, problem", [
    ("redis", '$.state: must be one of "memory"'),
    ({"backend": "redis"}, "$.state.url"),
    ({"backend": "redis", "url": "http://redis:6379"}, "$.state.url"),
    ({"backend": "memcached"}, "$.state.backend"),
    (7, "$.state"),
], ids=["redis-string", "redis-without-url", "redis-http-url", "unknown-backend", "number"])
def test_a_wrong_state_setting_is_refused_with_its_path(tmp_path, value, problem):
    from ocproxy.config import ConfigError, load_config

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"api_key": "sk-x", "state": value}))
    with pytest.raises(ConfigError) as info:
        load_config(str(path), {"HOME": str(tmp_path)})
    assert problem in str(info.value), str(info.value)


def test_a_hung_redis_is_treated_as_unreachable(redis_server, caplog):
    """Redis stopped by SIGSTOP (accepts nothing, answers nothing): the read
    timeout ends the wait and this process's own state answers."""
    import signal

    caplog.set_level(logging.WARNING, logger="ocproxy.state")
    link = RedisLink(redis_server.url, PREFIX)
    limiter = SharedRateLimiter(link, 1)
    breaker = SharedBreakerRegistry(link, 1, 30.0, same_name).get("m")
    assert limiter.allow("a") is True
    redis_server.proc.send_signal(signal.SIGSTOP)
    try:
        assert breaker.allow() is True
        breaker.record_failure()
        assert breaker.allow() is False  # the local breaker took the failure
        assert limiter.allow("b") is True and limiter.allow("b") is False
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unreachable (TimeoutError" in warnings[0], warnings


def test_a_model_with_a_stored_breaker_is_still_asked_and_opens_across_requests(redis_server, upstream,
                                                                                 start_proxy, sdk):
    """The admission's view only spares a round trip for clean breakers: a
    model that failed is asked on each request, and opens at the threshold."""
    from ocproxy.config.types import StateConfig
    from tests.conftest import GO_CHAT, chain, make_config
    from tests.fakes import chat_completion, json_body, status

    calls = {"bad": 0}

    def route(h, rec):
        model = json.loads(rec.body)["model"]
        if model == "bad-model":
            calls["bad"] += 1
            return status(500, {"error": {"message": "down"}})(h, rec)
        return json_body(chat_completion("fine"))(h, rec)

    upstream.on(GO_CHAT, route)
    state = StateConfig("redis", redis_server.url, "t-admit:")
    proxy = start_proxy(make_config(upstream, state=state, rate_limit_per_minute=1000, breaker_threshold=2,
                                    **chain("bad-model", "good-model")))
    client = sdk(proxy)
    ask = dict(model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    for _ in range(5):
        assert client.messages.create(**ask).content[0].text == "fine"
    assert calls["bad"] == 2  # the threshold, then the open breaker skips it
    assert redis_server.client().hget("t-admit:breaker:bad-model", "state") == "open"
