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
    describe,
    exhausted_error,
    FirstByteTimeout,
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


# -- what the client reads when every model failed --------------------------

KEY = "sk-secret-key-0123456789"

DESCRIBE = [
    (UpstreamHTTPError(401, '{"error": {"message": "invalid key sk-secret-key-0123456789"}}'),
     "401 invalid key [redacted]"),
    (UpstreamHTTPError(500, "plain text\n body"), "500 plain text body"),
    (UpstreamHTTPError(502, ""), "502"),
    (UpstreamConnectionError("connection to http://h/?key=x failed", reason="connect refused"), "connect refused"),
    (FirstByteTimeout("no payload", 60.0), "idle 60 s before first byte"),
    (StreamIdle("no data", 2.5), "idle 2.5 s"),
    (AttemptTimeout("deadline"), "attempt timed out"),
    ("circuit breaker open", "circuit breaker open"),
]


@pytest.mark.parametrize("failure,text", DESCRIBE, ids=[t for _, t in DESCRIBE])
def test_describe_says_what_the_model_answered_without_keys(failure, text):
    assert describe(failure, (KEY,)) == text


def go(failure):
    return ("kimi-k2.6", "opencode-go", failure)


def zen(failure):
    return ("glm-5.1", "opencode-zen", failure)


EXHAUSTED = [
    ("every_key_refused", [go(UpstreamHTTPError(401, "bad")), zen(UpstreamHTTPError(403, "bad"))], 401),
    ("refused_then_provider_skipped", [go(UpstreamHTTPError(401, "bad")), go("skipped (provider blocked)")], 401),
    ("usage_limits", [go(UpstreamHTTPError(429, "GoUsageLimitError")), zen(UpstreamHTTPError(429, "slow"))], 429),
    ("usage_limit_any_status", [go(UpstreamHTTPError(403, '{"type": "GoUsageLimitError"}'))], 429),
    ("a_key_and_an_outage", [go(UpstreamHTTPError(401, "bad")), zen(UpstreamHTTPError(500, "x"))], 502),
    ("limit_and_refused_connection", [go(UpstreamHTTPError(429, "x")), zen(UpstreamConnectionError("r"))], 502),
    ("only_open_breakers", [go("circuit breaker open"), zen("circuit breaker open")], 529),
    ("timeouts", [go(FirstByteTimeout("x", 60.0)), zen(AttemptTimeout("y"))], 502),
]


@pytest.mark.parametrize("failures,status", [c[1:] for c in EXHAUSTED], ids=[c[0] for c in EXHAUSTED])
def test_exhausted_status_says_whether_a_retry_can_help(failures, status):
    assert exhausted_error(failures, "all models failed").status == status


def test_every_key_refused_names_the_providers_and_lists_each_model():
    err = exhausted_error([go(UpstreamHTTPError(401, '{"error": {"message": "invalid key"}}')),
                           zen(UpstreamHTTPError(401, "nope"))], "all models failed")
    assert err.kind == "authentication_error"
    assert err.message == ("upstream provider opencode-go, opencode-zen refused the API key "
                           "(all models failed: kimi-k2.6: 401 invalid key; glm-5.1: 401 nope)")


def test_usage_limit_carries_the_first_retry_after_the_upstreams_gave():
    err = exhausted_error([go(UpstreamHTTPError(429, "x")), zen(UpstreamHTTPError(429, "y", retry_after="30"))],
                          "all models failed")
    assert (err.status, err.kind, err.headers) == (429, "rate_limit_error", (("Retry-After", "30"),))
