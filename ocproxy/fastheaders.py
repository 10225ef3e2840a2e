"""HTTP header blocks parsed without the email package, same result.

``http.client.parse_headers`` reads a header block and hands it to
``email.parser.Parser``, a general MIME parser. It parses the header block
of every upstream answer (``HTTPResponse.begin``) and of every request
``ocproxy serve`` reads (``BaseHTTPRequestHandler.parse_request``): py-spy
on ``ocproxy serve`` under wrk at 16 connections put 31 % of the GIL time
of a non-streaming request in it.

:func:`parse_headers` builds the same ``HTTPMessage`` directly when every
line is plain ``token: printable-ASCII`` (what real clients and upstreams
send), and leaves every other block (folded lines, bytes past ASCII, a
line without a colon, control characters) to the email parser, so its
answer is the stdlib's answer for every input. ``install`` puts it in
place of ``http.client.parse_headers``, which both readers look up when
they run.
"""

from __future__ import annotations

import http.client
import re
import threading

#: ``name: value`` as the email parser would read it: the name a token, the
#: value printable ASCII or tabs (its leading blanks are not part of it).
_PLAIN_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([\t\x20-\x7e]*)\r?\n")

_stdlib_parse_headers = http.client.parse_headers
_install_lock = threading.Lock()  # guards the swap of http.client.parse_headers


def parse_headers(fp, _class=http.client.HTTPMessage):
    """``http.client.parse_headers``, without the email parser when the
    block is plain. Reads with the stdlib's own line and count limits."""
    lines = http.client._read_headers(fp)
    msg = message_of(lines, _class)
    if msg is None:
        return _stdlib_parse_headers(_Replay(lines), _class)
    return msg


def message_of(lines: list[bytes], _class=http.client.HTTPMessage):
    """The message the email parser makes of ``lines`` (a header block, its
    empty last line included), or None when the block is not plain."""
    msg = _class()
    for line in lines[:-1]:
        match = _PLAIN_LINE.fullmatch(line)
        if match is None:
            return None
        msg[match[1].decode("ascii")] = match[2].decode("ascii")
    msg.set_payload("")  # what the parser leaves after the blank line
    return msg


class _Replay:
    """Lines already read, given back to the stdlib parser one by one."""

    def __init__(self, lines: list[bytes]):
        self._lines = iter(lines)

    def readline(self, limit: int = -1) -> bytes:
        return next(self._lines, b"")


def install() -> None:
    """Parse headers here from now on, in this process (idempotent)."""
    with _install_lock:
        http.client.parse_headers = parse_headers
