"""What the fallback loop does with a failed attempt: charge the model's
breaker, move on, or block the provider, from the failure's class and HTTP
status alone."""

from __future__ import annotations

import pytest

from ocproxy.errors import (
    AttemptFailure,
    AttemptTimeout,
    StreamIdle,
    UpstreamConnectionError,
    UpstreamDataError,
    UpstreamHTTPError,
    Verdict,
    classify,
)

C, N, B = Verdict.CHARGE, Verdict.NEXT, Verdict.BLOCK_PROVIDER

CASES = [
    ("5xx", UpstreamHTTPError(500, "oops"), 1, C),
    ("503", UpstreamHTTPError(503, ""), 1, C),
    ("400", UpstreamHTTPError(400, "bad"), 1, N),
    ("404", UpstreamHTTPError(404, "no model"), 1, N),
    ("429", UpstreamHTTPError(429, "slow down"), 1, N),
    ("401_one_key", UpstreamHTTPError(401, "bad key"), 1, B),
    ("403_one_key", UpstreamHTTPError(403, "bad key"), 0, B),
    ("401_two_keys", UpstreamHTTPError(401, "bad key"), 2, N),
    ("usage_limit_before_auth", UpstreamHTTPError(403, '{"error":{"type":"GoUsageLimitError"}}'), 2, B),
    ("usage_limit_on_429", UpstreamHTTPError(429, '{"error":{"type":"GoUsageLimitError"}}'), 1, B),
    ("deadline", AttemptTimeout("attempt deadline exceeded"), 1, C),
    ("idle", StreamIdle("no data from upstream for 5s"), 1, C),
    ("refused", UpstreamConnectionError("connection to upstream failed: connection refused"), 1, C),
    ("dns", UpstreamConnectionError("Failed to resolve 'x'", refused_or_reset=False), 1, N),
    ("bad_json", UpstreamDataError("failed to unmarshal response"), 1, N),
    ("plain_failure", AttemptFailure("something"), 1, N),
]


@pytest.mark.parametrize("failure, keys, verdict", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_verdict_follows_class_and_status(failure, keys, verdict):
    assert classify(failure, keys) is verdict


WORDS = ["timeout", "500", "503", "502", "connection refused", "connection reset", "rate limit"]


@pytest.mark.parametrize("word", WORDS)
def test_words_in_a_message_change_no_verdict(word):
    """A session id, URL or upstream message that happens to contain one of
    these words once charged a breaker; the text is no evidence of anything."""
    session = f"session-{word}-0001"
    quiet = [
        UpstreamDataError(f"upstream error in stream: {word} (session {session})"),
        UpstreamConnectionError(f"connection to upstream failed: https://h/{session}", refused_or_reset=False),
        AttemptFailure(f"transform error: {word}"),
        UpstreamHTTPError(404, f"model not found for {session}"),
    ]
    for failure in quiet:
        assert classify(failure, 1) is Verdict.NEXT, failure
    assert classify(UpstreamHTTPError(401, word), 2) is Verdict.NEXT
    assert classify(UpstreamHTTPError(500, "no words"), 1) is Verdict.CHARGE
