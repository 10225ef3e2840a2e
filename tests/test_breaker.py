"""Circuit breaker: its state table, driven by a fake clock."""

import threading

import pytest

from ocproxy.routing.breaker import CLOSED, HALF_OPEN, OPEN, BreakerRegistry, CircuitBreaker


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def make(threshold=3, recovery=30.0):
    clock = FakeClock()
    return CircuitBreaker(threshold, recovery, clock), clock


def opened(threshold=3):
    b, clock = make(threshold)
    for _ in range(threshold):
        b.record_failure()
    assert b.state == OPEN
    return b, clock


def half_open():
    b, clock = opened()
    clock.now += 30.001
    assert b.allow() is True
    assert b.state == HALF_OPEN
    return b, clock


# --- closed column -----------------------------------------------------------


def test_closed_allow_true():
    b, _ = make()
    assert [b.allow() for _ in range(10)] == [True] * 10
    assert b.state == CLOSED


def test_closed_success_resets_failures():
    b, _ = make()
    b.record_failure()
    b.record_failure()
    b.record_success()
    assert b.snapshot()["failures"] == 0
    b.record_failure()
    b.record_failure()
    assert b.state == CLOSED  # "3 consecutive failures": the success broke the run


def test_closed_failure_counts_and_stamps_time():
    b, clock = make()
    clock.now = 1234.5
    b.record_failure()
    snap = b.snapshot()
    assert (snap["state"], snap["failures"], snap["last_failure"]) == (CLOSED, 1, 1234.5)


@pytest.mark.parametrize("threshold", [1, 2, 3, 5], ids=lambda t: f"closed-opens-at-threshold-{t}")
def test_closed_opens_at_threshold(threshold):
    b, _ = make(threshold)
    for _ in range(threshold - 1):
        b.record_failure()
        assert b.state == CLOSED
    b.record_failure()
    assert b.state == OPEN


# --- open column -------------------------------------------------------------


def test_open_allow_false_until_recovery_strictly_passed():
    b, clock = opened()
    assert b.allow() is False
    clock.now += 30.0  # exactly the recovery: "now - last_failure > recovery" is false
    assert b.allow() is False
    assert b.state == OPEN


def test_open_allow_after_recovery_half_opens_and_resets_probes():
    b, clock = opened()
    clock.now += 30.001
    assert b.allow() is True
    snap = b.snapshot()
    assert (snap["state"], snap["probes"]) == (HALF_OPEN, 0)


def test_open_success_changes_nothing():
    b, _ = opened()
    before = b.snapshot()
    b.record_success()
    assert b.snapshot() == before


def test_open_failure_restamps_time_and_counts():
    b, clock = opened()
    clock.now += 20
    b.record_failure()
    snap = b.snapshot()
    assert (snap["state"], snap["failures"], snap["last_failure"]) == (OPEN, 4, clock.now)
    clock.now += 20  # 40 s after opening but only 20 s after the last failure
    assert b.allow() is False


def test_open_state_reported_until_allow():
    b, clock = opened()
    clock.now += 100
    assert b.state == OPEN  # /health shows the stored state
    b.allow()
    assert b.state == HALF_OPEN


# --- half_open column --------------------------------------------------------


def test_half_open_allows_three_probes_then_refuses():
    b, _ = half_open()
    assert [b.allow() for _ in range(4)] == [True, True, True, False]
    assert b.snapshot()["probes"] == 3


def test_half_open_up_to_4_admitted():
    """The transition request plus 3 probes: 4 admitted before closing."""
    b, clock = opened()
    clock.now += 31
    admitted = [b.allow() for _ in range(6)]
    assert admitted == [True, True, True, True, False, False]


def test_half_open_three_successes_close():
    b, _ = half_open()
    b.record_success()
    b.record_success()
    assert b.state == HALF_OPEN
    b.record_success()
    snap = b.snapshot()
    assert (snap["state"], snap["failures"], snap["successes"]) == (CLOSED, 0, 0)
    assert b.allow() is True


