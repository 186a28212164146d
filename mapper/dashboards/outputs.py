"""The generated dashboard files: their text from the catalogue, writing them, and finding stale ones."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mapper.dashboards.catalogue import CATALOGUE_PATH, Catalogue
from mapper.dashboards.grafana import grafana_dashboard
from mapper.dashboards.kubesphere import kubesphere_dashboard

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMAND = "python -m mapper.dashboards"
GRAFANA_FILE = "deploy/grafana/jetson-dashboard.json"
KUBESPHERE_FILES = {
    "cluster": "deploy/overlays/kubesphere/dashboards/jetson-clusterdashboard.yaml",
    "project": "deploy/overlays/kubesphere/dashboards/jetson-device-dashboard.yaml",
}
_HEADER = (
    f"# Generated from {CATALOGUE_PATH.relative_to(REPO_ROOT)} by `{COMMAND}`: edit the catalogue, not this file.\n"
)


def render(catalogue: Catalogue) -> dict[str, str]:
    """Every generated file's text, by path relative to the repository."""
    files = {GRAFANA_FILE: json.dumps(grafana_dashboard(catalogue), indent=2) + "\n"}
    for dashboard, path in KUBESPHERE_FILES.items():
        body = yaml.safe_dump(kubesphere_dashboard(catalogue, dashboard), sort_keys=False, allow_unicode=True,
                              width=4096)
        files[path] = _HEADER + body
    return files


def write(files: dict[str, str], root: Path = REPO_ROOT) -> list[Path]:
    """Write the files under root; return the paths whose content changed."""
    changed = []
    for relative, text in files.items():
        path = root / relative
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def stale(files: dict[str, str], root: Path = REPO_ROOT) -> list[str]:
    """The generated files under root that differ from (or lack) the given text."""
    return [
        relative for relative, text in files.items()
        if not (root / relative).is_file() or (root / relative).read_text(encoding="utf-8") != text
    ]  # fmt: skip
