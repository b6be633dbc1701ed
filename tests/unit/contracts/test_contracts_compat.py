"""The compatibility checker flags every change that could reject a once-valid message."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import Field

from contracts import CreateCustomerPayload, compare_snapshots, incompatible_changes

pytestmark = pytest.mark.unit


def obj(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
        **extra,
    }


STRING = {"type": "string", "maxLength": 50}
BASE = obj(
    {
        "name": STRING,
        "kind": {"enum": ["a", "b"]},
        "count": {"type": "integer", "minimum": 0, "maximum": 10},
        "tags": {"type": "array", "items": {"type": "string"}},
        "nested": {"$ref": "#/$defs/Nested"},
        "maybe": {"anyOf": [STRING, {"type": "null"}]},
    },
    ("name",),
    **{"$defs": {"Nested": obj({"code": {"type": "string", "pattern": "^[A-Z]+$"}}, ("code",))}},
)


def changed(path: str, value: Any) -> dict[str, Any]:
    """BASE with the node at a dotted path replaced (or removed when value is ...)."""
    schema = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = schema
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return schema


COMPATIBLE = {
    "identical": copy.deepcopy(BASE),
    "optional field added": changed("properties.extra", STRING),
    "enum value added": changed("properties.kind", {"enum": ["a", "b", "c"]}),
    "max length raised": changed("properties.name.maxLength", 100),
    "max length dropped": changed("properties.name.maxLength", ...),
    "minimum lowered": changed("properties.count.minimum", -5),
    "integer widened to number": changed("properties.count.type", "number"),
    "field made optional": changed("required", []),
    "made nullable": changed("properties.name", {"anyOf": [STRING, {"type": "null"}]}),
    "unknown fields allowed": changed("additionalProperties", True),
    "description changed": changed("properties.name.description", "The name."),
    "nested field added": changed("$defs.Nested.properties.extra", STRING),
    "any value allowed": changed("properties.name", {}),
}

INCOMPATIBLE = {
    "field removed": (changed("properties.count", ...), "count: field removed"),
    "field newly required": (changed("required", ["name", "count"]), "count: newly required"),
    "type changed": (changed("properties.name.type", "integer"), "type changed"),
    "integer made boolean": (changed("properties.count.type", "boolean"), "type changed"),
    "enum value removed": (changed("properties.kind", {"enum": ["a"]}), "values removed: ['b']"),
    "enum replaced by const": (changed("properties.kind", {"const": "c"}), "values removed"),
    "max length lowered": (changed("properties.name.maxLength", 10), "maxLength lowered"),
    "minimum raised": (changed("properties.count.minimum", 1), "minimum raised"),
    "maximum added": (changed("properties.tags.maxItems", 3), "maxItems lowered"),
    "pattern changed": (changed("$defs.Nested.properties.code.pattern", "^[a-z]+$"), "pattern"),
    "nested field required": (
        changed("$defs.Nested.required", ["code", "other"]),
        "nested.other: newly required",
    ),
    "items type changed": (changed("properties.tags.items.type", "integer"), "type changed"),
    "null no longer allowed": (changed("properties.maybe", STRING), "type changed"),
    "string made an enum": (changed("properties.name", {"enum": ["x"]}), "values restricted"),
    "unique items required": (changed("properties.tags.uniqueItems", True), "unique"),
}


@pytest.mark.parametrize("case", COMPATIBLE, ids=list(COMPATIBLE))
def test_compatible_changes_pass(case: str) -> None:
    assert incompatible_changes(BASE, COMPATIBLE[case]) == []


@pytest.mark.parametrize("case", INCOMPATIBLE, ids=list(INCOMPATIBLE))
def test_incompatible_changes_are_reported_with_their_location(case: str) -> None:
    new, expected = INCOMPATIBLE[case]

    problems = incompatible_changes(BASE, new)

    assert problems, f"{case} was not detected"
    assert any(expected in problem for problem in problems), problems


def test_number_narrowed_to_integer_is_incompatible() -> None:
    assert incompatible_changes({"type": "number"}, {"type": "integer"})
    assert incompatible_changes({"type": "integer"}, {"type": "number"}) == []


def test_removing_a_field_is_fine_when_unknown_fields_were_and_are_allowed() -> None:
    old = obj({"a": STRING, "b": STRING}, additionalProperties=True)
    new = obj({"a": STRING}, additionalProperties=True)

    assert incompatible_changes(old, new) == []
    assert incompatible_changes(old, {**new, "additionalProperties": False})


def test_forbidding_unknown_fields_is_incompatible() -> None:
    old = obj({"a": STRING}, additionalProperties=True)

    assert incompatible_changes(old, obj({"a": STRING})) == ["$: unknown fields no longer allowed"]


def test_discriminated_union_may_gain_but_not_lose_alternatives() -> None:
    def union(*names: str) -> dict[str, Any]:
        return {
            "oneOf": [{"$ref": f"#/$defs/{name}"} for name in names],
            "$defs": {name: obj({"kind": {"const": name}}, ("kind",)) for name in names},
        }

    assert incompatible_changes(union("A", "B"), union("A", "B", "C")) == []
    assert incompatible_changes(union("A", "B"), union("A"))


def test_recursive_schemas_do_not_loop() -> None:
    tree = {
        "$ref": "#/$defs/Node",
        "$defs": {"Node": obj({"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}})},
    }

    assert incompatible_changes(tree, copy.deepcopy(tree)) == []


def test_unresolvable_reference_is_an_error() -> None:
    with pytest.raises(ValueError, match="unresolvable"):
        incompatible_changes(BASE, {"$ref": "#/$defs/Missing", "$defs": {}})


def test_a_real_model_gaining_a_required_field_is_incompatible() -> None:
    class CreateCustomerPayloadV2(CreateCustomerPayload):
        date_of_birth: str = Field(description="Newly required.")

    problems = incompatible_changes(
        CreateCustomerPayload.model_json_schema(), CreateCustomerPayloadV2.model_json_schema()
    )

    assert problems == ["$.date_of_birth: newly required"]


def entry(version: int, schema: dict[str, Any]) -> dict[str, Any]:
    return {"version": version, "schema": schema}


def test_snapshot_comparison_classifies_changes() -> None:
    stored = {
        "Same": entry(1, BASE),
        "Compatible": entry(1, BASE),
        "Breaking": entry(1, BASE),
        "Bumped": entry(1, BASE),
        "Downgraded": entry(2, BASE),
        "Removed": entry(1, BASE),
    }
    current = {
        "Same": entry(1, BASE),
        "Compatible": entry(1, COMPATIBLE["optional field added"]),
        "Breaking": entry(1, INCOMPATIBLE["field removed"][0]),
        "Bumped": entry(2, INCOMPATIBLE["field removed"][0]),
        "Downgraded": entry(1, BASE),
        "Added": entry(1, BASE),
    }

    diff = compare_snapshots(stored, current)

    assert [line.split(":")[0] for line in diff.breaking] == ["Removed", "Breaking", "Downgraded"]
    assert [line.split(":")[0] for line in diff.stale] == ["Added", "Bumped", "Compatible"]
    assert "raise schema_version above 1" in diff.breaking[1]


def test_unchanged_snapshots_compare_clean() -> None:
    diff = compare_snapshots({"A": entry(1, BASE)}, {"A": entry(1, copy.deepcopy(BASE))})

    assert (diff.breaking, diff.stale) == ([], [])
