"""Requests waiting for their answer, and the matching of answers to them.

An answer belongs to the request whose message id is its ``causation_id`` (unique per
waiting request, unlike a correlation id that a chat session shares across its requests),
and its AMQP ``correlation_id`` must be one the worker gives that request's answers. An
answer nobody waits for (a late one, after a timeout) is dropped with a debug line.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from contracts import EventEnvelope, InvalidMessage, parse_event
from fca_client.errors import InvalidReply
from fca_client.outgoing import Outgoing

__all__ = ["Waiting"]

log = logging.getLogger("fca_client")


@dataclass(eq=False)
class _Waiter:
    outgoing: Outgoing
    future: asyncio.Future[EventEnvelope] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def accepts(self, correlation_id: str | None) -> bool:
        allowed = self.outgoing.reply_correlation_ids
        return allowed is None or correlation_id in allowed


class Waiting:
    """The requests of one client that wait for an answer, by causation id."""

    def __init__(self) -> None:
        self._by_causation: dict[str, _Waiter] = {}

    def __len__(self) -> int:
        return len({id(w) for w in self._by_causation.values()})

    def expect(self, outgoing: Outgoing) -> asyncio.Future[EventEnvelope]:
        """Register ``outgoing`` as waiting; its future gets the answer or an error.

        Raises:
            ValueError: a request with the same message id is already waiting.
        """
        if any(key in self._by_causation for key in outgoing.causation_ids):
            raise ValueError(f"a request with message id {outgoing.message_id} is already waiting")
        waiter = _Waiter(outgoing)
        for key in outgoing.causation_ids:
            self._by_causation[key] = waiter
        return waiter.future

    def forget(self, outgoing: Outgoing) -> None:
        """Stop waiting for ``outgoing`` (after its answer, a timeout or an error)."""
        for key in outgoing.causation_ids:
            waiter = self._by_causation.get(key)
            if waiter is not None and waiter.outgoing is outgoing:
                del self._by_causation[key]

    def deliver(self, body: bytes, correlation_id: str | None) -> bool:
        """Hand an answer to its request; False if nobody waits for it."""
        try:
            event = parse_event(body)
        except InvalidMessage as exc:
            return self._invalid(exc, correlation_id)
        waiter = self._by_causation.get(event.causation_id)
        if waiter is None or waiter.future.done():
            log.debug("fca_client.answer_unclaimed", extra={"causation_id": event.causation_id})
            return False
        if not waiter.accepts(correlation_id):
            log.warning(
                "fca_client.answer_correlation_mismatch",
                extra={"causation_id": event.causation_id},
            )
            return False
        waiter.future.set_result(event)
        return True

    def fail_all(self, error: BaseException) -> None:
        """Fail every waiting request with ``error`` (the connection is gone)."""
        for waiter in set(self._by_causation.values()):
            if not waiter.future.done():
                waiter.future.set_exception(error)

    def _invalid(self, exc: InvalidMessage, correlation_id: str | None) -> bool:
        """An unreadable answer fails the one request it can be tied to, else is dropped."""
        candidates = {
            w
            for w in self._by_causation.values()
            if not w.future.done()
            and correlation_id is not None
            and w.outgoing.reply_correlation_ids is not None
            and correlation_id in w.outgoing.reply_correlation_ids
        }
        if len(candidates) != 1:
            log.warning("fca_client.answer_invalid", extra={"reason": exc.reason})
            return False
        [waiter] = candidates
        waiter.future.set_exception(InvalidReply(f"the answer breaks the contract: {exc.reason}"))
        return True
