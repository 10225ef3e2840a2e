"""The fallback loop with a hedged attempt: the winner is credited, a
contestant that failed is charged like any failure, one closed because the
other won is not, and the chain never tries the hedge partner twice."""

from __future__ import annotations

import pytest

from ocproxy.config import ModelConfig
from ocproxy.errors import UpstreamHTTPError
from ocproxy.routing.breaker import BreakerRegistry
from ocproxy.routing.fallback import ChainExhausted, Contest, ContestLost, run_chain

A, B, C = (ModelConfig(model_id=m) for m in ("a", "b", "c"))


def run(attempt, breakers):
    return run_chain([A, B, C], attempt, key_count=1, is_cancelled=lambda: False, breakers=breakers, hedged=True)


def test_the_partner_winning_is_credited_and_the_first_closed_uncharged():
    breakers = BreakerRegistry(1, 60)
    calls = []

    def attempt(model, partner):
        calls.append(model.model_id)
        second = partner()
        return Contest("answer", second, closed=[model])

    result = run(attempt, breakers)
    assert (result.value, result.model) == ("answer", B)
    assert calls == ["a"]
    assert result.trace.tried == ["a:hedge-closed", "b:ok"]
    assert result.trace.attempts == 2
    assert breakers.states() == {"a": "closed", "b": "closed"}


def test_a_contestant_that_failed_is_charged():
    breakers = BreakerRegistry(1, 60)

    def attempt(model, partner):
        second = partner()
        return Contest("answer", model, failed=[(second, UpstreamHTTPError(500, "down"))])

    result = run(attempt, breakers)
    assert result.model == A
    assert breakers.states()["b"] == "open"


def test_both_failing_moves_on_past_the_partner():
    breakers = BreakerRegistry(3, 60)
    seen = []

    def attempt(model, partner):
        seen.append(model.model_id)
        if model is A:
            raise ContestLost([(A, UpstreamHTTPError(500, "x")), (partner(), UpstreamHTTPError(502, "y"))])
        return Contest("from c", model)

    result = run(attempt, breakers)
    assert seen == ["a", "c"]  # b was the partner: not tried again
    assert result.model == C
    assert [f[0] for f in result.trace.failures] == ["a", "b"]


def test_a_partner_behind_an_open_breaker_is_skipped():
    breakers = BreakerRegistry(1, 60)
    breakers.get("b").record_failure()

    def attempt(model, partner):
        return Contest(partner(), model)

    result = run(attempt, breakers)
    assert result.value is C  # the next model a breaker lets through
    assert "b:breaker-open" in result.trace.tried


def test_every_contest_lost_exhausts_the_chain():
    def attempt(model, partner):
        raise ContestLost([(model, UpstreamHTTPError(500, "x"))])

    with pytest.raises(ChainExhausted):
        run(attempt, None)
