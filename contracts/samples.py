"""Sample values shared by the examples of the resource modules (one customer, one story)."""

from __future__ import annotations

from typing import Final

__all__: list[str] = []

AT: Final = "2026-11-21T10:00:00Z"
CUSTOMER_ID: Final = "CUST-000001"
EMAIL: Final = "ada@example.com"
ACCOUNT_NUMBER: Final = "40000001"
CONVERSATION_ID: Final = "0b6f3c52-8a1d-4f0e-9d8a-3f2b7c1e5a90"
ESCALATION_ID: Final = "ESC-000042"
CURSOR: Final = "eyJrIjoxfQ"
REQUEST_ID: Final = "7b6f1c1e-0000-4000-8000-000000000001"
EVENT_ID: Final = "5d0c6a2e-3b7f-5c1a-9e4d-2a8b6f0c1d3e"
