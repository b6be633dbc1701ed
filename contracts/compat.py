"""Backward-compatibility check of JSON Schemas, for the contract snapshot test.

A new schema is *compatible* with an old one when every message the old one accepted is
still accepted: adding an optional field, adding enum values, relaxing a bound or allowing
unknown fields are fine; removing a field (unknown fields are rejected), requiring a new
field, changing a type, removing enum values or tightening a bound are not. Changed
``pattern`` and ``format`` values count as incompatible (a superset cannot be proven).

Plain dict logic, no pydantic: it compares the JSON Schemas stored in a snapshot file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SnapshotDiff", "compare_snapshots", "incompatible_changes"]

_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_ANY: Mapping[str, Any] = {}


def incompatible_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Why ``new`` may reject a message ``old`` accepted; empty when it is compatible."""
    checker = _Checker(old.get("$defs", {}), new.get("$defs", {}))
    checker.compare(old, new, "$")
    return checker.problems


@dataclass
class SnapshotDiff:
    """The outcome of comparing stored schemas with current ones."""

    breaking: list[str] = field(default_factory=list)
    """Incompatible changes without a version bump, removed types, versions gone down."""
    stale: list[str] = field(default_factory=list)
    """Compatible changes, version bumps and new types: the snapshot needs regenerating."""


def compare_snapshots(
    stored: Mapping[str, Mapping[str, Any]], current: Mapping[str, Mapping[str, Any]]
) -> SnapshotDiff:
    """Compare ``{type: {"version": int, "schema": {...}}}`` snapshots type by type."""
    diff = SnapshotDiff()
    for name in sorted(stored.keys() - current.keys()):
        diff.breaking.append(f"{name}: message type removed (delete its snapshot entry by hand)")
    for name in sorted(current.keys() - stored.keys()):
        diff.stale.append(f"{name}: new message type")
    for name in sorted(stored.keys() & current.keys()):
        old, new = stored[name], current[name]
        if old == new:
            continue
        old_version, new_version = int(old["version"]), int(new["version"])
        if new_version < old_version:
            diff.breaking.append(f"{name}: version went down from {old_version} to {new_version}")
            continue
        problems = incompatible_changes(old["schema"], new["schema"])
        if problems and new_version == old_version:
            details = "; ".join(problems)
            diff.breaking.append(
                f"{name}: incompatible change without a version bump "
                f"(raise schema_version above {old_version}): {details}"
            )
        elif new_version > old_version:
            diff.stale.append(f"{name}: version bumped from {old_version} to {new_version}")
        else:
            diff.stale.append(f"{name}: schema changed compatibly")
    return diff


