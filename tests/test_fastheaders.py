"""ocproxy.fastheaders gives the stdlib's answer for every header block:
the same message (every attribute), read to the same place in the stream,
with the same errors past the stdlib's limits."""

from __future__ import annotations

import http.client
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocproxy import fastheaders

stdlib = fastheaders._stdlib_parse_headers

TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# plain values, plus everything that sends a block to the email parser
VALUE = st.text(alphabet=st.sampled_from(
    [chr(c) for c in range(0x20, 0x7f)] + ["\t", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\xe9", ":", " "]),
    max_size=40)
NAME = st.one_of(st.text(alphabet=TOKEN, min_size=1, max_size=20),
                 st.text(alphabet=TOKEN + " \t:\xe9", max_size=20))
LINE = st.one_of(
    st.tuples(NAME, st.sampled_from([":", ": ", ":\t ", " :"]), VALUE).map("".join),
    st.tuples(st.sampled_from([" ", "\t"]), VALUE).map("".join),  # folded continuation
    VALUE,  # no colon at all
)


def block_of(lines: list[str], eol: str, end: str) -> bytes:
    return "".join(line + eol for line in lines).encode("latin-1") + end.encode() + b"BODY"


def state(msg) -> dict:
    """Every attribute of a message; defects (compared by identity) by kind."""
    return {**vars(msg), "defects": [type(d) for d in msg.defects]}


def both(raw: bytes):
    fast_fp, std_fp = io.BytesIO(raw), io.BytesIO(raw)
    return fastheaders.parse_headers(fast_fp), fast_fp.tell(), stdlib(std_fp), std_fp.tell()


@settings(max_examples=400, deadline=None)
@given(st.lists(LINE, max_size=12), st.sampled_from(["\r\n", "\n"]), st.sampled_from(["\r\n", "\n", ""]))
def test_any_block_parses_as_the_stdlib_parses_it(lines, eol, end):
    fast, fast_at, std, std_at = both(block_of(lines, eol, end))
    assert state(fast) == state(std)
    assert fast_at == std_at


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet=TOKEN, min_size=1, max_size=20),
                          st.text(alphabet=[chr(c) for c in range(0x20, 0x7f)] + ["\t"], max_size=40)),
                max_size=12))
def test_plain_blocks_take_the_fast_path_with_the_same_result(pairs):
    lines = [b"%s: %s\r\n" % (n.encode(), v.encode()) for n, v in pairs] + [b"\r\n"]
    fast = fastheaders.message_of(lines)
    assert fast is not None
    assert state(fast) == state(stdlib(io.BytesIO(b"".join(lines))))


@pytest.mark.parametrize("raw, plain", [
    (b"Host: x\r\nContent-Length: 12\r\nX-Empty:\r\n\r\n", True),
    (b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n", True),  # repeated names keep both, in order
    (b"X-Trailing: value  \t\r\n\r\n", True),  # trailing blanks are part of the value
    (b"Transfer-Encoding : chunked\r\n\r\n", False),  # blank before the colon
    (b"X-Folded: a\r\n b\r\n\r\n", False),
    (b"X-Latin: caf\xe9\r\n\r\n", False),
    (b"no colon here\r\nHost: x\r\n\r\n", False),
])
def test_table(raw, plain):
    lines = http.client._read_headers(io.BytesIO(raw))
    assert (fastheaders.message_of(lines) is not None) is plain
    fast, fast_at, std, std_at = both(raw)
    assert state(fast) == state(std) and fast_at == std_at


def test_the_stdlib_limits_still_hold():
    with pytest.raises(http.client.LineTooLong):
        fastheaders.parse_headers(io.BytesIO(b"X: " + b"a" * 70000 + b"\r\n\r\n"))
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        fastheaders.parse_headers(io.BytesIO(b"X: a\r\n" * 101 + b"\r\n"))


def test_the_proxy_reads_headers_with_it(upstream, start_proxy):
    """Both readers look parse_headers up when they run, so the running
    proxy's requests and upstream answers go through ours."""
    from tests.conftest import GO_CHAT, make_config
    from tests.fakes import chat_auto

    upstream.on(GO_CHAT, chat_auto("fine"))
    proxy = start_proxy(make_config(upstream))
    assert http.client.parse_headers is fastheaders.parse_headers
    conn = http.client.HTTPConnection("127.0.0.1", proxy.server.port, timeout=10)
    conn.request("POST", "/v1/messages", body=b'{"model":"claude-sonnet-4-5","max_tokens":8,'
                 b'"messages":[{"role":"user","content":"hi"}]}', headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200 and b'"fine"' in resp.read()
    conn.close()
