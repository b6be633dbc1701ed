"""The contract's HTML page (``worker contract html``), checked by parsing what it renders.

The page is well-formed XML, so ``xml.etree`` reads it; every check below looks at the parsed
tree (ids, links, tables, examples) rather than at substrings of the markup.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from contracts import (
    COMMAND_TYPES,
    CONTRACT_VERSION,
    MESSAGE_CLASSES,
    QUERY_TYPES,
    REJECTION_REASONS,
    CommandEnvelope,
    CreateCustomer,
    CreateCustomerPayload,
    EventEnvelope,
    MessageEnvelope,
    QueryEnvelope,
    RequestEnvelope,
    RoutedEvent,
    asyncapi_document,
    dead_letter_headers_schema,
    event_headers_schema,
    example_message,
    example_result_payload,
    json_schemas,
    parse_event,
    parse_message,
    partition_queue_name,
    request_headers_schema,
    type_name,
)
from contracts.html import render_contract_html
from contracts.markdown import anchor
from contracts.resources import COMMAND_CLASSES, QUERY_CLASSES
from contracts.topology import (
    COMMANDS_EXCHANGE,
    DEAD_LETTER_QUEUE,
    DELAY_QUEUE_PREFIX,
    EVENTS_EXCHANGE,
    PARTITIONS_EXCHANGE,
)

pytestmark = pytest.mark.unit

PAGE = render_contract_html()
TREE = ET.fromstring(PAGE)
IDS = {element.get("id"): element for element in TREE.iter() if element.get("id")}
FETCHING_TAGS = {"script", "link", "img", "iframe", "object", "embed", "audio", "video", "source"}


def text(element: ET.Element) -> str:
    """All the text inside an element, entities decoded, whitespace collapsed."""
    return " ".join("".join(element.itertext()).split())


def child(element: ET.Element, path: str) -> ET.Element:
    found = element.find(path)
    assert found is not None, f"no {path}"
    return found


def section(message_type: str) -> ET.Element:
    return IDS[anchor(message_type)]


def tables(element: ET.Element, css: str = "fields") -> list[ET.Element]:
    return [t for t in element.iter("table") if t.get("class") == css]


def first_column(table: ET.Element) -> list[str]:
    return [cell for cell in map(first_column_of, table.iter("tr")) if cell is not None]


def first_column_of(row: ET.Element) -> str | None:
    cells = row.findall("td")
    return text(cells[0]) if cells else None


def facts(message_type: str) -> dict[str, ET.Element]:
    """The definition list of a message: term → its ``dd`` element."""
    [dl] = [d for d in section(message_type).iter("dl") if d.get("class") == "facts"]
    children = list(dl)
    return {text(dt): dd for dt, dd in zip(children[::2], children[1::2], strict=True)}


def hrefs(element: ET.Element) -> list[str]:
    return [a.get("href", "") for a in element.iter("a")]


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="validation")


def payload_model(cls: type[MessageEnvelope]) -> type[BaseModel] | None:
    payload = cls.model_fields["payload"].annotation
    return payload if isinstance(payload, type) and issubclass(payload, BaseModel) else None


def nested_objects() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object (not enum) a payload or a result refers to, by its ``$defs`` name."""
    for cls in MESSAGE_CLASSES.values():
        models = [payload_model(cls), cls.result if issubclass(cls, QueryEnvelope) else None]
        for model in filter(None, models):
            for name, schema in schema_of(model).get("$defs", {}).items():
                if "enum" not in schema:
                    yield name, schema


def test_the_page_is_a_well_formed_html_document_named_for_its_version() -> None:
    assert PAGE.startswith("<!DOCTYPE html>\n")
    assert TREE.tag == "html"
    assert TREE.get("lang") == "en"
    assert [m.get("charset") for m in TREE.iter("meta") if m.get("charset")] == ["utf-8"]
    assert CONTRACT_VERSION in text(child(TREE, "head/title"))
    assert render_contract_html() == PAGE, "the page is not deterministic"


