"""The contract as one self-contained HTML page (``worker contract html`` writes it).

Built from the same derivations as ``docs/contract.md``: :mod:`contracts.markdown`'s cells,
the tables of :data:`contracts.docs.SECTIONS` and each message's declarations. Inline CSS, no
script, no link leaving the page (it works offline from ``file://``), every text escaped,
well-formed XML, an anchor on each message, object and reason. A tool, like contracts.docs:
the package does not import it.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from pydantic import BaseModel

from contracts.base import (
    CommandEnvelope,
    EventEnvelope,
    MessageEnvelope,
    QueryEnvelope,
    RequestEnvelope,
    RoutedEvent,
)
from contracts.docs import SECTIONS
from contracts.examples import example_message, example_result_payload
from contracts.markdown import anchor, field_rows, summary
from contracts.registry import MESSAGE_CLASSES, type_name
from contracts.replies import REJECTION_REASONS, CommandDeadLettered, CommandRejected, QueryResult
from contracts.resources import COMMAND_CLASSES, QUERY_CLASSES, RESOURCE_MODULES
from contracts.schema import CONTRACT_VERSION
from contracts.topology import COMMANDS_EXCHANGE, EVENTS_EXCHANGE

__all__: list[str] = []

_LINK: Final = re.compile(r"\[([^\]]+)\]\(#([a-z0-9_-]+)\)")
_CODE: Final = re.compile(r"`([^`]+)`")
_BOLD: Final = re.compile(r"\*\*([^*]+)\*\*")
_CELL: Final = re.compile(r"(?<!\\)\|")
_TITLE: Final = f"The fca-worker wire contract {CONTRACT_VERSION}"
_INTRO: Final = (
    f"<p>Contract version <strong>{html.escape(CONTRACT_VERSION)}</strong>, generated from the "
    "<code>contracts</code> package. The prose (guarantees, partitions, versions) is in "
    "<code>docs/contract.md</code>; the machine-readable form is <code>docs/asyncapi.json</code> "
    "(<code>worker contract asyncapi</code>).</p>"
)
_RESULT_PAYLOAD: Final = (
    "<p>Payload: the result of the query answered, selected by <code>query_type</code> "
    "(each query shows its result and an example answer).</p>"
)
_HEAD: Final = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8" />\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1" />'
)
_STYLE: Final = """
body{margin:0;display:flex;font:15px/1.5 system-ui,sans-serif;color:#1f2328;background:#fff}
nav{position:sticky;top:0;height:100vh;overflow:auto;flex:none;width:18rem;box-sizing:border-box;
padding:1rem;border-right:1px solid #d0d7de;background:#f6f8fa;font-size:.88em}
nav ul{list-style:none;margin:.1rem 0;padding-left:.9rem}nav>ul{padding:0}
main{min-width:0;max-width:64rem;padding:1rem 2rem 4rem}a{color:#0969da;text-decoration:none}
table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}th{background:#f6f8fa}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.75rem;overflow:auto}
section.message,section.object{border-top:1px solid #d0d7de;margin-top:1.5rem}
section:target>h4,tr:target{background:#fff8c5}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}
.kind{font-size:.7em;font-weight:normal;padding:.05rem .5rem;border-radius:1rem;background:#ddf4ff}
.event .kind{background:#dafbe1}.query .kind{background:#fff8c5}.reply .kind{background:#fbefff}
.object .kind{background:#eaeef2}@media print{nav{display:none}}
@media (max-width:50rem){body{display:block}nav{position:static;height:auto;width:auto}}
"""


_Object = tuple[str, Mapping[str, Any], Mapping[str, Any]]
"""A nested object a payload or result refers to: its name, schema and ``$defs``."""


class _Group(NamedTuple):
    """A subsection of Messages: a resource's messages and objects, or the replies."""

    ident: str
    title: str
    intro: str
    messages: tuple[type[MessageEnvelope], ...]
    objects: tuple[_Object, ...]


def render_contract_html() -> str:
    """The whole contract as one self-contained, offline HTML page (UTF-8 text)."""
    groups = _groups()
    sections = [
        ("topology", "Topology", _markdown(SECTIONS["names"](), "names")),
        ("headers", "Headers", _markdown(SECTIONS["headers"](), "headers")),
        ("envelope", "Envelope", _envelope()),
        ("messages", "Messages", _messages(groups)),
        ("rejection-reasons", "Rejection reasons", _rejections()),
    ]
    title, body = _text(_TITLE), "\n".join(_section(*section) for section in sections)
    head = f"{_HEAD}\n<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>"
    main = f"<main>\n<h1>{title}</h1>\n{_INTRO}\n{body}\n</main>"
    return f"{head}\n{_contents(sections, groups)}\n{main}\n</body>\n</html>\n"


def _text(value: object) -> str:
    return html.escape(str(value), quote=True)


def _inline(markdown: str, cell: bool = False) -> str:
    """The inline Markdown of the contract's derivations (code, #links, bold), escaped."""
    escaped = _text(markdown.replace("\\|", "|") if cell else markdown)
    escaped = _LINK.sub(r'<a href="#\2">\1</a>', escaped)
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    return _CODE.sub(r"<code>\1</code>", escaped)


def _code(value: str) -> str:
    return f"<code>{_text(value)}</code>"


def _ref(name: str) -> str:
    return f'<a href="#{_text(anchor(name))}">{_code(name)}</a>'


def _section(ident: str, title: str, content: str, level: int = 2) -> str:
    return f'<section id="{ident}">\n<h{level}>{_text(title)}</h{level}>\n{content}\n</section>'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], css: str) -> str:
    """A table of cells that are HTML already; a row with one cell more names its ``id``."""
    lines = [f'<table class="{css}">', "<thead><tr>"]
    lines += [f"<th>{_text(cell)}</th>" for cell in head] + ["</tr></thead>", "<tbody>"]
    for row in rows:
        ident = f' id="{row[len(head)]}"' if len(row) > len(head) else ""
        cells = "".join(f"<td>{cell}</td>" for cell in row[: len(head)])
        lines.append(f"<tr{ident}>{cells}</tr>")
    return "\n".join([*lines, "</tbody>", "</table>"])


def _markdown(lines: Sequence[str], css: str) -> str:
    """Markdown tables and paragraphs (as :data:`contracts.docs.SECTIONS` renders) as HTML."""
    parts: list[str] = []
    rows: list[list[str]] = []
    for line in [*lines, ""]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in _CELL.split(line.strip())[1:-1]])
            continue
        if rows:
            body = [[_inline(cell, cell=True) for cell in row] for row in rows[2:]]
            parts.append(_table(rows[0], body, css))
            rows = []
        if line.strip():
            parts.append(f"<p>{_inline(line)}</p>")
    return "\n".join(parts)


def _fields(schema: Mapping[str, Any], defs: Mapping[str, Any], heading: str) -> str:
    rows = [[_inline(cell, cell=True) for cell in row] for row in field_rows(schema, defs)]
    if not rows:
        return "<p>No fields: the payload is an empty object <code>{}</code>.</p>"
    return _table((heading, "type", "required", "description"), rows, "fields")


def _model(model: type[BaseModel], heading: str) -> str:
    schema = model.model_json_schema(mode="validation")
    return _fields(schema, schema.get("$defs", {}), heading)


def _envelope() -> str:
    requests, events = (_model(cls, "envelope field") for cls in (RequestEnvelope, EventEnvelope))
    replies = "<p>Events, rejections, dead-letter reports and query results:</p>"
    return f"<p>Commands and queries:</p>\n{requests}\n{replies}\n{events}"


def _kind(cls: type[MessageEnvelope]) -> str:
    kinds = [(COMMAND_CLASSES, "command"), (QUERY_CLASSES, "query"), ((QueryResult,), "reply")]
    return next((kind for classes, kind in kinds if cls in classes), "event")


def _groups() -> list[_Group]:
    """Every resource with its messages and the objects they introduce, then the replies."""
    groups: list[_Group] = []
    seen: set[str] = set()
    for module in RESOURCE_MODULES:
        name = module.__name__.rsplit(".", 1)[-1]
        messages = tuple(c for c in MESSAGE_CLASSES.values() if c.__module__ == module.__name__)
        intro = (module.__doc__ or "").strip().splitlines()[0]
        groups.append(_Group(name, name.capitalize(), intro, messages, _objects(messages, seen)))
    replies = (CommandRejected, CommandDeadLettered, QueryResult)
    return [*groups, _Group("replies-and-reports", "Replies and reports", "", replies, ())]


def _objects(messages: Sequence[type[MessageEnvelope]], seen: set[str]) -> tuple[_Object, ...]:
    """The objects (not enums) the payloads and results of ``messages`` refer to, each once."""
    models: list[Any] = [cls.model_fields["payload"].annotation for cls in messages]
    models += [cls.result for cls in messages if issubclass(cls, QueryEnvelope)]
    found: list[_Object] = []
    for model in models:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        defs = model.model_json_schema(mode="validation").get("$defs", {})
        for name, schema in defs.items():
            if name not in seen and "enum" not in schema and name != "Payload":
                seen.add(name)
                found.append((name, schema, defs))
    return tuple(found)


def _contents(sections: Sequence[tuple[str, str, str]], groups: Sequence[_Group]) -> str:
    """The table of contents: every section, resource, message and object, as links."""
    items = []
    for ident, title, _ in sections:
        sub = []
        if ident == "messages":
            for group in groups:
                entries = [f"<li>{_ref(type_name(c))} {_kind(c)}</li>" for c in group.messages]
                entries += [f"<li>{_ref(name)} object</li>" for name, _, _ in group.objects]
                link = f'<a href="#{group.ident}">{_text(group.title)}</a>'
                sub.append(f"<li>{link}<ul>{''.join(entries)}</ul></li>")
        nested = f"<ul>{''.join(sub)}</ul>" if sub else ""
        items.append(f'<li><a href="#{ident}">{_text(title)}</a>{nested}</li>')
    return '<nav id="contents">\n<strong>Contents</strong>\n<ul>' + "\n".join(items) + "</ul></nav>"


def _messages(groups: Sequence[_Group]) -> str:
    rows = [
        [_ref(type_name(cls)), _kind(cls), _text(cls.__module__.rsplit(".", 1)[-1]),
         _inline(summary(cls).split(". ")[0].removesuffix(".") + ".")]
        for cls in MESSAGE_CLASSES.values()
    ]  # fmt: skip
    parts = [_table(("type", "kind", "resource", "summary"), rows, "messages")]
    for group in groups:
        content = [f"<p>{_inline(group.intro)}</p>"] if group.intro else []
        content += [*map(_message, group.messages), *map(_object, group.objects)]
        parts.append(_section(group.ident, group.title, "\n".join(content), 3))
    return "\n".join(parts)


def _heading(ident: str, name: str, kind: str, data: str = "") -> str:
    return (
        f'<section class="{kind}" id="{_text(ident)}"{data}>\n'
        f'<h4>{_code(name)} <span class="kind">{kind.split()[-1]}</span></h4>'
    )


def _object(found: _Object) -> str:
    name, schema, defs = found
    note = _inline(" ".join(str(schema.get("description", "")).split()))
    heading, fields = _heading(anchor(name), name, "object"), _fields(schema, defs, "field")
    return f"{heading}\n<p>{note}</p>\n{fields}\n</section>"


def _message(cls: type[MessageEnvelope]) -> str:
    """One message: summary, facts, payload (and result) fields, example(s)."""
    name, kind = type_name(cls), _kind(cls)
    data = f' data-type="{_text(name)}" data-kind="{kind}"'
    parts = [_heading(anchor(name), name, f"message {kind}", data)]
    parts += [f"<p>{_inline(summary(cls))}</p>", _facts(cls)]
    payload = cls.model_fields["payload"].annotation
    if isinstance(payload, type) and issubclass(payload, BaseModel):
        parts.append("<h5>Payload</h5>")
        note = summary(payload)
        if note != f"The fields of {name}.":
            note = note.removeprefix(f"The fields of {name}: ")
            parts.append(f"<p>{_inline(note[:1].upper() + note[1:])}</p>")
        parts.append(_model(payload, "payload field"))
    else:
        parts.append(_RESULT_PAYLOAD)
    if issubclass(cls, QueryEnvelope):
        parts += [f"<h5>Result {_code(cls.result.__name__)}</h5>", _model(cls.result, "field")]
    parts += ["<h5>Example</h5>", _example(name, example_message(name))]
    if issubclass(cls, QueryEnvelope):
        answer = example_message("QueryResult", example_result_payload(name))
        parts += ["<h5>Example answer</h5>", _example("QueryResult", answer)]
    return "\n".join([*parts, "</section>"])


def _example(message_type: str, body: dict[str, Any]) -> str:
    text = _text(json.dumps(body, indent=2, ensure_ascii=False))
    return f'<pre class="example" data-type="{_text(message_type)}"><code>{text}</code></pre>'


def _facts(cls: type[MessageEnvelope]) -> str:
    """Where a message goes and what it declares, as a definition list."""
    name, facts = type_name(cls), list[tuple[str, str]]()
    if issubclass(cls, RequestEnvelope):
        facts.append(("Publish", f"to {_code(COMMANDS_EXCHANGE)}, routing key {_code(name)}"))
    if issubclass(cls, CommandEnvelope):
        events = [f"{_ref(type_name(e))} ({_code(e.routing_key)})" for e in cls.events]
        keys = " then ".join(_code(field) for field in cls.ordering_fields)
        facts.append(("Success events", ", ".join(events)))
        facts.append(("Ordering key fields", keys or "none (keyed by <code>message_id</code>)"))
    if issubclass(cls, QueryEnvelope):
        answer = f"{_ref('QueryResult')} with payload {_code(cls.result.__name__)}"
        facts.append(("Answer", f"{answer} on <code>reply_to</code>, or {_ref('CommandRejected')}"))
    if issubclass(cls, RequestEnvelope):
        reasons = [f'<a href="#reason-{_text(code)}">{_code(code)}</a>' for code in cls.rejections]
        facts.append(("Rejection reasons", ", ".join(reasons) or "none"))
    if issubclass(cls, RoutedEvent):
        key = _code(cls.routing_key)
        facts.append(("Publish", f"to {_code(EVENTS_EXCHANGE)}, routing key {key}"))
        producers = [_ref(type_name(c)) for c in COMMAND_CLASSES if cls in c.events]
        if producers:
            facts.append(("Produced by", ", ".join(producers)))
    if cls is QueryResult:
        facts.append(("Publish", "only to the query's <code>reply_to</code> queue"))
    facts.append(("Schema version", _text(cls.schema_version)))
    items = "".join(f"<dt>{_text(term)}</dt><dd>{value}</dd>" for term, value in facts)
    return f'<dl class="facts">{items}</dl>'


def _rejections() -> str:
    requests = (*COMMAND_CLASSES, *QUERY_CLASSES)
    rows = []
    for code in sorted(REJECTION_REASONS):
        users = [_ref(type_name(cls)) for cls in requests if code in cls.rejections]
        rows.append([_code(code), ", ".join(users), f"reason-{_text(code)}"])
    intro = (
        f"<p>The <code>reason</code> of a {_ref('CommandRejected')}: a stable code, answered "
        "only to the requests listed with it.</p>"
    )
    return intro + "\n" + _table(("reason", "answered to"), rows, "reasons")
