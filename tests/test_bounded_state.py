"""Per-model state (breakers, metric series, last failures) exists only for
configured and catalog models; every other name shares "unknown", so what
clients send cannot grow memory, /health or /metrics."""

from __future__ import annotations

import json
import threading

import pytest
import requests

from ocproxy.config import ModelConfig
from ocproxy.metrics import Metrics
from ocproxy.reload import ConfigHolder
from ocproxy.routing.breaker import BreakerRegistry
from ocproxy.state.names import UNKNOWN, ModelNames
from tests.conftest import GO_CHAT, chain, make_config, replace
from tests.fakes import chat_completion, json_body, status
from tests.procs import PYTHON, clean_env, config_dict, free_port, wait_health, write_json


def test_only_configured_and_catalog_ids_get_their_own_entry(upstream):
    holder = ConfigHolder(make_config(upstream, **chain("my-private-model", "kimi-k2.6")))
    names = ModelNames(lambda: holder.current)
    metrics = Metrics(names.label)
    breakers = BreakerRegistry(label=names.label)
    for model in ("my-private-model", "glm-5.1", "x" * 1_000_000, "made-up-1", "made-up-2"):
        metrics.success(model, 0.01)
        metrics.model_failed(model, "status 500")
        breakers.get(model).record_failure()
    assert metrics.snapshot()["models"] == {"glm-5.1": 1, "my-private-model": 1, UNKNOWN: 3}
    assert set(metrics.last_failures()) == {"glm-5.1", "my-private-model", UNKNOWN}
    assert set(breakers.states()) == {"glm-5.1", "my-private-model", UNKNOWN}
    assert breakers.get("made-up-1") is breakers.get("made-up-2")
    # a reload that names a new model gives it its own entry from then on
    holder.swap(replace(holder.current, model_overrides={"alias": ModelConfig(model_id="made-up-1")}))
    assert names.label("made-up-1") == "made-up-1" and names.label("made-up-2") == UNKNOWN


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("count, name_len", [
    (1_000, 20_000),
    pytest.param(10_000, 2_000, marks=pytest.mark.load),  # ~1 min: with make test-load
], ids=["1000-names-of-20kB", "10000-names-of-2kB"])
def test_distinct_model_names_leave_health_and_metrics_small(tmp_path, upstream, procs, count, name_len):
    """Through the real server (``ocproxy serve``, its own process):
    ``count`` requests, each naming a different model of ``name_len``
    characters (20 MB of names in all), a quarter of them charged to a
    failing first model."""
    calls = {"n": 0}
    lock = threading.Lock()

    def sometimes_failing(h, rec):
        with lock:
            calls["n"] += 1
            n = calls["n"]
        model = json.loads(rec.body)["model"]
        if model == "glm-5.1" and n % 4 == 0:
            status(500, {"error": {"message": "boom"}})(h, rec)
        else:
            json_body(chat_completion("ok", model=model))(h, rec)

    upstream.on(GO_CHAT, sometimes_failing)
    port = free_port()
    config = tmp_path / "config.json"
    write_json(config, config_dict(upstream, port, "sk-bounded-test", respect_requested_model=True,
                                   models={"default": {"provider": "opencode-go", "model_id": "glm-5.1"},
                                           "fast": {"provider": "opencode-go", "model_id": "glm-5.1"}},
                                   fallbacks={"default": [{"provider": "opencode-go", "model_id": "kimi-k2.6"}]},
                                   circuit_breaker={"threshold": 1_000_000},
                                   logging={"level": "error"}))
    home = tmp_path / "home"
    home.mkdir()
    proc = procs.start([PYTHON, "-m", "ocproxy", "serve", "--config", str(config)], clean_env(home), name="serve")
    url = f"http://127.0.0.1:{port}"
    wait_health(url, proc)
    warm = {"model": "warm", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(50):
        requests.post(url + "/v1/messages", json=warm, timeout=10).raise_for_status()
    before = _rss(proc.pid)
    failures: list[int] = []

    def client(offset: int) -> None:
        with requests.Session() as session:
            for i in range(offset, count, 4):
                name = f"client-model-{i:05d}-" + "m" * name_len
                resp = session.post(url + "/v1/messages", json={**warm, "model": name}, timeout=30)
                if resp.status_code != 200:
                    failures.append(resp.status_code)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    health = requests.get(url + "/health", timeout=10)
    metrics = requests.get(url + "/metrics", timeout=10)
    grown = _rss(proc.pid) - before
    assert len(health.content) < 4_000, len(health.content)
    assert len(metrics.content) < 8_000, len(metrics.content)
    body = health.json()
    assert set(body["circuit_breakers"]) <= {"glm-5.1", "kimi-k2.6"}
    assert sum(body["models"].values()) == count + 50 and set(body["models"]) <= {"glm-5.1", "kimi-k2.6"}
    # the names add up to 20 MB: kept per model, RSS would grow by more than that
    assert grown < 12_000_000, grown
