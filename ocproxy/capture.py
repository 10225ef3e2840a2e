"""Debug capture (``logging.capture``): each upstream exchange, request and
answer in full, as one JSON line in size-rotated files, keys redacted.

For reporting a dialect problem: turn it on, reproduce, attach the file.
Lines go through a queue to one listener thread (the stdlib's
QueueHandler/QueueListener); a request thread only enqueues. The app owns
the capture and :meth:`Capture.close` stops and joins the listener.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import time
from logging.handlers import QueueHandler, QueueListener, RotatingFileHandler

from ocproxy.logs import MIN_SECRET_LEN, REDACTED, RedactingFormatter

#: Header values never written, whatever the secrets list holds.
SECRET_HEADERS = {"authorization", "x-api-key", "x-goog-api-key", "cookie"}
#: A streamed answer is kept up to this many bytes per exchange.
STREAM_KEEP_BYTES = 1 << 20


def _body(data: bytes) -> object:
    text = data.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class Capture:
    def __init__(self, directory: str, max_bytes: int, backups: int, secrets: tuple[str, ...] = ()):
        #: the config's keys: an upstream may echo one in its answer
        self.secrets = tuple(sorted((s for s in secrets if len(s) >= MIN_SECRET_LEN), key=len, reverse=True))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.path = os.path.join(directory, "upstream.jsonl")
        handler = RotatingFileHandler(self.path, maxBytes=max_bytes, backupCount=max(backups, 1),
                                      encoding="utf-8")
        handler.setFormatter(RedactingFormatter("%(message)s"))
        os.chmod(self.path, 0o600)
        self._logger = logging.Logger("ocproxy.capture")  # not in the logging tree: only this file
        records: queue.SimpleQueue = queue.SimpleQueue()
        self._logger.addHandler(QueueHandler(records))
        self._listener = QueueListener(records, handler)
        self._handler = handler
        self._listener.start()

    def exchange(self, rid: str, model: str, url: str, headers: dict, body: bytes, status: int | None,
                 answer: bytes, error: str = "") -> None:
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "request_id": rid,
            "model": model,
            "url": url,
            "request": {"headers": {k: REDACTED if k.lower() in SECRET_HEADERS else v for k, v in headers.items()},
                        "body": _body(body)},
            "response": {"status": status, "body": _body(answer)},
        }
        if error:
            record["error"] = error
        line = json.dumps(record, ensure_ascii=False)
        for secret in self.secrets:
            line = line.replace(secret, REDACTED)
        self._logger.info("%s", line)

    def close(self) -> None:
        self._listener.stop()
        self._handler.close()


class StreamTee:
    """Iterates an upstream stream unchanged, keeping its first bytes."""

    def __init__(self, upstream):
        self._upstream = upstream
        self.kept = bytearray()

    def __iter__(self):
        for chunk in self._upstream:
            if len(self.kept) < STREAM_KEEP_BYTES:
                self.kept += chunk[: STREAM_KEEP_BYTES - len(self.kept)]
            yield chunk

    def close(self) -> None:
        self._upstream.close()
