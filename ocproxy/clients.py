"""Who is this client: its client key (checked in constant time) and its
address (``X-Forwarded-For`` believed only from a trusted proxy).

The rate limit, the log lines and the metrics key on :attr:`Client.key`:
the client key's *name* when client keys are configured, else the peer's
IP address (never its port: every new connection has a new one).
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
from dataclasses import dataclass

from ocproxy.config import ClientKey, Config

@dataclass(frozen=True)
class Client:
    """One request's client: ``name`` is the client key's name ("" when no
    client keys are configured), ``ip`` its address."""

    name: str
    ip: str

    @property
    def key(self) -> str:
        """What the rate limit counts under and the log names."""
        return self.name or self.ip


def presented_keys(environ: dict) -> list[str]:
    """The keys a request carries: ``x-api-key`` and ``Authorization: Bearer``.
    Either may carry it (Claude Code with ANTHROPIC_AUTH_TOKEN plus a stray
    x-api-key is admitted when one of them is valid)."""
    found = [environ.get("HTTP_X_API_KEY", "")]
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth[:7].lower() == "bearer ":
        found.append(auth[7:].strip())
    return [k for k in found if k]


def authenticate(environ: dict, keys: tuple[ClientKey, ...]) -> ClientKey | None:
    """The configured key the request presents, or None. Every presented
    key is compared with every configured one with ``hmac.compare_digest``,
    none skipped on a match, so the time taken says nothing about the keys."""
    match = None
    for offered in presented_keys(environ):
        # bytes: compare_digest refuses str with non-ASCII characters
        offered_bytes = offered.encode("utf-8", "surrogateescape")
        for entry in keys:
            if hmac.compare_digest(offered_bytes, entry.key.encode("utf-8", "surrogateescape")):
                match = entry
    return match


@functools.lru_cache(maxsize=32)
def _networks(cidrs: tuple[str, ...]) -> tuple:
    """Parsed once per distinct list (a config reload brings a new one)."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


def _address(text: str):
    """An IP address from a header or REMOTE_ADDR, or None; an IPv4 address
    mapped into IPv6 (``::ffff:10.0.0.1``) reads as the IPv4 one."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr, networks: tuple) -> bool:
    return any(addr.version == net.version and addr in net for net in networks)


def client_ip(environ: dict, trusted_proxies: tuple[str, ...]) -> str:
    """The client's IP address. The peer's, unless the peer is a trusted
    proxy: then ``X-Forwarded-For`` is read from the right (each proxy
    appends the address it saw) and the first address that is not a trusted
    proxy is the client. Entries left of it were written by the client
    itself and are never believed."""
    peer_text = environ.get("REMOTE_ADDR", "") or ""
    peer = _address(peer_text)
    if peer is None:
        return peer_text
    networks = _networks(tuple(trusted_proxies)) if trusted_proxies else ()
    if not networks or not _trusted(peer, networks):
        return str(peer)
    client = peer
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
    for entry in reversed(forwarded.split(",")) if forwarded else ():
        addr = _address(entry)
        if addr is None:  # garbage: the last proxy we believe saw the client
            break
        client = addr
        if not _trusted(addr, networks):
            break
    return str(client)


def identify(environ: dict, cfg: Config) -> Client | None:
    """The request's client, or None when client keys are configured and
    the request presents none of them (the caller answers 401)."""
    ip = client_ip(environ, cfg.trusted_proxies)
    if not cfg.client_api_keys:
        return Client("", ip)
    entry = authenticate(environ, cfg.client_api_keys)
    return Client(entry.name, ip) if entry is not None else None
