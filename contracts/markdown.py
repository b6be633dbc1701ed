"""Markdown for the contract page: JSON Schema properties as field tables, messages as blocks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from pydantic import BaseModel

from contracts.base import CommandEnvelope, MessageEnvelope, QueryEnvelope, RoutedEvent
from contracts.examples import example_message, example_result_payload
from contracts.fields import multi_line, single_line
from contracts.registry import COMMAND_TYPES, QUERY_TYPES, type_name
from contracts.replies import REJECTION_REASONS
from contracts.topology import COMMANDS_EXCHANGE, EVENTS_EXCHANGE

__all__ = [
    "anchor",
    "field_rows",
    "field_table",
    "message_block",
    "model_table",
    "schema_type",
    "summary",
]

_SINGLE_LINE: Final = single_line(1).pattern
_MULTI_LINE: Final = multi_line(1).pattern
_NULL: Final = {"type": "null"}
_MAX_LISTED_VALUES: Final = 8


def schema_type(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> str:
    """A short human description of the type a JSON Schema property accepts."""
    if "$ref" in prop:
        name = str(prop["$ref"]).rsplit("/", 1)[-1]
        target = defs.get(name, {})
        if "enum" in target:
            return _values(target["enum"])
        if name == "Payload":
            return "object: the payload of the message's type (see [Messages](#messages))"
        return f"[`{name}`](#{anchor(name)}) object"
    if "anyOf" in prop:
        options = [schema_type(option, defs) for option in prop["anyOf"] if option != _NULL]
        nullable = _NULL in prop["anyOf"]
        return " or ".join(options) + (" or null" if nullable else "")
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return _values(prop["enum"])
    return _simple_type(prop, defs)


def _simple_type(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> str:
    kind = prop.get("type")
    if kind == "string":
        return _string_type(prop)
    if kind == "integer":
        return "integer" + _bounds(prop, "minimum", "maximum", "")
    if kind == "boolean":
        return "boolean"
    if kind == "array":
        items = schema_type(prop.get("items", {}), defs)
        return f"array of {items}" + _bounds(prop, "minItems", "maxItems", " items")
    if kind == "object":
        return "object"
    return "any JSON value"


def _string_type(prop: Mapping[str, Any]) -> str:
    if prop.get("format") == "uuid":
        return "UUID string"
    if prop.get("format") == "date-time":
        return "date-time string (RFC 3339, with offset)"
    if "examples" in prop:
        return f"decimal string, e.g. `{json.dumps(prop['examples'][0])}`"
    shape = {_SINGLE_LINE: "one-line string", _MULTI_LINE: "text"}.get(
        prop.get("pattern"), "string"
    )
    return shape + _bounds(prop, "minLength", "maxLength", " chars")


def _bounds(prop: Mapping[str, Any], low: str, high: str, unit: str) -> str:
    if low in prop and high in prop:
        return f" ({prop[low]}..{prop[high]}{unit})"
    if high in prop:
        return f" (at most {prop[high]}{_unit(unit, prop[high])})"
    if low in prop:
        return f" (at least {prop[low]}{_unit(unit, prop[low])})"
    return ""


def _unit(unit: str, count: object) -> str:
    return unit.removesuffix("s") if count == 1 else unit


def _values(values: list[Any]) -> str:
    if set(values) == COMMAND_TYPES | QUERY_TYPES:
        return "a command or query type"
    if set(values) == REJECTION_REASONS:
        return "a [rejection reason](#rejection-reasons)"
    if len(values) > _MAX_LISTED_VALUES:
        return f"one of {len(values)} values"
    return "one of " + ", ".join(f"`{value}`" for value in values)


def anchor(name: str) -> str:
    """The anchor GitHub gives a heading that consists of ``name`` in backticks."""
    return name.lower()


def field_rows(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """(name, type, required, description) of each property of an object schema, escaped."""
    required = set(schema.get("required", ()))
    rows: list[tuple[str, ...]] = []
    for name, prop in schema.get("properties", {}).items():
        needed = "yes" if name in required else _optional(prop)
        description = str(prop.get("description", "")).replace("|", "\\|")
        kind = schema_type(prop, defs).replace("|", "\\|")
        rows.append((f"`{name}`", kind, needed, description))
    return rows


def field_table(schema: Mapping[str, Any], defs: Mapping[str, Any], heading: str) -> list[str]:
    """A Markdown table of an object schema's properties: name, type, required, description."""
    rows = field_rows(schema, defs)
    if not rows:
        return ["No fields: the payload is an empty object `{}`."]
    lines = [f"| {heading} | type | required | description |", "| --- | --- | --- | --- |"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _optional(prop: Mapping[str, Any]) -> str:
    if prop.get("default") is None:
        return "no"
    return f"no (default `{json.dumps(prop['default'])}`)"


def model_table(cls: type[BaseModel], heading: str = "field") -> list[str]:
    """The field table of a model, from its JSON Schema."""
    schema = cls.model_json_schema(mode="validation")
    return field_table(schema, schema.get("$defs", {}), heading)


def _json(value: Any) -> list[str]:
    return ["```json", *json.dumps(value, indent=2, ensure_ascii=False).splitlines(), "```"]


def _codes(codes: Iterable[str]) -> str:
    listed = [f"`{code}`" for code in codes]
    return ", ".join(listed) if listed else "none"


def _facts(cls: type[MessageEnvelope]) -> list[str]:
    name = type_name(cls)
    if issubclass(cls, CommandEnvelope):
        events = ", ".join(
            f"[`{type_name(e)}`](#{anchor(type_name(e))}) (`{e.routing_key}`)" for e in cls.events
        )
        keys = " then ".join(f"`{field}`" for field in cls.ordering_fields)
        return [
            f"- Command: publish to `{COMMANDS_EXCHANGE}` with routing key `{name}`.",
            f"- Success events: {events}.",
            f"- Ordering key fields: {keys or 'none (keyed by `message_id`)'}.",
            f"- Rejection reasons: {_codes(cls.rejections)}.",
        ]
    if issubclass(cls, QueryEnvelope):
        return [
            f"- Query: publish to `{COMMANDS_EXCHANGE}` with routing key `{name}` and `reply_to`.",
            f"- Answer: `QueryResult` with payload `{cls.result.__name__}`, or `CommandRejected`.",
            f"- Rejection reasons: {_codes(cls.rejections)}.",
        ]
    if issubclass(cls, RoutedEvent):
        return [f"- Event: published to `{EVENTS_EXCHANGE}` with routing key `{cls.routing_key}`."]
    return ["- Reply: the answer to a query, selected by `query_type` (see each query's result)."]


def summary(cls: type[Any]) -> str:
    """The first paragraph of a class's docstring on one line, in Markdown."""
    return " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split()).replace("``", "`")


def message_block(cls: type[MessageEnvelope]) -> list[str]:
    """The reference block of one message type: facts, payload fields and an example."""
    name = type_name(cls)
    lines = [f"#### `{name}`", "", summary(cls), "", *_facts(cls)]
    lines.append(f"- Schema version: {cls.schema_version}.")
    payload = cls.model_fields["payload"].annotation
    if isinstance(payload, type) and issubclass(payload, BaseModel):
        note = summary(payload)
        if note != f"The fields of {name}.":
            lines += ["", f"Payload: {note.removeprefix(f'The fields of {name}: ')}"]
        lines += ["", *model_table(payload, "payload field")]
    else:
        lines += ["", "Payload: the result of the query answered (each query shows its own)."]
    if issubclass(cls, QueryEnvelope):
        lines += ["", f"Result `{cls.result.__name__}`:", "", *model_table(cls.result, "field")]
    lines += ["", "Example:", "", *_json(example_message(name))]
    if issubclass(cls, QueryEnvelope):
        answer = example_message("QueryResult", example_result_payload(name))
        lines += ["", "Example answer:", "", *_json(answer)]
    return lines
