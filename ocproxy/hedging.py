"""Hedging: a streamed attempt that races the chain's next model when the
first has produced nothing for a while (``hedge_after_ms``)."""

from __future__ import annotations

import threading
from typing import Callable

from ocproxy.config import ModelConfig
from ocproxy.errors import AttemptFailure, ClientGone
from ocproxy.routing.fallback import Contest, ContestLost
from ocproxy.upstream.attempt import CancelScope


class HedgeClosed(ClientGone):
    """This attempt lost a hedged race: stop quietly, charge nothing."""


class _Contestant:
    """One model's attempt in a :class:`Race`, in a thread of its own."""

    def __init__(self, model: ModelConfig):
        self.model = model
        self.scope = CancelScope()  # aborts this contestant alone (it lost, or the client left)
        self.thread: threading.Thread | None = None
        self.outcome: BaseException | None = None  # None: it answered
        self.done = False
        self.failed_before_a_win = False  # failed on its own, not closed because another won


class Race:
    """A streamed attempt that races the chain's next model (hedging).

    The first model starts at once; when it has claimed no payload within
    ``hedge_after`` seconds, the chain's next model starts too. The first to
    produce payload claims the writer and streams to the end; the other is
    aborted at once and is not charged. The race is the owner of its
    contestant threads (``ocproxy-hedge``): :meth:`run` joins every one of
    them before it returns.

    ``_cond`` guards ``_contestants``, ``_winner`` and each contestant's
    ``outcome``, ``done`` and ``failed_before_a_win``.
    """

    def __init__(self, relay, hedge_after: float):  # relay: the request's relay.StreamRelay
        self.relay = relay
        self.hedge_after = hedge_after
        self._cond = threading.Condition(threading.Lock())
        self._contestants: list[_Contestant] = []
        self._winner: _Contestant | None = None

    def abort(self, reason: BaseException) -> None:
        """The request's scope: the client left or the server is closing."""
        with self._cond:
            contestants = list(self._contestants)
        for c in contestants:
            c.scope.cancel(reason)

    def run(self, model: ModelConfig, partner: Callable[[], ModelConfig | None]) -> Contest:
        relay = self.relay
        relay.scope.bind(self)
        try:
            self._start(model)
            with self._cond:
                self._cond.wait_for(lambda: self._settled(), timeout=self.hedge_after)
                hedge = not self._settled()
            if hedge and not relay.cancelled():
                second = partner()
                if second is not None:
                    relay.services.metrics.inc("hedges_started")
                    self._start(second)
            with self._cond:
                self._cond.wait_for(lambda: all(c.done for c in self._contestants))
        finally:
            with self._cond:
                contestants = list(self._contestants)
            for c in contestants:
                c.thread.join()
            relay.scope.bind(None)
        return self._result(contestants)

    def _settled(self) -> bool:
        """Someone claimed the writer, or every contestant ended. Under ``_cond``."""
        return self._winner is not None or all(c.done for c in self._contestants)

    def _start(self, model: ModelConfig) -> None:
        c = _Contestant(model)
        c.thread = threading.Thread(target=self._run, args=(c,), name="ocproxy-hedge", daemon=True)
        with self._cond:
            self._contestants.append(c)
        if self.relay.scope.cancelled:
            c.scope.cancel(ClientGone())
        c.thread.start()

    def _run(self, c: _Contestant) -> None:
        outcome: BaseException | None = None
        try:
            self.relay.attempt(c.model, c.scope, lambda: self._claim(c))
        except BaseException as exc:  # every ending is an outcome the race reads
            outcome = exc
        with self._cond:
            c.outcome = outcome
            c.failed_before_a_win = outcome is not None and self._winner is None
            c.done = True
            self._cond.notify_all()

    def _claim(self, c: _Contestant) -> bool:
        with self._cond:
            if self._winner is None:
                self._winner = c
                self._cond.notify_all()
            elif self._winner is not c:
                return False
            losers = [o for o in self._contestants if o is not c]
        for loser in losers:  # closed at once: its upstream read is aborted
            loser.scope.cancel(HedgeClosed())
        return True

    def _result(self, contestants: list[_Contestant]) -> Contest:
        # An attempt that answered without a payload frame never claimed.
        winner = self._winner or next((c for c in contestants if c.outcome is None), None)
        if winner is not None:
            if winner.outcome is not None:
                raise winner.outcome  # broken after its payload began, or the client left
            if winner is not contestants[0]:
                self.relay.services.metrics.inc("hedges_won")
            others = [c for c in contestants if c is not winner]
            return Contest(None, winner.model,
                           failed=[(c.model, c.outcome) for c in others
                                   if c.failed_before_a_win and isinstance(c.outcome, AttemptFailure)],
                           closed=[c.model for c in others if not c.failed_before_a_win])
        for c in contestants:
            if not isinstance(c.outcome, AttemptFailure):
                raise c.outcome  # the client left, or a bug
        if len(contestants) == 1:
            raise contestants[0].outcome
        raise ContestLost([(c.model, c.outcome) for c in contestants])
