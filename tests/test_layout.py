"""The package layout holds: rooms import only what docs/architecture.md allows, no import circles, and each
third-party client library is imported by exactly the module that owns it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mapper"
TOP_LEVEL = {"mapper", "mapper.__main__", "mapper.cli", "mapper.app", "mapper.config", "mapper.runtime"}

# room -> rooms (and top-level modules) it may import; the same table is in docs/architecture.md.
ROOMS: dict[str, set[str]] = {
    "source": set(),
    "readings": set(),
    "devices": {"readings"},
    "control": {"devices", "config"},
    "dmi": {"devices"},
    "sinks": {"devices", "readings", "control", "dmi", "config", "pods", "sections"},
    "http": {"devices", "control", "sinks", "config", "sections"},
    "emulator": {"source"},
    "pods": {"sections"},
    "dashboards": set(),
    "sections": set(),
    "demo": {"emulator", "config"},
}

# third-party package -> the modules allowed to import it
OWNERS: dict[str, set[str]] = {
    "jtop": {"mapper.source.jtop"},
    "paho": {"mapper.sinks.mqtt.client"},
    "grpc": {"mapper.dmi.server", "mapper.dmi.edgecore"},  # one per side of the DMI
    "grpc_tools": {"mapper.dmi.regenerate"},
    "google": {"mapper.dmi.convert", "mapper.dmi.manifests"},  # protobuf: DMI messages only
    "prometheus_client": {"mapper.sinks.prometheus.*"},  # the Prometheus output's own room, nothing else
    "yaml": {"mapper.config", "mapper.dmi.manifests", "mapper.dashboards.catalogue", "mapper.dashboards.outputs",
             "mapper.demo.session", "mapper.http.webconfig"},
    "bcrypt": {"mapper.http.webconfig"},
    "urllib3": {"mapper.sinks.push_http"},
    "opentelemetry": {"mapper.sinks.push_otel"},
    "influxdb_client": {"mapper.sinks.db_influxdb2"},
    "redis": {"mapper.sinks.db_redis"},
    "pymysql": {"mapper.sinks.db_mysql"},
}
SINK_CLIENTS = ("paho", "urllib3", "opentelemetry", "influxdb_client", "redis", "pymysql")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module of the package (generated code aside) and everything it imports, at any depth."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "generated" in path.parts:
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[_module_name(path)] = names
    return found


IMPORTS = _imports()
MODULES = set(IMPORTS)


def _internal(names: set[str]) -> set[str]:
    """The package's own modules among imported names (`from mapper.x import y` names module x or x.y)."""
    return {name for name in names if name in MODULES and name != "mapper"}


def _room(module: str) -> str:
    """The folder of a module (or the name of a top-level module)."""
    return module.split(".")[1]


def test_top_level_keeps_only_entry_points_and_wiring() -> None:
    top = {m for m in MODULES if m.count(".") == 1 and not (PACKAGE / m.split(".")[1]).is_dir()}
    assert top | {"mapper"} == TOP_LEVEL
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(ROOMS)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m not in TOP_LEVEL))
def test_rooms_import_only_what_they_may(module: str) -> None:
    room = _room(module)
    allowed = ROOMS[room] | {room}
    wrong = sorted(name for name in _internal(IMPORTS[module]) if _room(name) not in allowed)
    assert not wrong, f"{module} (room {room}) imports {wrong}; {room} may import {sorted(ROOMS[room])}"


def test_no_import_circles() -> None:
    graph = {module: _internal(names) - {module} for module, names in IMPORTS.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not cycles, f"import circles: {cycles}"


def test_each_client_library_has_its_owners_only() -> None:
    users: dict[str, set[str]] = {}
    for module, names in IMPORTS.items():
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top not in ("mapper", "__future__"):
                users.setdefault(top, set()).add(module)
    unexpected = {lib: sorted(mods) for lib, mods in users.items() if lib not in OWNERS}
    assert not unexpected, f"third-party imports without an owner in this test: {unexpected}"
    for lib, owners in OWNERS.items():
        found = users.get(lib, set())
        rooms = {owner[:-1] for owner in owners if owner.endswith(".*")}
        exact = owners - {f"{room}*" for room in rooms}
        outside = sorted(m for m in found - exact if not any(m.startswith(room) for room in rooms))
        assert not outside and exact <= found, f"{lib} is imported by {sorted(found)}, owners {sorted(owners)}"


def test_importing_the_app_loads_no_sink_client_library() -> None:
    """Client libraries load when a Device uses their sink, not with the mapper."""
    import subprocess

    code = f"import sys, mapper.app; print(','.join(m for m in {SINK_CLIENTS!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    assert loaded == ""


def test_readme_layout_has_one_line_per_folder() -> None:
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8").split("## Layout", 1)[1]
    listed = {row.split("`")[1].strip("/") for row in readme.splitlines() if row.startswith("| `mapper/")}
    assert listed == {"mapper"} | {f"mapper/{room}" for room in ROOMS}
