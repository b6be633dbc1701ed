"""docs/contract.md and docs/asyncapi.json stay in step with contracts/, and stand alone."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from contracts import (
    CONTRACT_VERSION,
    MESSAGE_CLASSES,
    REJECTION_REASONS,
    asyncapi_document,
)
from contracts.docs import REGENERATE_COMMAND, SECTIONS, main, render_asyncapi, render_contract_page

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"
PAGE = DOCS / "contract.md"
ASYNCAPI = DOCS / "asyncapi.json"
TEXT = PAGE.read_text(encoding="utf-8")
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)


def github_anchor(heading: str) -> str:
    """The anchor GitHub derives from a heading's text."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_the_contract_page_matches_the_contract_package() -> None:
    assert render_contract_page(TEXT) == TEXT, (
        f"docs/contract.md is out of date; regenerate it with\n  {REGENERATE_COMMAND}"
    )


def test_the_committed_asyncapi_document_matches_the_contract_package() -> None:
    committed = ASYNCAPI.read_text(encoding="utf-8")

    assert committed == render_asyncapi(), (
        f"docs/asyncapi.json is out of date; regenerate it with\n  {REGENERATE_COMMAND}"
    )
    assert json.loads(committed) == json.loads(json.dumps(asyncapi_document()))


def test_the_page_refers_to_nothing_outside_the_repository() -> None:
    assert "shared/" not in TEXT
    assert "CONTRACT.md" not in TEXT
    for target in LINK.findall(TEXT):
        assert not target.startswith(("http:", "https:", "/", "file:")), target
        if target.startswith("#"):
            continue
        resolved = (DOCS / target.split("#")[0]).resolve()
        assert resolved.exists(), f"broken link {target}"
        assert resolved.is_relative_to(ROOT), f"{target} points outside the repository"


def test_every_in_page_link_has_a_heading() -> None:
    anchors = {github_anchor(heading) for heading in HEADING.findall(TEXT)}
    targets = {target[1:] for target in LINK.findall(TEXT) if target.startswith("#")}

    assert targets
    assert targets <= anchors, sorted(targets - anchors)


def test_the_page_documents_every_message_and_rejection_reason() -> None:
    headings = set(HEADING.findall(TEXT))

    for name in MESSAGE_CLASSES:
        assert f"`{name}`" in {heading.removeprefix("### ").strip() for heading in headings}
    for code in REJECTION_REASONS:
        assert f"| `{code}` |" in TEXT
    assert f"**{CONTRACT_VERSION}**" in TEXT


def test_rendering_replaces_a_stale_section_and_keeps_the_prose() -> None:
    stale = TEXT.replace("| `email_taken` |", "| `email_gone` |").replace(
        "## Processing guarantees", "## Processing guarantees (edited by hand)"
    )

    rendered = render_contract_page(stale)

    assert "`email_gone`" not in rendered
    assert "## Processing guarantees (edited by hand)" in rendered
    assert render_contract_page(rendered) == rendered


def test_rendering_refuses_a_page_without_every_generated_section() -> None:
    without = re.sub(r"<!-- BEGIN GENERATED: rejections -->.*?-->\n", "", TEXT, flags=re.S)

    with pytest.raises(ValueError, match="rejections"):
        render_contract_page(without)


def test_rendering_refuses_an_unknown_section() -> None:
    page = TEXT + "\n<!-- BEGIN GENERATED: nonsense -->\n<!-- END GENERATED: nonsense -->\n"

    with pytest.raises(ValueError, match="nonsense"):
        render_contract_page(page)


def test_every_section_renderer_has_markers_on_the_page() -> None:
    for name in SECTIONS:
        assert f"<!-- BEGIN GENERATED: {name} -->" in TEXT
        assert f"<!-- END GENERATED: {name} -->" in TEXT


def test_the_command_line_checks_and_rewrites_the_files(tmp_path: Path) -> None:
    shutil.copy(PAGE, tmp_path / "contract.md")
    (tmp_path / "asyncapi.json").write_text("{}\n", encoding="utf-8")
    args = ["--docs-dir", str(tmp_path)]

    assert main(["--check", *args]) == 1
    assert (tmp_path / "asyncapi.json").read_text(encoding="utf-8") == "{}\n"
    assert main(args) == 0
    assert main(["--check", *args]) == 0
    assert (tmp_path / "asyncapi.json").read_text(encoding="utf-8") == render_asyncapi()
