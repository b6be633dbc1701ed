"""Each message is declared once, on its class; everything else is derived from that."""

from __future__ import annotations

import json
from typing import Any, Literal, get_args

import pytest
from pydantic import Field

from contracts import (
    COMMAND_CLASSES,
    COMMAND_TYPES,
    DOMAIN_EVENT_CLASSES,
    EVENT_ROUTING_KEYS,
    EVENT_TYPES,
    MESSAGE_CLASSES,
    QUERY_CLASSES,
    QUERY_TYPES,
    REJECTION_REASONS,
    RESOURCE_MODULES,
    CommandEnvelope,
    CommandRejectedPayload,
    CustomerCreated,
    EventEnvelope,
    GetCustomerResult,
    Payload,
    QueryEnvelope,
    QueryResult,
    RequestType,
    ResultPayload,
    RoutedEvent,
    declared_in,
    example_message,
    example_payload,
    example_result_payload,
    json_schemas,
    type_name,
)

pytestmark = pytest.mark.unit


class _Fields(Payload):
    """A payload for the classes these tests define."""

    customer_id: str = Field(description="An id.")


COMMAND_DECLARATIONS: dict[str, Any] = {
    "events": (CustomerCreated,),
    "ordering_fields": ("customer_id",),
    "rejections": ("customer_not_found",),
    "example": {"customer_id": "CUST-1"},
}
QUERY_DECLARATIONS: dict[str, Any] = {
    "result": GetCustomerResult,
    "rejections": (),
    "example": {"customer_id": "CUST-1"},
}
EVENT_DECLARATIONS: dict[str, Any] = {"routing_key": "thing.done", "example": {}}


def define(base: type[Any], name: str, declarations: dict[str, Any]) -> type[Any]:
    """Define a concrete message class named ``name`` the way a resource module does."""
    namespace = {
        **declarations,
        "__annotations__": {"type": Literal[name], "payload": _Fields},
        "__module__": __name__,
        "type": name,
    }
    return type(name, (base,), namespace)


KINDS = {
    "command": (CommandEnvelope, "DoThing", COMMAND_DECLARATIONS),
    "query": (QueryEnvelope, "GetCustomer", QUERY_DECLARATIONS),
    "event": (RoutedEvent, "Thing", EVENT_DECLARATIONS),
}
MISSING = [(kind, name) for kind, (_, _, declared) in KINDS.items() for name in declared]


def test_a_fully_declared_class_of_each_kind_is_accepted() -> None:
    for base, name, declarations in KINDS.values():
        assert define(base, name, declarations).example == declarations["example"]


@pytest.mark.parametrize(("kind", "attribute"), MISSING)
def test_a_class_that_forgets_a_declaration_fails_naming_class_and_attribute(
    kind: str, attribute: str
) -> None:
    base, name, declarations = KINDS[kind]
    incomplete = {key: value for key, value in declarations.items() if key != attribute}

    with pytest.raises(TypeError, match=f"{name} must declare the ClassVar '{attribute}'"):
        define(base, name, incomplete)


def test_a_declaration_inherited_from_another_message_does_not_count() -> None:
    parent = define(CommandEnvelope, "Parent", COMMAND_DECLARATIONS)
    namespace = {"__annotations__": {"type": Literal["Child"]}, "type": "Child"}

    with pytest.raises(TypeError, match="Child must declare the ClassVar 'events'"):
        type("Child", (parent,), namespace)


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("events", (), "events must be a non-empty tuple of RoutedEvent classes"),
        ("events", (QueryResult,), "events must be a non-empty tuple of RoutedEvent classes"),
        ("events", [CustomerCreated], "events must be a non-empty tuple"),
        ("ordering_fields", ("account_id",), "payload does not have: ['account_id']"),
        ("ordering_fields", "customer_id", "ordering_fields must be a tuple"),
        ("rejections", ("Not Found",), "rejections must be a tuple of lower_snake_case"),
        ("rejections", "customer_not_found", "rejections must be a tuple"),
        ("example", None, "example must be a dict"),
    ],
)
def test_a_malformed_command_declaration_fails_at_definition(
    attribute: str, value: Any, message: str
) -> None:
    with pytest.raises(TypeError, match=f"^Bad\\.{attribute}") as caught:
        define(CommandEnvelope, "Bad", {**COMMAND_DECLARATIONS, attribute: value})
    assert message in str(caught.value)


def test_a_query_result_must_answer_that_query() -> None:
    with pytest.raises(TypeError, match="query_type must be Literal\\['Other'\\]"):
        define(QueryEnvelope, "Other", QUERY_DECLARATIONS)


