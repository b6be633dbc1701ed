"""The client's errors, rooted in one base.

::

    ClientError                     anything the client could not do
    ├── BrokerUnavailable           no broker URL answered (or the exchange is missing)
    ├── ConnectionLost              the connection dropped before the publish or its answer
    ├── PublishFailed               the broker did not take the message
    │   ├── Unroutable              mandatory publish returned: no queue is bound for it
    │   └── NotConfirmed            the broker nacked it, or did not confirm it in time
    ├── RequestTimeout              no answer in time (also a TimeoutError)
    └── InvalidReply                an answer arrived that breaks the contract

A message that breaks the contract is refused before it is sent with
:class:`contracts.InvalidMessage` (a ``ValueError`` whose text never quotes input values).
"""

from __future__ import annotations

__all__ = [
    "BrokerUnavailable",
    "ClientError",
    "ConnectionLost",
    "InvalidReply",
    "NotConfirmed",
    "PublishFailed",
    "RequestTimeout",
    "Unroutable",
]


class ClientError(Exception):
    """Base of every error the client raises about the broker or the worker."""


class BrokerUnavailable(ClientError):
    """No broker URL answered, or the commands exchange does not exist there."""


class ConnectionLost(ClientError):
    """The connection dropped before the publish was confirmed or the answer came."""


class PublishFailed(ClientError):
    """The broker did not take the message."""

    def __init__(self, text: str, *, message_id: str) -> None:
        super().__init__(text)
        self.message_id = message_id


class Unroutable(PublishFailed):
    """The mandatory publish came back: no queue is bound for its routing key."""


class NotConfirmed(PublishFailed):
    """The broker nacked the publish, or did not confirm it within the publish timeout."""


class RequestTimeout(ClientError, TimeoutError):
    """No answer within the timeout.

    The worker answers a message id it has already handled with nothing at all (it acks the
    duplicate with no effect), so a request that reuses a message id always ends here.
    """

    def __init__(self, *, message_id: str, timeout: float) -> None:
        super().__init__(
            f"no answer to {message_id} within {timeout:g}s (is a worker running? a message "
            "id it has already handled is acked without an answer)"
        )
        self.message_id = message_id
        self.timeout = timeout


class InvalidReply(ClientError):
    """An answer arrived that is not what the contract promises for the request."""
