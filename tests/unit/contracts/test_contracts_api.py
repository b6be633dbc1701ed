"""The package's public surface: sorted exports, a docstring on everything, small modules."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

import contracts

pytestmark = pytest.mark.unit

PACKAGE_DIR = Path(contracts.__file__).parent
MODULES = sorted(info.name for info in pkgutil.iter_modules([str(PACKAGE_DIR)]))
TOOLS = {"docs", "html", "markdown"}
"""Modules that render the repository's contract page (``python -m contracts.docs``).

They are not part of the importable contract, so the package does not re-export them (and
importing ``contracts.docs`` from ``contracts`` would make ``python -m`` warn).
"""


def test_all_is_sorted_unique_and_importable() -> None:
    names = contracts.__all__

    assert len(set(names)) == len(names)
    assert names == sorted(
        names, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n)
    )
    assert all(hasattr(contracts, name) for name in names)


def test_every_public_class_and_function_has_a_one_line_summary() -> None:
    for name in contracts.__all__:
        value = getattr(contracts, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            doc = inspect.getdoc(value) or ""
            assert doc.strip(), f"{name} has no docstring"
            assert doc.splitlines()[0].rstrip().endswith("."), f"{name}: summary is not a sentence"


def test_every_model_field_has_a_description() -> None:
    for name in contracts.__all__:
        value = getattr(contracts, name)
        if inspect.isclass(value) and issubclass(value, BaseModel):
            schema = value.model_json_schema()
            for field, spec in schema.get("properties", {}).items():
                assert spec.get("description"), f"{name}.{field} has no description"


@pytest.mark.parametrize("module", MODULES)
def test_modules_stay_small(module: str) -> None:
    lines = (PACKAGE_DIR / f"{module}.py").read_text(encoding="utf-8").count("\n")
    assert lines <= 330, f"contracts/{module}.py has {lines} lines; split it"


@pytest.mark.parametrize("module", [m for m in MODULES if m not in TOOLS | {"__init__"}])
def test_every_module_exports_through_the_package(module: str) -> None:
    exported = getattr(__import__(f"contracts.{module}", fromlist=["__all__"]), "__all__", [])
    assert set(exported) <= set(contracts.__all__)


def test_the_package_exports_nothing_but_what_its_modules_export() -> None:
    modules = [m for m in MODULES if m not in TOOLS | {"__init__"}]
    exported = {
        name
        for module in modules
        for name in __import__(f"contracts.{module}", fromlist=["__all__"]).__all__
    }
    assert set(contracts.__all__) == exported


@pytest.mark.parametrize("module", sorted(TOOLS))
def test_tool_modules_are_not_imported_by_the_package(module: str) -> None:
    program = f"import contracts, sys; print('contracts.{module}' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


V1_EXPORTS = json.loads(
    (Path(__file__).resolve().parents[2] / "snapshots" / "contracts_v1_exports.json").read_text()
)
"""What the v1 package exported (``contracts`` and the modules the worker imports from)."""


@pytest.mark.parametrize("module", sorted(V1_EXPORTS))
def test_every_name_exported_in_v1_is_still_importable_from_the_same_module(module: str) -> None:
    imported = importlib.import_module(module)
    missing = [name for name in V1_EXPORTS[module] if not hasattr(imported, name)]
    assert not missing, f"{module} lost {missing}"
    if module == "contracts":
        assert set(V1_EXPORTS[module]) <= set(contracts.__all__)
