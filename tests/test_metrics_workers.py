"""The totals a multi-worker host's /health and /metrics read from every
worker's value files, while a worker's file is still being made."""

from __future__ import annotations

import os
import subprocess

from ocproxy.metrics import Metrics
from tests.procs import PYTHON

#: One worker: opens two streams and answers three requests, then exits
#: (its files stay, as a live worker's do).
_WORKER = """
from ocproxy.metrics import Metrics
m = Metrics()
m.stream_opened(); m.stream_opened()
for _ in range(3):
    m.inc("requests_received")
"""


def test_a_worker_file_still_empty_does_not_fail_the_totals(tmp_path, monkeypatch):
    """A worker creates its value file empty and sizes it a moment later
    (prometheus/client_python#1199): a scrape in between, or after a worker
    killed in between, must still add up everyone else."""
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(shared))
    subprocess.run([PYTHON, "-c", _WORKER], env=env, check=True, timeout=60)
    (shared / "counter_999999.db").write_bytes(b"")  # the window: created, not sized yet
    (shared / "gauge_livesum_999999.db").write_bytes(b"")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))
    metrics = Metrics()

    snap = metrics.snapshot()
    assert snap["requests_received"] == 3
    assert snap["streams_open"] == 2
    text = metrics.prometheus({}, {})
    assert "ocproxy_requests_received_total 3.0" in text
    assert "ocproxy_streams_open 2.0" in text
