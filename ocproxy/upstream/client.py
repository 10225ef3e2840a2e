"""HTTP to the upstreams: pooled sessions, per-attempt limits, abortable reads.

Why not just ``requests.post(timeout=...)``: requests only knows a per-read
timeout, but an attempt has three limits — a whole-attempt deadline, an idle
gap renewed by every byte, and "the client left, stop now".
So every attempt gets an :class:`Attempt` handle. The urllib3 connection that
carries the attempt registers itself with the handle, which lets

* the reading thread set the socket timeout before every read to
  ``min(idle limit, time left)``, and
* any other thread abort a blocked read at once by shutting the socket down
  (client gone, server shutdown).

There is deliberately no client-wide timeout: a long stream that keeps
sending must not be cut off by one.

Whole answers from an upstream reached directly skip requests altogether
(``direct.py``); streams, and origins behind a proxy, go through it.
"""

from __future__ import annotations

import http.client
import os
import threading
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar, merge_cookies
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from ocproxy.errors import (
    AttemptFailure,
    UpstreamConnectionError,
    UpstreamHTTPError,
)
from ocproxy.upstream.attempt import Attempt
from ocproxy.upstream.connection import (
    MAX_ERROR_BODY,
    Tracked,
    connection_failed,
    current,
    request_failed,
    too_large,
)
from ocproxy.upstream.direct import DirectPool, Redirected

#: The most one read hands back. Reads wait for data first (see
#: ``UpstreamStream``), so this size is never held by a silent stream.
READ_SIZE = 16384


class _TrackedHTTPConnection(Tracked, HTTPConnection):
    pass


class _TrackedHTTPSConnection(Tracked, HTTPSConnection):
    pass


class _TrackedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


_TRACKED_POOLS = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}


