"""Hot reload: the holder that publishes the live config, and its triggers
(a polling file watcher and SIGHUP).

The watcher polls the config file's directory entry -- (mtime, size, inode)
of the *name* -- every 0.25 s instead of using inotify, so it needs no extra
dependency and still catches editors that save by writing a temp file and
renaming it over the config (the inode changes). Every change restarts a
500 ms debounce timer; a burst of saves gives one reload. SIGHUP reloads at
once. The reload itself is :meth:`ConfigHolder.reload`: validated first, so
a broken file keeps the old config and logs the error.

Both triggers run the reload on the watcher thread: a signal handler only
records the request, because it may interrupt code holding the logging or
holder lock in the main thread.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from typing import Callable, Mapping

from ocproxy.config import Config, ConfigError, load_config
from ocproxy.logs import apply_config

log = logging.getLogger("ocproxy.reload")

POLL_SECONDS = 0.25
DEBOUNCE_SECONDS = 0.5


# The holder logs as "ocproxy.config": its messages are about the config,
# and that is the logger name users already filter on.
config_log = logging.getLogger("ocproxy.config")

ReloadCallback = Callable[[Config], "Config | None"]


def _timeouts(c: Config) -> tuple[int, int, int, int]:
    return (
        c.opencode_go.timeout_ms,
        c.opencode_go.streaming_timeout_ms,
        c.opencode_zen.timeout_ms,
        c.opencode_zen.streaming_timeout_ms,
    )


class ConfigHolder:
    """The one place the live Config is published.

    Readers take ``holder.current`` once per request and keep that object, so
    a request never mixes two configs. Publishing is a single reference
    assignment, so a reader sees the whole old or the whole new Config.

    Lock: ``self._lock`` -- the holder's only lock. It serialises writers
    (``swap`` and ``reload``: a file-watch reload and a SIGHUP reload must not
    interleave); readers never take it.
    """

    def __init__(
        self,
        config: Config,
        *,
        env: Mapping[str, str] | None = None,
        cli_host: str | None = None,
        cli_port: int | None = None,
    ):
        self._config = config
        self._lock = threading.Lock()
        self._callbacks: list[ReloadCallback] = []
        self.path = config.source_path  # hot reload re-reads this same file
        self._env = env  # None: the process environment at reload time
        self.cli_host = cli_host
        self.cli_port = cli_port

    @property
    def current(self) -> Config:
        return self._config

    def swap(self, new: Config) -> Config:
        """Publish ``new``; returns the config it replaced."""
        with self._lock:
            old, self._config = self._config, new
            return old

    def add_callback(self, callback: ReloadCallback) -> None:
        """Run on every reloaded config before it is published.

        A callback may return a Config to publish instead (Configs are
        frozen, so that is how one adjusts a value); returning None keeps it.
        """
        self._callbacks.append(callback)

    def reload(self) -> bool:
        """Re-run the load pipeline; publish on success, keep the old on error."""
        with self._lock:
            env = os.environ if self._env is None else self._env
            if self.path is not None and not _regular_file(self.path):
                # Opening a FIFO (or a device) would block the watcher, and
                # with it the shutdown that joins it.
                config_log.error("config reload failed: %s is not a regular file", self.path)
                return False
            try:
                new = load_config(self.path, env, cli_host=self.cli_host, cli_port=self.cli_port)
            except ConfigError as exc:
                config_log.error("config reload failed: %s", "; ".join(str(p) for p in exc.problems))
                return False
            old = self._config
            if (old.host, old.port) != (new.host, new.port):
                config_log.warning(
                    "host/port changed but requires server restart to take effect (old %s:%s, new %s:%s)",
                    old.host, old.port, new.host, new.port,
                )
            if _timeouts(old) != _timeouts(new):
                config_log.info(
                    "timeout config updated, takes effect immediately "
                    "(go timeout_ms=%d streaming_timeout_ms=%d, zen timeout_ms=%d streaming_timeout_ms=%d)",
                    *_timeouts(new),
                )
            for callback in self._callbacks:
                try:
                    replaced = callback(new)
                except Exception:  # one bad callback must not block the reload
                    config_log.exception("config reload callback failed; skipped")
                    continue
                if isinstance(replaced, Config):
                    new = replaced
            self._config = new
            config_log.info("config reloaded successfully")
            return True


def _regular_file(path: str) -> bool:
    """A missing file is left to the loader, which says so."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True


def _signature(path: str) -> "tuple[int, int, int] | None":
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class Reloader:
    """Watches ``config_path`` and reloads ``holder`` on change or SIGHUP.

    Owner of one thread, started by :meth:`start`, stopped and joined by
    :meth:`stop`. ``_cond`` (with its lock) guards ``_pending`` (SIGHUP
    messages not yet handled) and ``_running``.
    """

    def __init__(self, holder: ConfigHolder, config_path: str, *, cli_host: str | None = None,
                 cli_port: int | None = None, poll: float = POLL_SECONDS, debounce: float = DEBOUNCE_SECONDS):
        self.holder = holder
        self.path = os.path.abspath(config_path)
        # The holder re-reads its own path with the CLI overrides; keep them in step.
        if holder.path is None:
            holder.path = self.path
        if cli_host is not None:
            holder.cli_host = cli_host
        if cli_port is not None:
            holder.cli_port = cli_port
        self.poll = poll
        self.debounce = debounce
        self._cond = threading.Condition(threading.Lock())
        self._pending: list[str] = []
        self._running = False
        self._thread: threading.Thread | None = None
        # logging.level (and the secrets the log redacts) follow every reload
        holder.add_callback(apply_config)

    def start(self) -> None:
        with self._cond:
            if self._running:
                return
            self._running = True
            self._thread = threading.Thread(target=self._run, name="ocproxy-reload", daemon=True)
            self._thread.start()
        log.info("hot reload enabled, watching %s", self.path)

    def stop(self) -> None:
        with self._cond:
            self._running = False
            thread, self._thread = self._thread, None
            self._cond.notify_all()
        if thread is not None:
            thread.join()

    def reload_now(self, message: str = "reloading config") -> None:
        """Reload without debounce (SIGHUP). Safe from a signal handler: it
        only queues the request for the watcher thread; without a running
        thread (tests, embedding) it reloads synchronously."""
        with self._cond:
            if self._running:
                self._pending.append(message)
                self._cond.notify_all()
                return
        log.info("%s", message)
        self.holder.reload()

    def _run(self) -> None:
        last = _signature(self.path)
        due: float | None = None  # when the debounce timer fires
        while True:
            with self._cond:
                if not self._running:
                    return
                if not self._pending:
                    self._cond.wait(self.poll)
                if not self._running:
                    return
                pending, self._pending = self._pending, []
            for message in pending:
                log.info("%s", message)
                self._reload()
            current = _signature(self.path)
            now = time.monotonic()
            if current != last:
                last = current
                due = now + self.debounce  # each change restarts the timer
            if due is not None and now >= due:
                due = None
                if current is None:
                    # Mid-rename or deleted: nothing to read. A rename puts the
                    # file back and that is a change again.
                    log.debug("config file %s is missing; not reloading", self.path)
                    continue
                log.info("config file changed, reloading: %s", self.path)
                self._reload()

    def _reload(self) -> None:
        try:
            self.holder.reload()
        except Exception:  # the watcher must outlive any bug in one reload
            log.exception("config reload failed")

