"""The fca-worker wire contract: messages, topology names and schema generation.

Importable on its own: it depends on pydantic and the standard library only. Every name a
module lists in its ``__all__`` is exported here, so a message added to a resource module
needs no change in this file.
"""

# ruff: noqa: F403
from __future__ import annotations

from contracts import (
    accounts,
    base,
    catalog,
    compat,
    conversations,
    customers,
    examples,
    fields,
    headers,
    ids,
    ordering,
    parsing,
    registry,
    replies,
    resources,
    schema,
    topology,
    transactions,
    transcripts,
)
from contracts.accounts import *
from contracts.base import *
from contracts.catalog import *
from contracts.compat import *
from contracts.conversations import *
from contracts.customers import *
from contracts.examples import *
from contracts.fields import *
from contracts.headers import *
from contracts.ids import *
from contracts.ordering import *
from contracts.parsing import *
from contracts.registry import *
from contracts.replies import *
from contracts.resources import *
from contracts.schema import *
from contracts.topology import *
from contracts.transactions import *
from contracts.transcripts import *

__all__: list[str] = []
__all__ += accounts.__all__
__all__ += base.__all__
__all__ += catalog.__all__
__all__ += compat.__all__
__all__ += conversations.__all__
__all__ += customers.__all__
__all__ += examples.__all__
__all__ += fields.__all__
__all__ += headers.__all__
__all__ += ids.__all__
__all__ += ordering.__all__
__all__ += parsing.__all__
__all__ += registry.__all__
__all__ += replies.__all__
__all__ += resources.__all__
__all__ += schema.__all__
__all__ += topology.__all__
__all__ += transactions.__all__
__all__ += transcripts.__all__
# Constants first, then classes and type aliases, then functions; each group by name.
__all__.sort(key=lambda name: (0 if name.isupper() else 1 if name[0].isupper() else 2, name))