def test_every_id_is_unique() -> None:
    ids = [element.get("id") for element in TREE.iter() if element.get("id")]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("message_type", list(MESSAGE_CLASSES))
def test_every_message_type_has_a_section_under_its_anchor(message_type: str) -> None:
    cls = MESSAGE_CLASSES[message_type]
    found = section(message_type)
    kind = (
        "command" if cls in COMMAND_CLASSES else "query" if cls in QUERY_CLASSES
        else "event" if issubclass(cls, RoutedEvent) else "reply"
    )  # fmt: skip

    assert found.tag == "section"
    assert found.get("data-type") == message_type
    assert found.get("data-kind") == kind
    assert text(child(found, "h4")).startswith(message_type)
    assert f"#{anchor(message_type)}" in hrefs(IDS["contents"])


@pytest.mark.parametrize("message_type", list(MESSAGE_CLASSES))
def test_every_payload_and_result_field_is_listed(message_type: str) -> None:
    cls = MESSAGE_CLASSES[message_type]
    models = [payload_model(cls), cls.result if issubclass(cls, QueryEnvelope) else None]
    expected = [list(schema_of(m)["properties"]) for m in models if m is not None]

    listed = [first_column(table) for table in tables(section(message_type))]

    assert listed == expected
    if payload_model(cls) is None:  # QueryResult: one payload per query, shown by each query
        assert "query_type" in text(section(message_type))


def test_every_nested_object_has_a_section_with_its_fields() -> None:
    objects = dict(nested_objects())
    assert {"CustomerView", "AccountView", "CustomerChanges"} <= set(objects)
    for name, schema in objects.items():
        found = IDS[anchor(name)]
        [table] = tables(found)
        assert found.get("class") == "object"
        assert first_column(table) == list(schema["properties"]), name
        assert f"#{anchor(name)}" in hrefs(IDS["contents"])


def test_every_link_points_into_the_page() -> None:
    links = hrefs(TREE)
    assert links
    for href in links:
        assert href.startswith("#"), href
        assert href[1:] in IDS, f"broken anchor {href}"


def test_nothing_is_loaded_from_anywhere() -> None:
    for element in TREE.iter():
        assert element.tag not in FETCHING_TAGS, element.tag
        assert "src" not in element.attrib
        assert not any(name.startswith("on") for name in element.attrib), element.attrib
        assert not any("://" in value for value in element.attrib.values()), element.attrib
    [style] = TREE.iter("style")
    assert style.text
    assert "url(" not in style.text
    assert "@import" not in style.text
    assert "<script" not in PAGE.lower()


@pytest.mark.parametrize("message_type", sorted(COMMAND_TYPES))
def test_a_command_shows_its_routing_key_events_ordering_key_and_rejections(
    message_type: str,
) -> None:
    cls = MESSAGE_CLASSES[message_type]
    assert issubclass(cls, CommandEnvelope)
    shown = facts(message_type)

    assert text(shown["Publish"]) == f"to {COMMANDS_EXCHANGE}, routing key {message_type}"
    assert hrefs(shown["Success events"]) == [f"#{anchor(type_name(e))}" for e in cls.events]
    for event in cls.events:
        assert event.routing_key in text(shown["Success events"])
    keys = [text(code) for code in shown["Ordering key fields"].iter("code")]
    assert keys == (list(cls.ordering_fields) or ["message_id"])
    assert hrefs(shown["Rejection reasons"]) == [f"#reason-{code}" for code in cls.rejections]


@pytest.mark.parametrize("message_type", sorted(QUERY_TYPES))
def test_a_query_shows_its_routing_key_result_and_rejections(message_type: str) -> None:
    cls = MESSAGE_CLASSES[message_type]
    assert issubclass(cls, QueryEnvelope)
    shown = facts(message_type)

    assert text(shown["Publish"]) == f"to {COMMANDS_EXCHANGE}, routing key {message_type}"
    assert cls.result.__name__ in text(shown["Answer"])
    assert "reply_to" in text(shown["Answer"])
    assert hrefs(shown["Rejection reasons"]) == [f"#reason-{code}" for code in cls.rejections]