class _TrackingAdapter(HTTPAdapter):
    def __init__(self, *args, **kwargs):
        self._pools_lock = threading.Lock()  # guards _pools
        self._pools: dict[tuple, HTTPConnectionPool] = {}
        super().__init__(*args, **kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _TRACKED_POOLS

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        """The pool for an origin, found once: requests rebuilds its pool key
        (URL parse, TLS settings, key normalising) for every request, 3.7 %
        of a non-streaming request's GIL time (py-spy). A pool the pool
        manager evicted is closed (``pool`` None) and looked up again."""
        parts = urlsplit(request.url)
        key = (parts.scheme, parts.netloc, verify, cert, tuple(sorted((proxies or {}).items())))
        try:
            hash(key)
        except TypeError:  # a cert given as a list: no cache
            return super().get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
        with self._pools_lock:
            pool = self._pools.get(key)
        if pool is None or pool.pool is None:
            pool = super().get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
            with self._pools_lock:
                if len(self._pools) >= 64:
                    self._pools.clear()
                self._pools[key] = pool
        return pool

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        # Through an HTTP(S)_PROXY too, every connection must reach its Attempt.
        # A SOCKS manager keeps its own pools: ours would bypass the proxy.
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _TRACKED_POOLS
        return manager


def _new_session(origin: str, pool_maxsize: int) -> requests.Session:
    """A session for one upstream origin, with the environment read once.

    requests re-reads proxies, NO_PROXY, CA-bundle variables and ~/.netrc
    on every call when ``trust_env`` is on, a real share of a request's CPU.
    The process environment does not change under us, so it is resolved
    here, once per origin. ~/.netrc is deliberately not read: an entry for
    the upstream's host would replace the Authorization header the
    provider's key set.
    """
    session = requests.Session()
    session.trust_env = False
    session.proxies = requests.utils.get_environ_proxies(origin)
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    # Answers are small next to the prompts we send, and reads are cheapest
    # uncompressed; UpstreamStream still decodes an upstream that gzips anyway.
    session.headers["Accept-Encoding"] = "identity"
    adapter = _TrackingAdapter(pool_connections=4, pool_maxsize=pool_maxsize)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _direct_pool_for(parts, session: requests.Session, maxsize: int) -> DirectPool | None:
    """A direct pool for an origin requests would reach without a proxy and
    without credentials of the URL's own; else None (requests handles it)."""
    if parts.scheme not in ("http", "https") or "@" in parts.netloc or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    if requests.utils.select_proxy(f"{parts.scheme}://{parts.netloc}/", session.proxies):
        return None
    ca_bundle = session.verify if isinstance(session.verify, str) else None
    return DirectPool(parts.scheme, parts.hostname, port, maxsize, ca_bundle)


def _merged_headers(session: requests.Session, headers: dict) -> dict:
    """The session's headers overridden by ``headers``, as requests merges
    them (names case-insensitive; a None value drops the header)."""
    merged = CaseInsensitiveDict(session.headers)
    merged.update(headers)
    return {k: v for k, v in merged.items() if v is not None}


class UpstreamStream:
    """An open streaming response: iterate for raw byte chunks as they arrive.

    Each read first waits until the connection's own read buffer holds
    bytes, then takes them. Reading straight away makes the socket's
    buffered reader allocate a fresh ``READ_SIZE`` bytes object and block
    inside it, so every silent stream would hold one for as long as its
    upstream thinks. The wait sits below http.client's
    chunk parsing, which stays with ``read1`` so a broken chunk still fails
    the attempt.

    Bodies are decoded here: requests leaves ``raw`` compressed, and an
    upstream may gzip even though we ask for identity. Such a body is read
    directly, as urllib3's decoder may hold output the socket no longer
    shows.
    """

    def __init__(self, response: requests.Response, attempt: Attempt):
        self._response = response
        self._attempt = attempt

    def _http_response(self) -> http.client.HTTPResponse | None:
        """The http.client response whose buffer to wait on, if any."""
        if self._response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity"):
            return None
        source = getattr(self._response.raw, "_fp", None)
        return source if isinstance(source, http.client.HTTPResponse) else None

    def __iter__(self):
        raw = self._response.raw
        attempt = self._attempt
        source = self._http_response()
        while True:
            attempt.set_read_timeout(attempt.next_wait())
            try:
                # fp is None once http.client has read the whole body; no
                # length left means the same while the upstream keeps the
                # socket open, so waiting would only run into the read limit.
                if source is not None and source.fp is not None and source.length != 0:
                    source.fp.peek(1)
                data = raw.read1(READ_SIZE, decode_content=True)
            except (ReadTimeoutError, TimeoutError):  # urllib3's read1, our peek
                attempt.check()
                raise attempt.timeout_failure() from None
            except (Urllib3Error, OSError, requests.RequestException) as exc:  # resets, bad chunks, bad gzip
                attempt.check()
                raise UpstreamConnectionError(f"upstream read failed: {exc}", reason="read failed") from None
            attempt.check()  # an abort shows up as EOF: never mistake it for success
            if not data:
                return
            yield data

    def close(self) -> None:
        self._response.close()


class UpstreamClient:
    """Per upstream host (scheme + netloc): one pooled ``requests.Session``,
    and a direct pool for whole answers when the host is reached directly."""

    def __init__(self, pool_maxsize: int = 50):
        self._pool_maxsize = pool_maxsize
        self._lock = threading.Lock()  # guards _sessions, _direct and _urls
        self._sessions: dict[str, requests.Session] = {}
        self._direct: dict[str, DirectPool | None] = {}
        self._urls: dict[str, str] = {}  # upstream URL -> as requests prepares it

    def _origin(self, url: str) -> tuple[requests.Session, DirectPool | None]:
        """The session for ``url``'s origin, and its direct pool if it has one."""
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._sessions[key] = _new_session(key, self._pool_maxsize)
                self._direct[key] = _direct_pool_for(parts, session, self._pool_maxsize)
            return session, self._direct[key]

    def _session(self, url: str) -> requests.Session:
        return self._origin(url)[0]

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
            direct, self._direct = [p for p in self._direct.values() if p is not None], {}
        for s in sessions:
            s.close()
        for p in direct:
            p.close()

    def _prepared_url(self, url: str) -> str:
        """``url`` as requests sends it (quoted, IDNA host), prepared once."""
        with self._lock:
            prepared = self._urls.get(url)
        if prepared is None:
            request = requests.PreparedRequest()
            request.prepare_url(url, None)
            prepared = request.url
            with self._lock:
                if len(self._urls) >= 1024:  # URLs come from the config; bounded anyway
                    self._urls.clear()
                self._urls[url] = prepared
        return prepared

    def _prepare(self, session: requests.Session, url: str, headers: dict, body: bytes) -> requests.PreparedRequest:
        """What ``session.post(url, data=body, headers=headers)`` would send.

        ``Session.request`` merges the session's settings, environment and
        cookies into a new request and re-parses the URL on every call: a
        third of a non-streaming request's GIL time under load (py-spy,
        bench/README.md). Here the URL is prepared once per URL, the
        session's headers merged as ``merge_setting`` does, the headers
        still checked by ``prepare_headers``, and the session's cookies
        sent only when it holds some.
        """
        prepared = requests.PreparedRequest()
        prepared.method = "POST"
        prepared.url = self._prepared_url(url)
        prepared.prepare_headers(_merged_headers(session, headers))
        prepared.body = body
        prepared.prepare_content_length(body or None)
        if len(session.cookies):
            prepared.prepare_cookies(merge_cookies(RequestsCookieJar(), session.cookies))
        else:
            prepared._cookies = RequestsCookieJar()  # what a redirect's cookies are gathered in
        return prepared

    def _send(self, url: str, headers: dict, body: bytes, attempt: Attempt) -> requests.Response:
        wait = attempt.next_wait()
        current.attempt = attempt
        current.read_timeout = wait
        try:
            session = self._session(url)
            if "@" in urlsplit(url).netloc:  # credentials in the URL: requests' own auth handling
                response = session.post(url, data=body, headers=headers, stream=True,
                                        timeout=(min(wait, 30.0), wait))
            else:
                response = session.send(self._prepare(session, url, headers, body), stream=True,
                                        timeout=(min(wait, 30.0), wait), verify=session.verify, cert=session.cert,
                                        proxies=session.proxies, allow_redirects=True)
        except requests.Timeout:
            attempt.check()
            raise attempt.timeout_failure() from None
        except requests.ConnectionError as exc:
            attempt.check()
            raise connection_failed(exc) from None
        except requests.RequestException as exc:
            attempt.check()
            raise request_failed(exc) from None
        finally:
            current.attempt = current.read_timeout = None
        try:
            attempt.check()
        except BaseException:
            response.close()
            raise
        if response.status_code >= 400:
            try:
                text = _read_all(UpstreamStream(response, attempt), MAX_ERROR_BODY).decode("utf-8", "replace")
            except AttemptFailure:
                text = ""
            finally:
                response.close()
            raise UpstreamHTTPError(response.status_code, text, response.headers.get("Retry-After"))
        return response

    def post(self, url: str, headers: dict, body: bytes, attempt: Attempt, max_bytes: int = 256 << 20) -> bytes:
        """A non-streaming attempt: the whole body, bounded by the attempt."""
        session, direct = self._origin(url)
        if direct is not None:
            parts = urlsplit(self._prepared_url(url))
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            try:
                return direct.post(path, _merged_headers(session, headers), body, attempt, max_bytes)
            except Redirected:
                pass  # sent again through requests, which follows redirects as it always did
        response = self._send(url, headers, body, attempt)
        try:
            return _read_all(UpstreamStream(response, attempt), max_bytes)
        finally:
            response.close()

    def open_stream(self, url: str, headers: dict, body: bytes, attempt: Attempt) -> UpstreamStream:
        return UpstreamStream(self._send(url, headers, body, attempt), attempt)


def _read_all(stream: UpstreamStream, max_bytes: int) -> bytes:
    chunks = []
    size = 0
    for chunk in stream:
        size += len(chunk)
        if size > max_bytes:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)
