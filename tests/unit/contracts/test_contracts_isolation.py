"""contracts/ stands alone: pydantic and the standard library, nothing of the worker."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import contracts

pytestmark = pytest.mark.unit

BLOCKED = ("sqlalchemy", "aio_pika", "aiormq", "asyncpg", "structlog", "worker", "alembic")
PACKAGE_DIR = Path(contracts.__file__).parent
MODULES = sorted(f"contracts.{info.name}" for info in pkgutil.iter_modules([str(PACKAGE_DIR)]))

_PROGRAM = """
import importlib, importlib.abc, json, sys

BLOCKED = set({blocked!r})

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked import of {{name}}")
        return None

sys.meta_path.insert(0, Blocker())
for name in {modules!r}:
    importlib.import_module(name)
import contracts
json.dumps(contracts.asyncapi_document())
message = contracts.parse_message(json.dumps(contracts.example_message("CreateCustomer")).encode())
assert contracts.ordering_key(message) == "email:ada@example.com"
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print("LOADED:" + ",".join(loaded))
"""


def test_every_contracts_module_imports_with_worker_dependencies_blocked() -> None:
    program = _PROGRAM.format(blocked=BLOCKED, modules=MODULES)
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PACKAGE_DIR.parent,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "LOADED:"


def test_the_module_list_covers_the_package() -> None:
    assert {"contracts.base", "contracts.parsing", "contracts.schema"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_only_pydantic_stdlib_and_contracts(module: str) -> None:
    path = PACKAGE_DIR / f"{module.rsplit('.', 1)[1]}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    allowed = {"pydantic", "pydantic_core", "contracts", "__future__"}
    foreign = {root for root in roots - allowed if root not in sys.stdlib_module_names}
    assert not foreign, f"{module} imports {sorted(foreign)}"