@pytest.mark.parametrize(
    "message_type",
    [name for name, cls in MESSAGE_CLASSES.items() if issubclass(cls, RoutedEvent)],
)
def test_an_event_shows_its_routing_key_and_the_commands_producing_it(message_type: str) -> None:
    cls = MESSAGE_CLASSES[message_type]
    assert issubclass(cls, RoutedEvent)
    shown = facts(message_type)
    producers = [c for c in COMMAND_CLASSES if cls in c.events]

    assert text(shown["Publish"]) == f"to {EVENTS_EXCHANGE}, routing key {cls.routing_key}"
    if producers:
        assert hrefs(shown["Produced by"]) == [f"#{anchor(type_name(c))}" for c in producers]
    else:
        assert "Produced by" not in shown


def test_the_query_result_goes_only_to_reply_to() -> None:
    assert "reply_to" in text(facts("QueryResult")["Publish"])
    assert EVENTS_EXCHANGE not in text(facts("QueryResult")["Publish"])


def test_every_rejection_reason_is_listed_with_the_requests_that_may_get_it() -> None:
    [table] = tables(IDS["rejection-reasons"], "reasons")
    rows = {row.get("id"): row for row in table.iter("tr") if row.findall("td")}

    assert set(rows) == {f"reason-{code}" for code in REJECTION_REASONS}
    for code in REJECTION_REASONS:
        reason, answered_to = rows[f"reason-{code}"].findall("td")
        requests = [c for c in (*COMMAND_CLASSES, *QUERY_CLASSES) if code in c.rejections]
        assert text(reason) == code
        assert hrefs(answered_to) == [f"#{anchor(type_name(c))}" for c in requests]


def examples() -> list[tuple[str, dict[str, Any]]]:
    return [
        (pre.get("data-type", ""), json.loads("".join(pre.itertext())))
        for pre in TREE.iter("pre")
        if pre.get("class") == "example"
    ]


def test_every_example_is_a_body_the_contract_accepts() -> None:
    found = examples()
    assert len(found) == len(MESSAGE_CLASSES) + len(QUERY_TYPES)  # + one answer per query
    for message_type, body in found:
        raw = json.dumps(body).encode()
        parsed = (
            parse_message(raw) if message_type in COMMAND_TYPES | QUERY_TYPES else parse_event(raw)
        )
        assert parsed.type == body["type"] == message_type


@pytest.mark.parametrize("message_type", list(MESSAGE_CLASSES))
def test_each_message_shows_its_own_example(message_type: str) -> None:
    shown = [
        json.loads("".join(pre.itertext()))
        for pre in section(message_type).iter("pre")
        if pre.get("class") == "example"
    ]
    expected = [example_message(message_type)]
    if message_type in QUERY_TYPES:
        expected.append(example_message("QueryResult", example_result_payload(message_type)))
    assert shown == expected


def test_the_topology_names_every_exchange_and_queue() -> None:
    topology = text(IDS["topology"])
    for name in (
        COMMANDS_EXCHANGE,
        PARTITIONS_EXCHANGE,
        partition_queue_name(0),
        DELAY_QUEUE_PREFIX,
        DEAD_LETTER_QUEUE,
        EVENTS_EXCHANGE,
    ):
        assert name in topology
    # A value of the contract itself that must be escaped: <WORKER_COMMAND_QUEUE>.partitions
    assert "<WORKER_COMMAND_QUEUE>.partitions" in topology
    assert "&lt;WORKER_COMMAND_QUEUE&gt;.partitions" in PAGE


