"""The config holder: reloads publish whole configs, keep the old one on error,
and run the reload callbacks."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

from ocproxy.config import Config, load_config
from ocproxy.reload import ConfigHolder
from tests.configfiles import write

# -- reload through ConfigHolder ------------------------------------------------


def test_reload_valid_file_new_values(tmp_path):
    path = write(tmp_path, {"api_key": "k", "opencode_go": {"timeout_ms": 1000}})
    holder = ConfigHolder(load_config(path, {"HOME": str(tmp_path)}), env={"HOME": str(tmp_path)})
    write(tmp_path, {"api_key": "k2", "opencode_go": {"timeout_ms": 2000}})
    assert holder.reload() is True
    assert holder.current.api_key == "k2" and holder.current.opencode_go.timeout_ms == 2000


def test_reload_invalid_json_keeps_old(tmp_path, caplog):
    path = write(tmp_path, {"api_key": "k"})
    holder = ConfigHolder(load_config(path, {"HOME": str(tmp_path)}), env={"HOME": str(tmp_path)})
    before = holder.current
    write(tmp_path, '{"api_key": ')
    with caplog.at_level(logging.ERROR, logger="ocproxy.config"):
        assert holder.reload() is False
    assert holder.current is before
    assert any("config reload failed" in r.getMessage() for r in caplog.records)


def test_reload_callbacks_all_run_and_cli_port_survives(tmp_path, caplog):
    path = write(tmp_path, {"api_key": "k", "port": 4000})
    env = {"HOME": str(tmp_path)}
    holder = ConfigHolder(load_config(path, env, cli_port=9999), env=env, cli_port=9999)
    seen: list[str] = []

    def first(c: Config):
        seen.append("first")
        raise RuntimeError("boom")  # logged and skipped

    def second(c: Config):
        seen.append("second")
        return replace(c, log_level="debug")

    holder.add_callback(first)
    holder.add_callback(second)
    write(tmp_path, {"api_key": "k", "port": 4001, "opencode_zen": {"timeout_ms": 5}})
    with caplog.at_level(logging.INFO, logger="ocproxy.config"):
        assert holder.reload() is True
    assert seen == ["first", "second"]
    assert holder.current.port == 9999 and holder.current.log_level == "debug"
    messages = " | ".join(r.getMessage() for r in caplog.records)
    assert "timeout config updated, takes effect immediately" in messages
    assert "config reloaded successfully" in messages


def test_host_port_change_warns(tmp_path, caplog):
    path = write(tmp_path, {"api_key": "k", "port": 4000})
    env = {"HOME": str(tmp_path)}
    holder = ConfigHolder(load_config(path, env), env=env)
    write(tmp_path, {"api_key": "k", "port": 4001})
    with caplog.at_level(logging.WARNING, logger="ocproxy.config"):
        holder.reload()
    assert any("requires server restart" in r.getMessage() for r in caplog.records)


def test_holder_swap_atomic_with_concurrent_readers():
    """Readers see whole configs only: each pair of fields always agrees."""
    configs = [Config(port=1000 + i, heartbeat_interval_ms=1000 + i, api_key=f"k{i}") for i in range(4)]
    holder = ConfigHolder(configs[0])
    stop = threading.Event()
    torn: list[Config] = []
    reads = [0]

    def reader():
        while not stop.is_set():
            c = holder.current
            if not (c.port == c.heartbeat_interval_ms and c.api_key == f"k{c.port - 1000}"):
                torn.append(c)
            reads[0] += 1

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(20000):
            assert holder.swap(configs[(i + 1) % 4]) is configs[i % 4]
    finally:  # a failing writer must not leave readers spinning
        stop.set()
        for t in threads:
            t.join(5)
    assert torn == [] and reads[0] > 0


def test_reload_concurrent_with_readers(tmp_path):
    """File reloads racing readers: every config read is one whole file."""
    env = {"HOME": str(tmp_path)}
    versions = [{"api_key": f"k{i}", "port": 2000 + i, "opencode_go": {"timeout_ms": 2000 + i}} for i in range(2)]
    path = write(tmp_path, versions[0])
    holder = ConfigHolder(load_config(path, env), env=env)
    stop = threading.Event()
    torn: list[Config] = []

    def reader():
        while not stop.is_set():
            c = holder.current
            if not (c.port == c.opencode_go.timeout_ms and c.api_key == f"k{c.port - 2000}"):
                torn.append(c)

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(60):
            write(tmp_path, versions[(i + 1) % 2])
            assert holder.reload() is True
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    assert torn == []
    assert holder.current.api_key == "k0"
