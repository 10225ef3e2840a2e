"""Counters and latency for ``/health`` and ``/metrics``.

In memory, since process start; they survive config reloads because the
application keeps one ``Metrics`` for its whole life.
"""

from __future__ import annotations

import threading
import time
from collections import deque

COUNTERS = (
    "requests_received",
    "requests_success",
    "requests_failed",
    "requests_streamed",
    "rate_limited",
    "fallbacks",
    "client_cancelled",
    "hedges_started",
    "hedges_won",
)

#: /health says "degraded" when this many requests in a row all failed.
RECENT = 3

# Prometheus histogram buckets, in seconds.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

_HELP = {
    "requests_received": "Messages requests that passed validation",
    "requests_success": "Requests answered successfully (streams relayed to their end)",
    "requests_failed": "Requests where every model failed, or a stream failed after its payload began",
    "requests_streamed": "Messages requests with stream=true",
    "rate_limited": "Requests refused by the rate limiter",
    "fallbacks": "Upstream attempts that failed and moved the chain on",
    "client_cancelled": "Requests whose client went away before the answer was complete",
    "hedges_started": "Streams that started the next model because the first gave no byte within hedge_after_ms",
    "hedges_won": "Hedged streams answered by the model started second",
}


class Metrics:
    """``_lock`` guards every counter, the per-model counts, the latency
    samples, the histogram, the last failure per model and the recent
    outcomes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._models: dict[str, int] = {}
        self._samples: deque[float] = deque(maxlen=1000)  # ms
        self._bucket_counts = [0] * len(BUCKETS)
        self._latency_sum = 0.0
        self._last_failure: dict[str, dict] = {}  # model id -> {"error", "at"}
        self._recent: deque[bool] = deque(maxlen=RECENT)  # True: answered

    def model_failed(self, model_id: str, description: str) -> None:
        """One attempt on ``model_id`` failed; ``description`` says how,
        without secrets (``errors.describe``)."""
        with self._lock:
            self._last_failure[model_id] = {"error": description, "at": int(time.time())}

    def outcome(self, ok: bool) -> None:
        """A request ended answered (True) or with every model failed."""
        with self._lock:
            self._recent.append(ok)

    def recent_all_failed(self) -> bool:
        with self._lock:
            return len(self._recent) == RECENT and not any(self._recent)

    def last_failures(self) -> dict[str, dict]:
        with self._lock:
            return {k: dict(v) for k, v in sorted(self._last_failure.items())}

    def inc(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def success(self, model_id: str, latency_s: float) -> None:
        with self._lock:
            self._counts["requests_success"] += 1
            self._models[model_id] = self._models.get(model_id, 0) + 1
            self._samples.append(latency_s * 1000.0)
            self._latency_sum += latency_s
            for i, bound in enumerate(BUCKETS):
                if latency_s <= bound:
                    self._bucket_counts[i] += 1

    def snapshot(self) -> dict:
        with self._lock:
            samples = sorted(self._samples)
            out = dict(self._counts)
            out["models"] = dict(self._models)
            out["p95_latency_ms"] = _percentile(samples, 0.95)
            out["p99_latency_ms"] = _percentile(samples, 0.99)
            out["_buckets"] = list(self._bucket_counts)
            out["_sum"] = self._latency_sum
            return out

    def prometheus(self, extra_gauges: dict[str, tuple[str, float]], breakers: dict[str, str]) -> str:
        snap = self.snapshot()
        lines: list[str] = []
        for name in COUNTERS:
            lines += [f"# HELP ocproxy_{name}_total {_HELP[name]}", f"# TYPE ocproxy_{name}_total counter",
                      f"ocproxy_{name}_total {snap[name]}"]
        lines += ["# HELP ocproxy_model_success_total Successful requests per model",
                  "# TYPE ocproxy_model_success_total counter"]
        for model, n in sorted(snap["models"].items()):
            lines.append(f'ocproxy_model_success_total{{model="{_label(model)}"}} {n}')
        for name, (help_text, value) in extra_gauges.items():
            lines += [f"# HELP ocproxy_{name} {help_text}", f"# TYPE ocproxy_{name} gauge", f"ocproxy_{name} {value:g}"]
        lines += ["# HELP ocproxy_circuit_breaker_open 1 when the model's breaker is not closed",
                  "# TYPE ocproxy_circuit_breaker_open gauge"]
        for model, state in sorted(breakers.items()):
            lines.append(f'ocproxy_circuit_breaker_open{{model="{_label(model)}",state="{state}"}} '
                         f'{0 if state == "closed" else 1}')
        lines += ["# HELP ocproxy_request_duration_seconds Latency of successful requests",
                  "# TYPE ocproxy_request_duration_seconds histogram"]
        for bound, n in zip(BUCKETS, snap["_buckets"]):
            lines.append(f'ocproxy_request_duration_seconds_bucket{{le="{bound:g}"}} {n}')
        lines.append(f'ocproxy_request_duration_seconds_bucket{{le="+Inf"}} {snap["requests_success"]}')
        lines.append(f"ocproxy_request_duration_seconds_sum {snap['_sum']:.6f}")
        lines.append(f"ocproxy_request_duration_seconds_count {snap['requests_success']}")
        return "\n".join(lines) + "\n"


def _percentile(sorted_samples: list[float], q: float) -> int:
    if not sorted_samples:
        return 0
    index = min(int(len(sorted_samples) * q), len(sorted_samples) - 1)
    return int(sorted_samples[index])


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