def test_half_open_failure_reopens_for_fresh_recovery():
    b, clock = half_open()
    b.record_success()
    clock.now += 5
    b.record_failure()
    snap = b.snapshot()
    assert (snap["state"], snap["successes"], snap["last_failure"]) == (OPEN, 0, clock.now)
    clock.now += 30
    assert b.allow() is False
    clock.now += 0.01
    assert b.allow() is True


def test_closed_after_half_open_needs_full_threshold_again():
    b, _ = half_open()
    for _ in range(3):
        b.record_success()
    b.record_failure()
    b.record_failure()
    assert b.state == CLOSED
    b.record_failure()
    assert b.state == OPEN


@pytest.mark.parametrize(
    "threshold, recovery, failures_to_open, wait",
    [(0, 0, 3, 30.0), (-1, -5, 3, 30.0), (1, 0.5, 1, 0.5)],
    ids=["zero-means-default", "negative-means-default", "configured-parameters"],
)
def test_parameters(threshold, recovery, failures_to_open, wait):
    b, clock = make(threshold, recovery)
    for _ in range(failures_to_open):
        b.record_failure()
    assert b.state == OPEN
    clock.now += wait
    assert b.allow() is False
    clock.now += 0.001
    assert b.allow() is True


# --- registry ----------------------------------------------------------------


def test_registry_lazy_one_per_model_id():
    reg = BreakerRegistry(clock=FakeClock())
    assert reg.states() == {}
    a = reg.get("kimi-k2.6")
    assert reg.get("kimi-k2.6") is a
    assert reg.get("glm-5.1") is not a
    assert reg.states() == {"glm-5.1": CLOSED, "kimi-k2.6": CLOSED}


def test_registry_parameters_reach_breakers():
    clock = FakeClock()
    reg = BreakerRegistry(threshold=1, recovery_s=2.0, clock=clock)
    b = reg.get("m")
    b.record_failure()
    assert reg.states() == {"m": OPEN}
    clock.now += 2.5
    assert b.allow() is True


def test_reset_all_closes_every_breaker():
    clock = FakeClock()
    reg = BreakerRegistry(threshold=1, clock=clock)
    reg.get("a").record_failure()
    reg.get("b").record_failure()
    clock.now += 31
    reg.get("b").allow()
    reg.get("b").allow()
    reg.get("c")
    assert reg.states() == {"a": OPEN, "b": HALF_OPEN, "c": CLOSED}
    reg.reset_all()
    assert reg.states() == {"a": CLOSED, "b": CLOSED, "c": CLOSED}
    for model in "abc":
        snap = reg.get(model).snapshot()
        assert (snap["failures"], snap["successes"], snap["probes"]) == (0, 0, 0)


def test_configure_keeps_state_changes_thresholds():
    clock = FakeClock()
    reg = BreakerRegistry(threshold=3, recovery_s=30, clock=clock)
    b = reg.get("m")
    b.record_failure()
    reg.configure(threshold=2, recovery_s=5)
    assert b.snapshot()["failures"] == 1  # state kept
    b.record_failure()
    assert b.state == OPEN  # new threshold 2
    clock.now += 5.5
    assert b.allow() is True  # new recovery 5 s
    new = reg.get("n")
    new.record_failure()
    new.record_failure()
    assert new.state == OPEN  # future breakers get the new parameters
    reg.configure(threshold=0, recovery_s=0)  # <= 0: defaults
    c = reg.get("c")
    c.record_failure(), c.record_failure()
    assert c.state == CLOSED


def test_concurrency_smoke():
    clock = FakeClock()
    reg = BreakerRegistry(threshold=10_000_000, clock=clock)
    start = threading.Barrier(8)

    def worker(i):
        start.wait()
        for n in range(2000):
            b = reg.get(f"m{n % 5}")
            b.allow()
            b.record_failure()
            if n % 100 == 0:
                reg.states()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(reg.states()) == [f"m{i}" for i in range(5)]
    # no lost updates: 8 workers x 2000 failures over 5 breakers
    assert sum(reg.get(f"m{i}").snapshot()["failures"] for i in range(5)) == 16_000


def test_half_open_concurrent_admission_bounded():
    b, clock = opened()
    clock.now += 31
    results = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def worker():
        start.wait()
        ok = b.allow()
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 4
