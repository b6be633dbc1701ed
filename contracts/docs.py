"""Keep ``docs/contract.md`` and ``docs/asyncapi.json`` in step with the contract package.

The page's prose is written by hand; the parts between ``<!-- BEGIN GENERATED: name -->``
and ``<!-- END GENERATED: name -->`` are rendered from ``contracts/``. Regenerate both
files from the repository root with::

    .venv/bin/python -m contracts.docs          # rewrite them
    .venv/bin/python -m contracts.docs --check  # exit 1 if either is out of date

Not imported by ``contracts/__init__``: it is a tool for the repository, run as a module.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from pydantic import BaseModel

from contracts.base import EventEnvelope, MessageEnvelope, QueryEnvelope, RequestEnvelope
from contracts.headers import (
    dead_letter_headers_schema,
    event_headers_schema,
    request_headers_schema,
)
from contracts.markdown import anchor, field_rows, message_block, model_table, summary
from contracts.registry import MESSAGE_CLASSES, type_name
from contracts.replies import REJECTION_REASONS, CommandDeadLettered, CommandRejected, QueryResult
from contracts.resources import COMMAND_CLASSES, QUERY_CLASSES, RESOURCE_MODULES
from contracts.schema import CONTRACT_VERSION, asyncapi_document
from contracts.topology import (
    COMMAND_QUEUE,
    COMMANDS_EXCHANGE,
    DEAD_LETTER_QUEUE,
    DEFAULT_PARTITIONS,
    DEFAULT_REPLY_TO_PATTERN,
    DELAY_QUEUE_PREFIX,
    EVENTS_EXCHANGE,
    PARTITIONS_EXCHANGE,
    PARTITIONS_EXCHANGE_TYPE,
    RETRY_QUEUE_PREFIX,
    partition_queue_name,
)

__all__ = [
    "REGENERATE_COMMAND",
    "main",
    "render_asyncapi",
    "render_contract_page",
]

REGENERATE_COMMAND: Final = ".venv/bin/python -m contracts.docs"
"""The command, run from the repository root, that rewrites both generated files."""
_MARKER = re.compile(
    r"(<!-- BEGIN GENERATED: (?P<name>[a-z-]+) -->\n).*?(<!-- END GENERATED: (?P=name) -->)",
    re.DOTALL,
)
_NOTE: Final = f"<!-- Generated from contracts/ by `{REGENERATE_COMMAND}`; do not edit. -->"


def _version() -> list[str]:
    return [f"This page describes contract version **{CONTRACT_VERSION}**."]


def _names() -> list[str]:
    last = partition_queue_name(DEFAULT_PARTITIONS - 1)
    rows = [
        (f"`{COMMANDS_EXCHANGE}`", "topic exchange, durable", "`WORKER_COMMANDS_EXCHANGE`",
         "Publishers send commands and queries here; routing key = the type."),
        (f"`{PARTITIONS_EXCHANGE}`", f"`{PARTITIONS_EXCHANGE_TYPE}` exchange, durable",
         "internal: `<WORKER_COMMAND_QUEUE>.partitions`",
         "Bound to the commands exchange with `#`; hashes the `fca-ordering-key` header."),
        (f"`{partition_queue_name(0)}` … `{last}`",
         "quorum queues, durable, `x-single-active-consumer`",
         f"`WORKER_PARTITIONS` (default {DEFAULT_PARTITIONS})",
         "The worker's input, one queue per partition, named `<WORKER_COMMAND_QUEUE>.pNN`."),
        (f"`{COMMAND_QUEUE}`", "name", "`WORKER_COMMAND_QUEUE`",
         "The command queue; since v2 split into the partitions, and the prefix of their names."),
        (f"`{DELAY_QUEUE_PREFIX}<N>s`", "quorum queues, durable (internal)",
         "`WORKER_RETRY_DELAYS`",
         "One delay queue per delay; after N seconds back to the partitions exchange."),
        (f"`{RETRY_QUEUE_PREFIX}<N>s`", "classic queues of contract v1", "none",
         "v1's delay queues; a v2 worker drains them into the partitions, then deletes them."),
        (f"`{DEAD_LETTER_QUEUE}`", "quorum queue, durable", "`WORKER_DEAD_LETTER_QUEUE`",
         "Commands that could not be processed (the dead-letter queue)."),
        (f"`{EVENTS_EXCHANGE}`", "topic exchange, durable", "`WORKER_EVENTS_EXCHANGE`",
         "Result events; routing key = dotted lower-case event name."),
    ]  # fmt: skip
    lines = ["| name | kind | setting | purpose |", "| --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, "", f"Default `WORKER_REPLY_TO_PATTERN`: `{DEFAULT_REPLY_TO_PATTERN}`."]


def _headers() -> list[str]:
    rows: dict[str, tuple[list[str], str, str]] = {}
    for on, schema in (
        ("commands and queries", request_headers_schema()),
        ("events and replies", event_headers_schema()),
        ("dead letters", dead_letter_headers_schema()),
    ):
        for name, kind, _required, description in field_rows(schema, {}):
            rows.setdefault(name, ([], kind, description))[0].append(on)
    lines = ["| header | on | type | description |", "| --- | --- | --- | --- |"]
    for name, (on_list, kind, description) in rows.items():
        lines.append(f"| {name} | {', '.join(on_list)} | {kind} | {description} |")
    return lines


def _envelope() -> list[str]:
    return [
        "Commands and queries:",
        "",
        *model_table(RequestEnvelope, "envelope field"),
        "",
        "Events, rejections, dead-letter reports and query results:",
        "",
        *model_table(EventEnvelope, "envelope field"),
    ]


def _messages() -> list[str]:
    lines = ["| type | kind | resource | summary |", "| --- | --- | --- | --- |"]
    for cls in MESSAGE_CLASSES.values():
        name, kind, resource = type_name(cls), _kind(cls), cls.__module__.rsplit(".", 1)[-1]
        text = summary(cls).split(". ")[0].removesuffix(".") + "."
        lines.append(f"| [`{name}`](#{anchor(name)}) | {kind} | {resource} | {text} |")
    for module in RESOURCE_MODULES:
        lines += ["", *_resource(module)]
    lines += ["", "### Replies and reports", ""]
    for cls in (CommandRejected, CommandDeadLettered, QueryResult):
        lines += [*message_block(cls), ""]
    return lines[:-1]


def _kind(cls: type[MessageEnvelope]) -> str:
    if cls in COMMAND_CLASSES:
        return "command"
    if cls in QUERY_CLASSES:
        return "query"
    return "reply" if cls is QueryResult else "event"


def _resource(module: ModuleType) -> list[str]:
    title = module.__name__.rsplit(".", 1)[-1].capitalize()
    doc = (module.__doc__ or "").strip().splitlines()[0]
    lines = [f"### {title}", "", doc]
    messages = [cls for cls in MESSAGE_CLASSES.values() if cls.__module__ == module.__name__]
    for cls in messages:
        lines += ["", *message_block(cls)]
    for name in _nested_objects(module, messages):
        value = getattr(module, name)
        lines += ["", f"#### `{name}`", "", summary(value), "", *model_table(value)]
    return lines


def _nested_objects(module: ModuleType, messages: list[type[MessageEnvelope]]) -> list[str]:
    """Names of the module's models that its messages' payloads or results refer to."""
    models: list[type[BaseModel]] = list(messages)
    models += [cls.result for cls in messages if issubclass(cls, QueryEnvelope)]
    referenced = {name for model in models for name in model.model_json_schema().get("$defs", {})}
    own_payloads: list[object] = [m.model_fields["payload"].annotation for m in messages]
    return [
        name
        for name in module.__all__
        if name in referenced
        and getattr(module, name) not in own_payloads
        and not name.endswith("Result")
    ]


def _rejections() -> list[str]:
    lines = ["| reason | answered to |", "| --- | --- |"]
    requests = (*COMMAND_CLASSES, *QUERY_CLASSES)
    for code in sorted(REJECTION_REASONS):
        users = ", ".join(f"`{type_name(cls)}`" for cls in requests if code in cls.rejections)
        lines.append(f"| `{code}` | {users} |")
    return lines


SECTIONS: Final[Mapping[str, Callable[[], list[str]]]] = {
    "version": _version,
    "names": _names,
    "headers": _headers,
    "envelope": _envelope,
    "messages": _messages,
    "rejections": _rejections,
}
"""Every generated section of the contract page, by the name in its markers."""


def render_contract_page(existing_text: str) -> str:
    """The contract page with every generated section rendered afresh from ``contracts``."""
    found: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in SECTIONS:
            raise ValueError(f"unknown generated section {name!r}")
        found.add(name)
        body = "\n".join([_NOTE, *SECTIONS[name]()])
        return f"{match.group(1)}{body}\n{match.group(3)}"

    rendered = _MARKER.sub(replace, existing_text)
    missing = sorted(set(SECTIONS) - found)
    if missing:
        raise ValueError(f"the page lacks the generated sections {missing}")
    return rendered


def render_asyncapi() -> str:
    """The AsyncAPI document, pretty-printed as committed in ``docs/asyncapi.json``."""
    document: dict[str, Any] = asyncapi_document()
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite (or with ``--check`` verify) ``contract.md`` and ``asyncapi.json``."""
    parser = argparse.ArgumentParser(prog="python -m contracts.docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale files")
    parser.add_argument("--docs-dir", type=Path, default=Path("docs"), help="default: ./docs")
    args = parser.parse_args(argv)
    page, spec = args.docs_dir / "contract.md", args.docs_dir / "asyncapi.json"
    wanted = {
        page: render_contract_page(page.read_text(encoding="utf-8")),
        spec: render_asyncapi(),
    }
    stale = [path for path, text in wanted.items() if _read(path) != text]
    for path in stale:
        if args.check:
            print(f"{path} is out of date; run {REGENERATE_COMMAND}", file=sys.stderr)
        else:
            path.write_text(wanted[path], encoding="utf-8")
            print(f"wrote {path}")
    return 1 if args.check and stale else 0


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


if __name__ == "__main__":
    sys.exit(main())
