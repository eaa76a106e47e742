"""Who may import whom: the contract is `wikipulse`, and the product ships no dev tools."""

from __future__ import annotations

import ast
import re

import pytest

from tests.support.paths import ROOT

PRODUCT = ("wikipulse", "producer", "processor", "dashboard")
#: what each product package may import from the project
ALLOWED = {
    "wikipulse": {"wikipulse"},
    "producer": {"producer", "wikipulse"},
    "processor": {"processor", "wikipulse"},
    "dashboard": {"dashboard", "wikipulse"},
}


def project_imports(package: str) -> dict[str, set[str]]:
    """For each module of ``package``, the top-level project packages it imports."""
    project = {*PRODUCT, "devtools", "tests", "benchmarks"}
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names & project
    return found


@pytest.mark.parametrize("package", PRODUCT)
def test_product_packages_import_only_the_contract_and_themselves(package):
    for module, imported in project_imports(package).items():
        assert imported <= ALLOWED[package], f"{module} imports {imported - ALLOWED[package]}"


#: The harness tests and benchmarks share: it reads Redis through the contract too.
HARNESS = ("devtools", "benchmarks", "tests/support")
#: The contenders the processor is compared with, and the oracle it is checked against:
#: they write the contract's keys with code of their own, so they check it independently.
CONTENDERS = ("benchmarks/naive_app.py", "benchmarks/bytewax_flow.py")


#: The one module that joins a prefix to a name, and the script it hands the keys to.
KEYS = ROOT / "wikipulse" / "store" / "keys.py"
LUA = ROOT / "wikipulse" / "store" / "write_windows.lua"


def test_the_redis_keys_are_built_in_one_place():
    """Only wikipulse/store/keys.py joins the prefix to a name, in the product and in the
    harness; the Lua script gets whole keys, and key prefixes from `KeyLayout` that it
    only completes with a window start."""
    joins = re.compile(r"prefix\}|prefix *\+|\.\. *start")
    files = [*ROOT.glob("*/**/*.py")]
    checked = [
        p
        for p in files
        if p.relative_to(ROOT).parts[0] in PRODUCT
        or (
            str(p.relative_to(ROOT)).startswith(HARNESS)
            and str(p.relative_to(ROOT)) not in CONTENDERS
        )
    ]
    assert len(checked) > 40
    assert all((ROOT / c).exists() for c in CONTENDERS)
    for path in checked:
        found = joins.findall(path.read_text())
        assert path == KEYS or not found, f"{path} builds a key: {found}"
    assert joins.search(KEYS.read_text())
    lua = LUA.read_text()
    key_joins = re.findall(r"(\S+) *\.\. *start", lua)
    assert key_joins and all(j.startswith("b.keys.") for j in key_joins), key_joins
    assert not re.search(r"['\"][a-z]+:['\"] *\.\.", lua), "the script spells a key name"


#: What each room of the store may import of the store: the key layout and the values
#: nothing, the readers never the writer (nor the writer the readers), and the package
#: itself nothing at all (callers import from the room a name lives in).
STORE_ROOMS = {
    "__init__": set(),
    "keys": set(),
    "values": set(),
    "base": {"keys"},
    "writes": {"base", "keys", "values"},
    "reads": {"base", "keys", "values"},
    "history": {"base", "keys", "values", "reads"},
    "window_store": {"keys", "writes", "history"},
}


def store_imports() -> dict[str, set[str]]:
    """For each module of wikipulse/store/, the rooms of the store it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "wikipulse" / "store").glob("*.py")):
        rooms: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                module = node.module if node.level == 0 else f"wikipulse.store.{node.module}"
                if module.startswith("wikipulse.store."):
                    rooms.add(module.removeprefix("wikipulse.store."))
                elif module == "wikipulse.store":
                    rooms |= {alias.name for alias in node.names}
        found[path.stem] = rooms
    return found


def test_the_store_s_rooms_import_one_way():
    found = store_imports()
    assert set(found) == set(STORE_ROOMS), "a room of the store is missing from the rule"
    for room, imported in found.items():
        assert imported <= STORE_ROOMS[room], f"store/{room}.py imports {imported}"