class _Checker:
    def __init__(self, old_defs: Mapping[str, Any], new_defs: Mapping[str, Any]) -> None:
        self.old_defs = old_defs
        self.new_defs = new_defs
        self.problems: list[str] = []
        self._active: set[tuple[str, str]] = set()

    def compare(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        refs = (str(old.get("$ref", "")), str(new.get("$ref", "")))
        if refs in self._active and any(refs):
            return  # a recursive schema: this pair is already being compared
        self._active.add(refs)
        try:
            self._compare(_resolve(old, self.old_defs), _resolve(new, self.new_defs), path)
        finally:
            self._active.discard(refs)

    def _compare(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        if old == new or not _constraints(new):
            return
        old_options, new_options = _options(old), _options(new)
        if len(old_options) > 1 or len(new_options) > 1:
            for index, option in enumerate(old_options):
                self._compare_option(option, new_options, f"{path}|{index}")
            return
        self._compare_types(old, new, path)
        self._compare_values(old, new, path)
        self._compare_bounds(old, new, path)
        self._compare_object(old, new, path)
        if "items" in new and isinstance(new["items"], Mapping):
            old_items = old.get("items", _ANY)
            self.compare(old_items if isinstance(old_items, Mapping) else _ANY, new["items"], path)

    def _compare_option(
        self, old: Mapping[str, Any], new_options: list[Mapping[str, Any]], path: str
    ) -> None:
        best: list[str] | None = None
        for candidate in new_options:
            trial = _Checker(self.old_defs, self.new_defs)
            trial.compare(old, candidate, path)
            if not trial.problems:
                return
            if best is None or len(trial.problems) < len(best):
                best = trial.problems
        self.problems.extend(best or [f"{path}: alternative no longer accepted"])

    def _compare_types(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_types, new_types = _types(old), _types(new)
        if new_types is None:
            return
        if old_types is None:
            self.problems.append(f"{path}: type restricted to {sorted(new_types)}")
            return
        lost = {t for t in old_types - new_types if not (t == "integer" and "number" in new_types)}
        if lost:
            self.problems.append(
                f"{path}: type changed from {sorted(old_types)} to {sorted(new_types)}"
            )

    def _compare_values(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        new_values = _allowed_values(new)
        if new_values is None:
            return
        old_values = _allowed_values(old)
        if old_values is None:
            self.problems.append(f"{path}: values restricted to {sorted(map(str, new_values))}")
            return
        removed = [value for value in old_values if value not in new_values]
        if removed:
            self.problems.append(f"{path}: values removed: {sorted(map(str, removed))}")

    def _compare_bounds(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        for key in _LOWER_BOUNDS:
            if key in new and (key not in old or new[key] > old[key]):
                self.problems.append(f"{path}: {key} raised to {new[key]}")
        for key in _UPPER_BOUNDS:
            if key in new and (key not in old or new[key] < old[key]):
                self.problems.append(f"{path}: {key} lowered to {new[key]}")
        for key in ("pattern", "format"):
            if key in new and new[key] != old.get(key):
                self.problems.append(f"{path}: {key} changed")
        if new.get("uniqueItems") and not old.get("uniqueItems"):
            self.problems.append(f"{path}: items must now be unique")

    def _compare_object(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_props: Mapping[str, Any] = old.get("properties", {})
        new_props: Mapping[str, Any] = new.get("properties", {})
        old_extra = _extra(old)
        new_extra = _extra(new)
        for name in sorted(set(new.get("required", ())) - set(old.get("required", ()))):
            self.problems.append(f"{path}.{name}: newly required")
        for name, old_schema in old_props.items():
            if name in new_props:
                self.compare(old_schema, new_props[name], f"{path}.{name}")
            elif new_extra is None:
                self.problems.append(f"{path}.{name}: field removed")
            else:
                self.compare(old_schema, new_extra, f"{path}.{name}")
        for name, new_schema in new_props.items():
            if name not in old_props and old_extra is not None:
                self.compare(old_extra, new_schema, f"{path}.{name}")
        if old_extra is not None:
            if new_extra is None:
                self.problems.append(f"{path}: unknown fields no longer allowed")
            else:
                self.compare(old_extra, new_extra, f"{path}.*")


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    seen: set[str] = set()
    while "$ref" in schema:
        ref = str(schema["$ref"])
        name = ref.rsplit("/", 1)[-1]
        if ref in seen or name not in defs:
            raise ValueError(f"unresolvable $ref {ref!r}")
        seen.add(ref)
        schema = defs[name]
    return schema


def _constraints(schema: Mapping[str, Any]) -> bool:
    """Whether a schema constrains anything (annotations alone do not)."""
    annotations = {"title", "description", "default", "examples", "$comment", "deprecated"}
    return bool(set(schema) - annotations)


def _options(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [option for option in schema[key] if isinstance(option, Mapping)]
    return [schema]


def _types(schema: Mapping[str, Any]) -> set[str] | None:
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {str(item) for item in declared}
    return None


def _allowed_values(schema: Mapping[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    if "enum" in schema:
        return list(schema["enum"])
    return None


def _extra(schema: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The schema unknown properties must match, or None when they are forbidden."""
    if _types(schema) not in (None, {"object"}) and "properties" not in schema:
        return _ANY  # not an object schema: nothing to say about properties
    additional = schema.get("additionalProperties", True)
    if additional is False:
        return None
    return additional if isinstance(additional, Mapping) else _ANY
