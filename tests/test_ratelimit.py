"""Rate limiter: a fixed window per client key, rate_limit_per_minute, 0 = off."""

import threading

import pytest

from ocproxy.ratelimit import RateLimiter, client_key


class FakeClock:
    def __init__(self):
        self.now = 500.0

    def __call__(self):
        return self.now


def test_the_request_past_the_limit_is_refused():
    rl = RateLimiter(100, FakeClock())
    results = [rl.allow("10.0.0.1") for _ in range(101)]
    assert results == [True] * 100 + [False]


def test_keys_independent():
    rl = RateLimiter(2, FakeClock())
    assert [rl.allow("a"), rl.allow("a"), rl.allow("a")] == [True, True, False]
    assert rl.allow("b") is True


def test_window_refills_after_60s_from_window_start():
    clock = FakeClock()
    rl = RateLimiter(2, clock)
    assert rl.allow("k") and rl.allow("k")
    clock.now += 30
    assert rl.allow("k") is False
    clock.now += 29.999  # 59.999 s after the window start
    assert rl.allow("k") is False
    clock.now += 0.001  # >= 60 s: refill and restart the window
    assert [rl.allow("k"), rl.allow("k"), rl.allow("k")] == [True, True, False]


def test_fixed_window_not_sliding():
    clock = FakeClock()
    rl = RateLimiter(3, clock)
    rl.allow("k")  # window starts at t=0
    clock.now += 50
    assert rl.allow("k") and rl.allow("k")
    clock.now += 10  # t=60: new window although the last requests were 10 s ago
    assert rl.allow("k") is True


@pytest.mark.parametrize("limit", [0, -1], ids=["contract-0-is-off", "contract-negative-is-off"])
def test_zero_limit_means_off(limit):
    rl = RateLimiter(limit, FakeClock())
    assert all(rl.allow("k") for _ in range(10_000))
    assert len(rl) == 0


def test_configure_changes_limit_keeps_windows():
    rl = RateLimiter(2, FakeClock())
    rl.allow("k"), rl.allow("k")
    rl.configure(3)
    assert rl.allow("k") is False  # the open window's tokens were spent
    rl.configure(0)
    assert rl.allow("k") is True


def test_memory_bounded_expired_windows_dropped():
    clock = FakeClock()
    rl = RateLimiter(5, clock)
    for i in range(1000):
        rl.allow(f"10.0.{i // 256}.{i % 256}")
    assert len(rl) == 1000
    clock.now += 61
    rl.allow("fresh")
    assert len(rl) == 1


def test_concurrent_requests_never_exceed_limit():
    rl = RateLimiter(100, FakeClock())
    allowed = []
    lock = threading.Lock()
    start = threading.Barrier(10)

    def worker():
        start.wait()
        n = sum(rl.allow("same") for _ in range(50))
        with lock:
            allowed.append(n)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 100


@pytest.mark.parametrize(
    "xff, peer, expected",
    [
        ("10.0.0.1", "127.0.0.1:5555", "10.0.0.1"),
        ("10.0.0.2, 10.0.0.1", "127.0.0.1:5555", "10.0.0.2"),
        ("  10.0.0.3  ,x", "p:1", "10.0.0.3"),
        (None, "127.0.0.1:5555", "127.0.0.1:5555"),
        ("", "127.0.0.1:5555", "127.0.0.1:5555"),
        (" , 10.0.0.1", "127.0.0.1:5555", "127.0.0.1:5555"),
    ],
    ids=["xff-single", "xff-first-entry", "xff-trimmed", "no-xff-peer",
         "empty-xff-peer", "blank-first-entry-peer"],
)
def test_client_key(xff, peer, expected):
    assert client_key(xff, peer) == expected


def test_distinct_clients_beyond_the_cap_evict_the_oldest_windows():
    clock = FakeClock()
    rl = RateLimiter(1, clock, max_keys=100)
    for i in range(1000):
        assert rl.allow(f"client-{i}") is True
        clock.now += 0.01
    assert len(rl) == 100
    assert rl.allow("client-999") is False  # the newest windows are intact
    assert rl.allow("client-0") is True  # the oldest was dropped: a fresh window


def test_huge_client_keys_are_not_kept():
    import tracemalloc

    rl = RateLimiter(1, FakeClock())
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(50):
        key = f"{i}-" + "x" * 1_000_000
        assert rl.allow(key) is True
        assert rl.allow(key) is False  # still the same client's window
        del key
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert kept < 100_000, kept
