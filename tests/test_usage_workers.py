"""Several gunicorn worker processes write one ledger (WAL): no row is lost."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.fakes import chat_completion, json_body
from tests.procs import GO_CHAT, clean_env, config_dict, free_port, message_body, wait_for, wait_health, write_json

REQUESTS = 60


def gunicorn() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    found = beside if os.access(beside, os.X_OK) else shutil.which("gunicorn")
    if not found:
        pytest.skip("gunicorn is not installed in this environment")
    return found


def count(path) -> int:
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def test_three_gunicorn_workers_lose_no_ledger_row(tmp_path, upstream, procs):
    upstream.on(GO_CHAT, *[json_body(chat_completion("ok")) for _ in range(REQUESTS)])
    port = free_port()
    ledger = tmp_path / "usage.db"
    config = tmp_path / "config.json"
    write_json(config, config_dict(upstream, port, "sk-workers-upstream-key-0001",
                                   usage={"database_path": str(ledger)}))
    home = tmp_path / "home"
    home.mkdir()
    proc = procs.start([gunicorn(), "-k", "gthread", "--threads", "8", "-w", "3", "-b", f"127.0.0.1:{port}",
                        "ocproxy.wsgi:application"], clean_env(home, OCPROXY_CONFIG=str(config)), name="gunicorn")
    url = f"http://127.0.0.1:{port}"
    wait_health(url, proc, timeout=30)

    def send(i: int) -> int:
        # a new connection per request spreads them over the workers
        return requests.post(url + "/v1/messages", json=message_body(False, text=f"hi {i}"),
                             headers={"Connection": "close"}, timeout=30).status_code

    with ThreadPoolExecutor(12) as pool:
        assert list(pool.map(send, range(REQUESTS))) == [200] * REQUESTS
    assert wait_for(lambda: count(ledger) >= REQUESTS, 20)
    assert count(ledger) == REQUESTS
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    assert conn.execute("SELECT COUNT(DISTINCT request_id), SUM(output_tokens) FROM requests").fetchone() == (
        REQUESTS, 5 * REQUESTS)
    conn.close()
