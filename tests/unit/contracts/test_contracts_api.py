"""The package's public surface: sorted exports, a docstring on everything, small modules."""

from __future__ import annotations

import inspect
import pkgutil
from pathlib import Path

import pytest
from pydantic import BaseModel

import contracts

pytestmark = pytest.mark.unit

PACKAGE_DIR = Path(contracts.__file__).parent
MODULES = sorted(info.name for info in pkgutil.iter_modules([str(PACKAGE_DIR)]))


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


@pytest.mark.parametrize("module", [m for m in MODULES if m != "__init__"])
def test_every_module_exports_through_the_package(module: str) -> None:
    exported = getattr(__import__(f"contracts.{module}", fromlist=["__all__"]), "__all__", [])
    assert set(exported) <= set(contracts.__all__)
