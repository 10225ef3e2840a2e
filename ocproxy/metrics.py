"""Counters and latency for ``/health`` and ``/metrics``, kept by
``prometheus_client``.

One process: the values live in this ``Metrics``' own registry, since
process start; they survive config reloads because the application keeps
one ``Metrics`` for its whole life. Several worker processes (a WSGI host
with ``-w N``): with ``PROMETHEUS_MULTIPROC_DIR`` set before the workers
start (``ocproxy.gunicorn_conf`` does it), ``prometheus_client`` writes
every worker's values to files there and each scrape, and ``/health``,
reads the totals of all of them. Latency percentiles, the last failure per
model and the recent outcomes are this process's own.
"""

from __future__ import annotations

import glob
import os
import threading
import time
from collections import deque
from typing import Callable

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily


class _WorkerFiles(multiprocess.MultiProcessCollector):
    """Every worker's values, without the files that hold none yet.

    A worker creates its file empty and sizes it a moment later; a scrape
    that reads it in between fails as a whole (``struct.error``), and one
    left empty by a worker killed then fails every scrape after it
    (prometheus/client_python#1199). An empty file has nothing to add.
    """

    def collect(self):
        files = []
        for name in glob.glob(os.path.join(self._path, "*.db")):
            try:
                if os.path.getsize(name) > 0:
                    files.append(name)
            except OSError:
                continue
        return self.merge(files, accumulate=True)


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

# The *_created series add a line per counter and say nothing a scrape needs.
prometheus_client.disable_created_metrics()


def multiprocess_dir() -> str | None:
    """The directory shared by a host's workers, when there is one."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _same_name(model_id: str) -> str:
    return model_id


class _Scrape:
    """One exposition: the counters (this process's or every worker's) plus
    gauges computed at scrape time."""

    def __init__(self, source, gauges: list[GaugeMetricFamily]):
        self._source = source
        self._gauges = gauges

    def collect(self):
        yield from self._source.collect()
        yield from self._gauges


class Metrics:
    """``label`` maps a model id to its series name (``state.names``), so the
    per-model series stay bounded. ``_lock`` guards the latency samples, the
    last failure per model and the recent outcomes; the prometheus_client
    metrics have their own locks."""

    def __init__(self, label: Callable[[str], str] = _same_name) -> None:
        self._label = label
        path = multiprocess_dir()
        if path is not None:  # prometheus_client opens its value files there at once
            os.makedirs(path, exist_ok=True)
        self.registry = CollectorRegistry()
        self._counters = {name: Counter(f"ocproxy_{name}", _HELP[name], registry=self.registry) for name in COUNTERS}
        self._model_success = Counter("ocproxy_model_success", "Successful requests per model", ["model"],
                                      registry=self.registry)
        self._tokens = Counter("ocproxy_tokens", "Tokens the upstreams reported, per model that answered and kind "
                               "(input, output, cache_read, cache_write)", ["model", "kind"], registry=self.registry)
        self._cost = Counter("ocproxy_cost_usd", "Estimated cost in US dollars from the catalog's prices, per model",
                             ["model"], registry=self.registry)
        # livesum: a scrape under several workers adds up the live workers' streams
        self._streams = Gauge("ocproxy_streams_open", "Streaming responses currently open", registry=self.registry,
                              multiprocess_mode="livesum")
        self._latency = Histogram("ocproxy_request_duration_seconds", "Latency of successful requests",
                                  buckets=BUCKETS, registry=self.registry)
        self._lock = threading.Lock()
        self._samples: deque[float] = deque(maxlen=1000)  # ms
        self._last_failure: dict[str, dict] = {}  # model label -> {"error", "at"}
        self._recent: deque[bool] = deque(maxlen=RECENT)  # True: answered

    def model_failed(self, model_id: str, description: str) -> None:
        """One attempt on ``model_id`` failed; ``description`` says how,
        without secrets (``errors.describe``)."""
        with self._lock:
            self._last_failure[self._label(model_id)] = {"error": description, "at": int(time.time())}

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
        self._counters[name].inc(n)

    def success(self, model_id: str, latency_s: float) -> None:
        self._counters["requests_success"].inc()
        self._model_success.labels(self._label(model_id)).inc()
        self._latency.observe(latency_s)
        with self._lock:
            self._samples.append(latency_s * 1000.0)

    def stream_opened(self) -> None:
        self._streams.inc()

    def stream_closed(self) -> None:
        self._streams.dec()

    def usage(self, model_id: str, tokens, cost_usd: float | None) -> None:
        """What one answered request used (``usage.record.Tokens``)."""
        model = self._label(model_id)
        for kind in ("input", "output", "cache_read", "cache_write"):
            count = getattr(tokens, kind)
            if count:
                self._tokens.labels(model, kind).inc(count)
        if cost_usd:
            self._cost.labels(model).inc(cost_usd)

    def _source(self):
        """Where the values are read: every worker's files, or this registry."""
        path = multiprocess_dir()
        if path is None:
            return self.registry
        registry = CollectorRegistry()
        _WorkerFiles(registry, path)
        return registry

    def snapshot(self) -> dict:
        out: dict = dict.fromkeys(COUNTERS, 0)
        out["streams_open"] = 0
        models: dict[str, int] = {}
        buckets = dict.fromkeys(BUCKETS, 0)
        latency_sum = 0.0
        for family in self._source().collect():
            for sample in family.samples:
                name = sample.name
                if name == "ocproxy_model_success_total":
                    model = sample.labels["model"]
                    models[model] = models.get(model, 0) + int(sample.value)
                elif name == "ocproxy_request_duration_seconds_bucket" and sample.labels["le"] != "+Inf":
                    bound = float(sample.labels["le"])
                    if bound in buckets:
                        buckets[bound] += int(sample.value)
                elif name == "ocproxy_request_duration_seconds_sum":
                    latency_sum += sample.value
                elif name == "ocproxy_streams_open":
                    out["streams_open"] += int(sample.value)
                elif name.startswith("ocproxy_") and name.endswith("_total") and name[8:-6] in out:
                    out[name[8:-6]] += int(sample.value)
        with self._lock:
            samples = sorted(self._samples)
        out["models"] = dict(sorted(models.items()))
        out["p95_latency_ms"] = _percentile(samples, 0.95)
        out["p99_latency_ms"] = _percentile(samples, 0.99)
        out["_buckets"] = [buckets[b] for b in BUCKETS]
        out["_sum"] = latency_sum
        return out

    def prometheus(self, extra_gauges: dict[str, tuple[str, float]], breakers: dict[str, str]) -> str:
        """The exposition text: the counters and histogram (every worker's
        under a multi-worker host), ``extra_gauges`` (name -> (help, value))
        and one ``circuit_breaker_open`` series per breaker."""
        gauges = []
        for name, (help_text, value) in extra_gauges.items():
            gauge = GaugeMetricFamily(f"ocproxy_{name}", help_text)
            gauge.add_metric([], value)
            gauges.append(gauge)
        open_gauge = GaugeMetricFamily("ocproxy_circuit_breaker_open", "1 when the model's breaker is not closed",
                                       labels=["model", "state"])
        for model, state in sorted(breakers.items()):
            open_gauge.add_metric([model, state], 0 if state == "closed" else 1)
        gauges.append(open_gauge)
        return generate_latest(_Scrape(self._source(), gauges)).decode()


def _percentile(sorted_samples: list[float], q: float) -> int:
    if not sorted_samples:
        return 0
    index = min(int(len(sorted_samples) * q), len(sorted_samples) - 1)
    return int(sorted_samples[index])
