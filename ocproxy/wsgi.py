"""``ocproxy.wsgi:application`` for WSGI hosts (gunicorn, waitress, mod_wsgi).

Built from the same configuration lookup as ``ocproxy serve`` (``--config``
does not exist here: use ``OCPROXY_CONFIG``). The streaming model keeps all
socket writes in the host's request thread, so heartbeats and streaming work
the same under any PEP 3333 host; give the host threads (e.g.
``gunicorn -k gthread --threads 32``) because every open stream holds one.

Shutdown. gunicorn has its own graceful SIGTERM (stop accepting, wait up to
``--graceful-timeout`` for in-flight requests). waitress installs no signal
handler at all, so SIGTERM would kill the process mid-stream and cut frames.
When the host left SIGTERM at its default, :class:`HostShutdown` takes it:
in-flight requests and streams get the grace period
(``OCPROXY_SHUTDOWN_GRACE_MS``, default 10 s), the rest end with an SSE
``error`` event via :meth:`ProxyApp.close`, and then SIGINT is raised so the
host runs its own orderly stop (waitress: close the listener, exit 0).
Hosts that installed a handler (gunicorn, mod_wsgi) are left alone and the
app is closed from ``atexit``, which also stops the log queue's listener
after the last line.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time

from ocproxy.app import ProxyApp, create_app
from ocproxy.config import load_config, resolve_config_path
from ocproxy.logs import LogQueue, secrets_of, setup_logging
from ocproxy.daemon import grace_from_env

log = logging.getLogger("ocproxy.wsgi")


class HostShutdown:
    """Graceful SIGTERM for hosts without one. Owner of the one drain
    thread (started by the signal, joined by :meth:`at_exit`) and of the
    log queue (stopped by :meth:`at_exit`). ``_lock`` guards ``_thread``
    and ``_closed``."""

    def __init__(self, app: ProxyApp, grace: float, logs: LogQueue | None = None):
        self.app = app
        self.grace = grace
        self.logs = logs
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def install(self) -> bool:
        """Take SIGTERM only if nobody else did (and we are on the main
        thread, the only one allowed to set handlers)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return False
        signal.signal(signal.SIGTERM, self._on_sigterm)
        return True

    def _on_sigterm(self, signum, frame) -> None:
        # A background job started from a script inherits SIGINT ignored,
        # and the SIGINT raised after the drain would then never stop the
        # host. Handlers can only be set here, on the main thread.
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        with self._lock:
            if self._thread is not None:
                return
            log.info("shutting down server... (signal %d)", signum)
            self._thread = threading.Thread(target=self._drain, name="ocproxy-wsgi-shutdown", daemon=True)
            self._thread.start()

    def _drain(self) -> None:
        deadline = time.monotonic() + self.grace
        while not self.app.idle() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.close()
        # The host's own stop path (waitress catches KeyboardInterrupt,
        # closes its listener and channels, and returns from serve()).
        os.kill(os.getpid(), signal.SIGINT)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.app.close()

    def at_exit(self) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.grace + 10)
        self.close()
        log.info("server stopped")
        if self.logs is not None:
            self.logs.stop()


_config = load_config(resolve_config_path(None))
_logs = setup_logging(_config.log_level, secrets=secrets_of(_config))
application = create_app(_config)
shutdown = HostShutdown(application, grace_from_env(), _logs)
shutdown.install()
atexit.register(shutdown.at_exit)
