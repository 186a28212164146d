"""The panel catalogue (deploy/dashboards/panels.yaml): its units, reading it, and checking it problem by problem."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CATALOGUE_PATH = Path(__file__).resolve().parents[2] / "deploy" / "dashboards" / "panels.yaml"
DASHBOARDS = ("grafana", "cluster", "project")
KUBESPHERE = ("cluster", "project")
KINDS = ("graph", "stat", "timeline")
VARIABLES = ("node", "device", "__rate_interval")
DASHBOARD_KEYS = {"grafana": ("title", "uid"), "cluster": ("name", "title"), "project": ("name", "title")}

_VARIABLE = re.compile(r"\$(\w+)")
# A matcher whose value is a dashboard variable, e.g. node=~"$node": the only place $node/$device may stand.
VARIABLE_MATCHER = re.compile(r'[A-Za-z_]\w*\s*=~\s*"\$(?:node|device)"')
_NAMESPACE_MATCHER = re.compile(r"[{,]\s*namespace\s*(?:=~|!~|!=|=)")
_NODE_FILTER = re.compile(r'=~\s*"\$node"')


@dataclass(frozen=True)
class Unit:
    """One catalogue unit.

    `kubesphere` is a format of the console's unitTransformMap (none, Byte, seconds, 'percent (0.0-1.0)', ...);
    where it has none, the title gets `suffix` and values are divided by `divisor`.
    """

    grafana: str
    kubesphere: str
    decimals: int
    suffix: str = ""
    divisor: int = 1


UNITS: dict[str, Unit] = {
    "ratio": Unit("percentunit", "percent (0.0-1.0)", 1),
    "bytes": Unit("bytes", "Byte", 1),
    "seconds": Unit("s", "seconds", 0),
    "hertz": Unit("hertz", "none", 0, " (MHz)", 1_000_000),
    "celsius": Unit("celsius", "none", 1, " (°C)"),
    "watt": Unit("watt", "none", 2, " (W)"),
    "rpm": Unit("rotrpm", "none", 0, " (rpm)"),
    "reqps": Unit("reqps", "none", 2),
    "bool": Unit("bool_yes_no", "none", 0),
    "none": Unit("none", "none", 0),
}


class CatalogueError(ValueError):
    """The catalogue has problems; the message lists all of them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("panel catalogue problems:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Target:
    """One query of a panel."""

    expr: str
    legend: str
    shown_in: tuple[str, ...]
    unit: str | None = None


@dataclass(frozen=True)
class Panel:
    """One panel and the dashboards it is on."""

    id: int
    title: str
    kind: str
    unit: str
    shown_in: tuple[str, ...]
    targets: tuple[Target, ...]
    description: str = ""
    single: bool = False
    text: str | None = None
    width: int = 12
    height: int = 8

    def targets_in(self, dashboard: str) -> list[Target]:
        """The queries this panel runs on one dashboard."""
        return [t for t in self.targets if dashboard in t.shown_in]


@dataclass(frozen=True)
class Catalogue:
    """Dashboard settings and panels, in catalogue order."""

    dashboards: dict[str, dict[str, Any]]
    panels: tuple[Panel, ...] = field(default_factory=tuple)

    def panels_in(self, dashboard: str) -> list[Panel]:
        """The panels of one dashboard, in catalogue order."""
        return [p for p in self.panels if dashboard in p.shown_in]


def load_catalogue(path: Path = CATALOGUE_PATH) -> Catalogue:
    """Read and check the catalogue file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError([f"cannot read {path}: {exc}"]) from exc
    return parse_catalogue(raw)


def parse_catalogue(raw: Any) -> Catalogue:
    """Build the catalogue from its YAML data; raise CatalogueError naming every problem."""
    problems: list[str] = []
    if not isinstance(raw, dict) or not isinstance(raw.get("panels"), list):
        raise CatalogueError(["the catalogue needs a 'dashboards' mapping and a 'panels' list"])
    dashboards = raw.get("dashboards") or {}
    for name, keys in DASHBOARD_KEYS.items():
        settings = dashboards.get(name)
        if not isinstance(settings, dict):
            problems.append(f"dashboards.{name}: missing")
            continue
        problems += [f"dashboards.{name}: {key} missing" for key in keys if not settings.get(key)]
        time = settings.get("time")
        if not (isinstance(time, dict) and time.get("from") and time.get("to")):
            problems.append(f"dashboards.{name}: time needs from and to, e.g. {{from: now-1h, to: now}}")
    panels: list[Panel] = []
    for index, entry in enumerate(raw["panels"]):
        panel = _panel(entry, f"panels[{index}]", problems)
        if panel is not None:
            panels.append(panel)
    ids: list[int] = [e["id"] for e in raw["panels"] if isinstance(e, dict) and isinstance(e.get("id"), int)]
    problems += [f"panel id {i} is used twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    if problems:
        raise CatalogueError(problems)
    return Catalogue(dashboards={d: dict(dashboards[d]) for d in DASHBOARDS}, panels=tuple(panels))


def _panel(entry: Any, where: str, problems: list[str]) -> Panel | None:
    """One panel entry, or None with its problems recorded."""
    if not isinstance(entry, dict):
        problems.append(f"{where}: a panel is a mapping")
        return None
    found = len(problems)
    where = f"panel {entry.get('id', where)} ({entry.get('title', '?')})"
    unknown = set(entry) - {"id", "title", "kind", "unit", "in", "targets", "description", "single", "text",
                            "width", "height"}
    problems += [f"{where}: unknown key {key!r}" for key in sorted(unknown)]
    if not isinstance(entry.get("id"), int) or entry["id"] <= 0:
        problems.append(f"{where}: id must be a positive number")
    if not entry.get("title"):
        problems.append(f"{where}: title missing")
    kind, unit = entry.get("kind"), entry.get("unit")
    if kind not in KINDS:
        problems.append(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    if unit not in UNITS:
        problems.append(f"{where}: unit {unit!r} is not one of {', '.join(UNITS)}")
    shown_in = _dashboards(entry.get("in", list(DASHBOARDS)), DASHBOARDS, where, problems)
    if (entry.get("single") or entry.get("text")) and kind != "stat":
        problems.append(f"{where}: single and text are for stat panels")
    if entry.get("text") not in (None, "name"):
        problems.append(f"{where}: text can only be 'name'")
    for size in ("width", "height"):
        if size in entry and not (isinstance(entry[size], int) and 1 <= entry[size] <= 24):
            problems.append(f"{where}: {size} is a number of grid cells, 1 to 24")
    targets = [_target(t, shown_in, f"{where} target {i + 1}", problems)
               for i, t in enumerate(entry.get("targets") or [])]
    if not targets:
        problems.append(f"{where}: no targets")
    for dashboard in shown_in:
        if not any(t and dashboard in t.shown_in for t in targets):
            problems.append(f"{where}: no target runs on {dashboard}")
    if len(problems) > found:
        return None
    default_size = (4, 4) if kind == "stat" else (12, 8)
    return Panel(
        id=entry["id"], title=str(entry["title"]), kind=str(kind), unit=str(unit), shown_in=shown_in,
        targets=tuple(t for t in targets if t is not None), description=str(entry.get("description", "")),
        single=bool(entry.get("single", False)), text=entry.get("text"),
        width=int(entry.get("width", default_size[0])), height=int(entry.get("height", default_size[1])),
    )  # fmt: skip


def _dashboards(value: Any, allowed: tuple[str, ...], where: str, problems: list[str]) -> tuple[str, ...]:
    """An `in` list, kept in the order of `allowed`."""
    if not isinstance(value, list) or not value or not set(value) <= set(allowed):
        problems.append(f"{where}: in must list some of {', '.join(allowed)}")
        return ()
    return tuple(d for d in allowed if d in value)


def _target(entry: Any, panel_in: tuple[str, ...], where: str, problems: list[str]) -> Target | None:
    """One target entry, or None with its problems recorded."""
    if not isinstance(entry, dict) or not isinstance(entry.get("expr"), str) or not entry["expr"].strip():
        problems.append(f"{where}: a target is a mapping with an expr")
        return None
    unknown = set(entry) - {"expr", "legend", "in", "unit"}
    problems += [f"{where}: unknown key {key!r}" for key in sorted(unknown)]
    expr = " ".join(entry["expr"].split())
    shown_in = _dashboards(entry.get("in", list(panel_in)), panel_in, where, problems)
    unit = entry.get("unit")
    if unit is not None and (unit not in UNITS or set(shown_in) & set(KUBESPHERE)):
        problems.append(f"{where}: a target's own unit must be a known unit, on grafana only")
    problems += [f"{where}: unknown variable ${name}" for name in _VARIABLE.findall(expr) if name not in VARIABLES]
    if "$node" in VARIABLE_MATCHER.sub("", expr) or "$device" in VARIABLE_MATCHER.sub("", expr):
        problems.append(f'{where}: use $node and $device only as matchers, e.g. node=~"$node"')
    if "grafana" in shown_in and not _NODE_FILTER.search(expr):
        problems.append(f'{where}: a Grafana query filters by the node variable (node=~"$node")')
    if "project" in shown_in and _NAMESPACE_MATCHER.search(expr):
        problems.append(f"{where}: no namespace matcher in a project query: KubeSphere sets namespace=<project>")
    return Target(expr=expr, legend=str(entry.get("legend", "")), shown_in=shown_in, unit=unit)