def test_the_headers_table_lists_every_header() -> None:
    [table] = tables(IDS["headers"], "headers")
    schemas = (request_headers_schema(), event_headers_schema(), dead_letter_headers_schema())
    expected = list(dict.fromkeys(name for s in schemas for name in s["properties"]))
    assert first_column(table) == expected


def test_the_envelope_lists_the_fields_of_requests_and_of_events() -> None:
    listed = [first_column(table) for table in tables(IDS["envelope"])]
    assert listed == [
        list(schema_of(RequestEnvelope)["properties"]),
        list(schema_of(EventEnvelope)["properties"]),
    ]


def test_descriptions_summaries_and_examples_are_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = 'a <b>bold</b> | & "quoted" </td></table><script>alert(1)</script>'
    original = CreateCustomerPayload.model_json_schema

    def with_hostile_description(**kwargs: Any) -> dict[str, Any]:
        schema = original(**kwargs)
        schema["properties"]["email"]["description"] = hostile
        return schema

    monkeypatch.setattr(CreateCustomerPayload, "model_json_schema", with_hostile_description)
    monkeypatch.setattr(CreateCustomer, "__doc__", f"Register {hostile}.")
    example = {"email": "ada@example.com", "full_name": "Ada </code></pre> & <i>co</i>"}
    monkeypatch.setattr(CreateCustomer, "example", example)

    page = render_contract_html()
    tree = ET.fromstring(page)
    [found] = [s for s in tree.iter("section") if s.get("id") == "createcustomer"]

    assert "<script" not in page
    assert "<b>" not in page
    assert "<i>" not in page
    assert text(child(found, "p")) == f"Register {hostile}."
    [fields, *_] = [t for t in found.iter("table") if t.get("class") == "fields"]
    email = next(row for row in fields.iter("tr") if first_column_of(row) == "email")
    assert text(email.findall("td")[3]) == hostile
    [pre] = [p for p in found.iter("pre") if p.get("class") == "example"]
    assert json.loads("".join(pre.itertext()))["payload"] == example


def test_the_page_renders_with_pydantic_alone() -> None:
    blocked = ("worker", "sqlalchemy", "aio_pika", "structlog", "click", "jinja2", "markdown")
    program = f"""
import importlib.abc, sys
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(name)
sys.meta_path.insert(0, Blocker())
from contracts.html import render_contract_html
assert render_contract_html().startswith("<!DOCTYPE html>")
print(sorted(m for m in sys.modules if m.split(".")[0] in {blocked!r}))
"""
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.fixture
def main() -> click.Command:
    """The ``worker`` command line, imported here so the rest runs without the worker."""
    from worker.cli import main

    return main


def test_worker_contract_html_prints_the_page(main: click.Command) -> None:
    result = CliRunner().invoke(main, ["contract", "html"])

    assert result.exit_code == 0, result.output
    assert result.stdout == PAGE


def test_worker_contract_html_writes_the_page_to_a_file(
    main: click.Command, tmp_path: Path
) -> None:
    target = tmp_path / "contract.html"

    result = CliRunner().invoke(main, ["contract", "html", "--output", str(target)])

    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == PAGE
    assert result.stdout == ""
    assert str(target) in result.stderr


def test_worker_contract_html_says_why_it_cannot_write(main: click.Command, tmp_path: Path) -> None:
    target = tmp_path / "missing-directory" / "contract.html"

    result = CliRunner().invoke(main, ["contract", "html", "-o", str(target)])

    assert result.exit_code == 1
    assert "cannot write" in result.stderr
    assert "Traceback" not in result.output


def test_the_machine_readable_forms_are_unchanged(main: click.Command) -> None:
    asyncapi = CliRunner().invoke(main, ["contract", "asyncapi"])
    schemas = CliRunner().invoke(main, ["contract", "jsonschema"])

    assert json.loads(asyncapi.stdout) == json.loads(json.dumps(asyncapi_document()))
    assert json.loads(schemas.stdout) == json.loads(json.dumps(json_schemas()))