def test_an_event_routing_key_must_be_dotted_lower_case() -> None:
    with pytest.raises(TypeError, match=r"Thing\.routing_key"):
        define(RoutedEvent, "Thing", {**EVENT_DECLARATIONS, "routing_key": "ThingDone"})


def test_abstract_bases_need_no_declarations() -> None:
    assert type("AnyCommand", (CommandEnvelope,), {"__module__": __name__})


def test_registration_is_commands_then_queries_then_events_in_definition_order() -> None:
    names = list(MESSAGE_CLASSES)
    commands, queries = len(COMMAND_TYPES), len(QUERY_TYPES)

    assert set(names[:commands]) == COMMAND_TYPES
    assert set(names[commands : commands + queries]) == QUERY_TYPES
    assert set(names[commands + queries :]) == EVENT_TYPES
    assert names[:3] == ["CreateCustomer", "UpdateCustomer", "DeleteCustomer"]
    assert names.index("FreezeAccounts") + 1 == names.index("UnfreezeAccounts")
    assert names[-3:] == ["CommandRejected", "CommandDeadLettered", "QueryResult"]


def test_registration_order_follows_the_resource_modules() -> None:
    modules = [cls.__module__ for cls in COMMAND_CLASSES]

    assert modules == sorted(modules, key=[m.__name__ for m in RESOURCE_MODULES].index)
    assert declared_in(RESOURCE_MODULES, CommandEnvelope) == COMMAND_CLASSES


def test_every_message_class_lives_in_a_resource_module_or_the_replies() -> None:
    resource_names = {module.__name__ for module in RESOURCE_MODULES}
    for cls in MESSAGE_CLASSES.values():
        assert cls.__module__ in resource_names | {"contracts.replies"}, cls.__name__


def test_request_type_literal_is_every_command_and_query_in_registration_order() -> None:
    assert list(get_args(RequestType)) == [type_name(c) for c in (*COMMAND_CLASSES, *QUERY_CLASSES)]


def test_rejection_reasons_are_the_union_of_what_the_requests_declare() -> None:
    declared = {code for cls in (*COMMAND_CLASSES, *QUERY_CLASSES) for code in cls.rejections}
    reason_schema = json_schemas()["CommandRejected"]["$defs"]["RejectionReason"]

    assert declared == REJECTION_REASONS
    assert set(reason_schema["enum"]) == REJECTION_REASONS


def test_command_rejected_accepts_exactly_the_request_types() -> None:
    schema = CommandRejectedPayload.model_json_schema()

    assert set(schema["properties"]["command_type"]["enum"]) == COMMAND_TYPES | QUERY_TYPES


def test_query_result_payload_union_holds_every_query_result_by_query_type() -> None:
    schema = json_schemas()["QueryResult"]
    mapping = schema["properties"]["payload"]["discriminator"]["mapping"]

    assert set(mapping) == QUERY_TYPES
    for query in QUERY_CLASSES:
        assert mapping[type_name(query)].endswith(f"/{query.result.__name__}")
        assert issubclass(query.result, ResultPayload)


def test_every_domain_event_is_produced_by_some_command() -> None:
    produced = {event for command in COMMAND_CLASSES for event in command.events}

    assert set(DOMAIN_EVENT_CLASSES) == produced
    assert {type_name(e) for e in DOMAIN_EVENT_CLASSES} <= set(EVENT_ROUTING_KEYS)


@pytest.mark.parametrize("message_type", sorted(MESSAGE_CLASSES))
def test_examples_come_from_the_class_declaration_and_are_fresh_copies(message_type: str) -> None:
    cls = MESSAGE_CLASSES[message_type]
    payload = example_payload(message_type)

    assert payload == cls.example
    payload["mutated"] = True
    assert "mutated" not in example_payload(message_type)
    assert cls.model_validate_json(json.dumps(example_message(message_type))).type == message_type


@pytest.mark.parametrize("query", QUERY_CLASSES, ids=type_name)
def test_result_examples_come_from_the_result_class(query: type[QueryEnvelope]) -> None:
    payload = example_result_payload(type_name(query))

    assert payload == {"query_type": type_name(query), **query.result.example}
    query.result.model_validate_json(json.dumps(payload))


def test_requests_are_not_events_and_every_event_has_an_envelope() -> None:
    for name, cls in MESSAGE_CLASSES.items():
        is_request = issubclass(cls, CommandEnvelope | QueryEnvelope)
        assert is_request == (name in COMMAND_TYPES | QUERY_TYPES)
        assert is_request != issubclass(cls, EventEnvelope)
