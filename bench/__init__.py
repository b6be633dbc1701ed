"""The benchmark: the worker against a raw aio-pika + asyncpg baseline (``python -m bench``).

Run from the repository root; ``testkit`` (the vhost, database and worker-process helpers
it shares with the test suite) is imported from there.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
