"""gunicorn settings for running ocproxy with several worker processes::

    gunicorn -c python:ocproxy.gunicorn_conf -w 4 -b 127.0.0.1:3456 ocproxy.wsgi:application

- ``PROMETHEUS_MULTIPROC_DIR``: a fresh directory made here, in the master,
  before any worker exists (unless already set, then emptied of old values),
  so ``/metrics`` and ``/health`` add up every worker; removed at exit.
- A worker that dies has its live gauges dropped (``child_exit``); its
  counters stay in the totals.
- One warning at start when several workers run with ``state: "memory"``:
  breakers, rate limits and key rotation would then be per worker.
- gthread workers with 32 threads each: every open stream holds a thread.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile

worker_class = "gthread"
threads = 32

_made_dir: str | None = None
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # values left by an earlier run would be added to this one's
    for _old in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(_old)
else:
    _made_dir = tempfile.mkdtemp(prefix="ocproxy-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made_dir


def when_ready(server) -> None:
    from ocproxy.config import load_config, resolve_config_path
    from ocproxy.state import several_workers_warning

    # the workers load (and log) the config themselves: only the backend matters here
    config_log = logging.getLogger("ocproxy.config")
    config_log.disabled = True
    try:
        backend = load_config(resolve_config_path(None)).state.backend
    except Exception:  # noqa: BLE001 - a broken config is reported by the workers
        return
    finally:
        config_log.disabled = False
    warning = several_workers_warning(server.cfg.workers, backend)
    if warning:
        server.log.warning("%s", warning)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _made_dir is not None:
        shutil.rmtree(_made_dir, ignore_errors=True)
