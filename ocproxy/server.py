"""``ocproxy serve``: werkzeug's threaded server around the application.

Owns the process-level concerns: binding, the banner, signals, the grace
period on shutdown, and (via ``ocproxy.reload``) hot reload. One thread per
request; no write timeout (a stream may last as long as its upstream keeps
it alive, operations.md §1).
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import sys
import threading
import time

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from ocproxy import __version__
from ocproxy.app import ProxyApp
from ocproxy.config import Config, ConfigHolder
from ocproxy.logs import setup_logging

log = logging.getLogger("ocproxy.server")

#: How long in-flight requests and streams may run on after SIGTERM/SIGINT.
GRACE_SECONDS = 10.0


class _Handler(WSGIRequestHandler):
    """Quiet access log (the app logs each request itself) and an idle bound
    on the connection: a keep-alive connection or a client that stops
    reading mid-request is dropped after 300 s (operations.md §1)."""

    timeout = 300

    def log_request(self, code="-", size="-"):
        pass


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Server:
    """A running proxy: the WSGI server, its app, and the shutdown logic."""

    def __init__(self, holder: ConfigHolder):
        self.holder = holder
        self.app = ProxyApp(holder)
        cfg = holder.current
        self.httpd: BaseWSGIServer = make_server(
            cfg.host, cfg.port, self.app, threaded=True, request_handler=_Handler
        )
        self._stop_requested = threading.Event()

    @property
    def port(self) -> int:
        return self.httpd.server_port

    def serve(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def request_stop(self) -> None:
        """Safe from a signal handler: serve_forever's own thread cannot call
        shutdown() itself, so a helper thread does it."""
        if self._stop_requested.is_set():
            return
        self._stop_requested.set()
        threading.Thread(target=self.httpd.shutdown, name="ocproxy-shutdown", daemon=True).start()

    def drain(self, grace: float = GRACE_SECONDS) -> None:
        """After the listener closed: let streams finish within ``grace``,
        then end the rest with an error event and join every thread."""
        deadline = time.monotonic() + grace
        while not self.app.idle() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.app.close()
        self.httpd.server_close()


def run(config: Config, config_path: str | None = None, cli_host: str | None = None,
        cli_port: int | None = None) -> int:
    """Serve in the foreground until SIGINT/SIGTERM; returns the exit code.

    ``config`` already carries the CLI host/port (``load_config`` applied
    them); the holder keeps them so every reload re-applies them."""
    setup_logging(config.log_level)
    holder = ConfigHolder(config, cli_host=cli_host, cli_port=cli_port)
    if not _is_loopback(config.host) and not config.client_api_keys:
        log.warning(
            "listening on %s without client_api_keys: anyone who can reach this address can spend "
            "your OpenCode credit; set client_api_keys or bind 127.0.0.1", config.host,
        )
    try:
        server = Server(holder)
    except (OSError, SystemExit) as exc:
        print(f"Error: server failed: {exc}", file=sys.stderr)
        return 1
    watcher = None
    if config.hot_reload and config_path:
        from ocproxy.reload import Reloader

        watcher = Reloader(holder, config_path, cli_host=cli_host, cli_port=cli_port)
        watcher.start()

    def on_signal(signum, frame):
        log.info("shutting down server... (signal %d)", signum)
        server.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if hasattr(signal, "SIGHUP"):
        if watcher is not None:
            signal.signal(signal.SIGHUP, lambda s, f: watcher.reload_now("received SIGHUP, reloading config"))
        else:
            signal.signal(signal.SIGHUP, lambda s, f: log.info("SIGHUP ignored: hot_reload is off"))

    print(f"Starting ocproxy v{__version__}")
    print(f"Listening on {config.host}:{server.port}")
    print(f"Forwarding to: {config.opencode_go.base_url}")
    print()
    print("Configure Claude Code with:")
    print(f"  export ANTHROPIC_BASE_URL=http://{config.host}:{server.port}")
    print("  export ANTHROPIC_AUTH_TOKEN=unused")
    print(flush=True)
    try:
        server.serve()
    finally:
        if watcher is not None:
            watcher.stop()
        server.drain()
        log.info("server stopped")
    return 0
