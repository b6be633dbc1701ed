"""Guard the published schemas: an incompatible change needs a schema_version bump.

``tests/snapshots/contract_schemas.json`` holds each message type's ``schema_version`` and
JSON Schema. After a deliberate change, regenerate it with::

    UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/unit/contracts/test_contracts_snapshot.py

Regeneration refuses incompatible changes that kept their version: raise the class's
``schema_version`` first (and tell the teams that publish or consume that type).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from contracts import MESSAGE_CLASSES, compare_snapshots, json_schemas

pytestmark = pytest.mark.unit

SNAPSHOT = Path(__file__).resolve().parents[2] / "snapshots" / "contract_schemas.json"
REGENERATE = (
    f"UPDATE_SNAPSHOTS=1 .venv/bin/pytest {Path(__file__).relative_to(SNAPSHOT.parents[2])}"
)


def current_snapshot() -> dict[str, Any]:
    schemas = json_schemas()
    return {
        name: {"version": cls.schema_version, "schema": schemas[name]}
        for name, cls in sorted(MESSAGE_CLASSES.items())
    }


def render(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_contract_schemas_match_the_snapshot() -> None:
    current = current_snapshot()
    stored = json.loads(SNAPSHOT.read_text(encoding="utf-8")) if SNAPSHOT.exists() else {}

    diff = compare_snapshots(stored, current)

    if diff.breaking:
        pytest.fail(
            "Incompatible contract changes (bump the type's schema_version, then regenerate):\n  "
            + "\n  ".join(diff.breaking),
            pytrace=False,
        )
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(render(current), encoding="utf-8")
        return
    if diff.stale:
        pytest.fail(
            "The contract changed compatibly; regenerate the snapshot with\n  "
            + REGENERATE
            + "\nChanges:\n  "
            + "\n  ".join(diff.stale),
            pytrace=False,
        )
    assert SNAPSHOT.read_text(encoding="utf-8") == render(current), (
        f"snapshot formatting drifted; regenerate with {REGENERATE}"
    )


def test_snapshot_file_lists_every_message_type_with_a_version() -> None:
    stored = json.loads(SNAPSHOT.read_text(encoding="utf-8"))

    assert set(stored) == set(MESSAGE_CLASSES)
    assert all(entry["version"] >= 1 for entry in stored.values())
