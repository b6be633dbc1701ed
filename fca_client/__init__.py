"""A typed client for publishers of the fca-worker contract, and its in-memory double.

Importable without the worker: it needs ``contracts`` (pydantic) and aio-pika only
(opentelemetry-api is used when installed). ::

    from contracts import CreateCustomer, CommandRejected, GetCustomer
    from fca_client import FcaClient, build

    async with FcaClient("amqp://guest:guest@localhost:5672/", actor="chat-agent") as client:
        await client.send(build(CreateCustomer, {"email": e, "full_name": n}))
        answer = await client.request(build(GetCustomer, {"email": e}), timeout=5)

``FcaClient`` talks to RabbitMQ; ``InMemoryClient`` (in :mod:`fca_client.testing`) checks
every message against the contract and answers what a test scripts. Both satisfy
:class:`Client`. Errors: :mod:`fca_client.errors` draws the tree; a message that breaks the
contract is refused before sending with :class:`contracts.InvalidMessage`.
"""

from __future__ import annotations

from fca_client.base import (
    DEFAULT_TIMEOUT,
    Client,
    CommandOutcome,
    QueryOutcome,
)
from fca_client.client import FcaClient, split_urls
from fca_client.errors import (
    BrokerUnavailable,
    ClientError,
    ConnectionLost,
    InvalidReply,
    NotConfirmed,
    PublishFailed,
    RequestTimeout,
    Unroutable,
)
from fca_client.outgoing import build, new_message_id
from fca_client.testing import InMemoryClient, NoAnswerScripted, Script, ScriptError, Sent

__all__ = [
    "DEFAULT_TIMEOUT",
    "BrokerUnavailable",
    "Client",
    "ClientError",
    "CommandOutcome",
    "ConnectionLost",
    "FcaClient",
    "InMemoryClient",
    "InvalidReply",
    "NoAnswerScripted",
    "NotConfirmed",
    "PublishFailed",
    "QueryOutcome",
    "RequestTimeout",
    "Script",
    "ScriptError",
    "Sent",
    "Unroutable",
    "build",
    "new_message_id",
    "split_urls",
]
