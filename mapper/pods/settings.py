"""The `pods:` config section: attribution of jtop's GPU processes to pods (off unless enabled)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mapper.sections.reader import unknown_keys

# Every key of the section, in one place (config validation rejects anything else).
POD_KEYS = ("enabled", "proc_root", "containers_dir", "top")
TOP_MAX = 500


@dataclass(frozen=True)
class PodSettings:
    """Where the host's process table and the kubelet's container log links are, and how many containers to name."""

    enabled: bool = False
    proc_root: str = "/proc"
    containers_dir: str = "/var/log/containers"
    top: int = 20


def parse_pod_settings(raw: Any) -> tuple[PodSettings, list[str]]:
    """The section's settings and every problem found (defaults stand in for bad values)."""
    if raw is None:
        return PodSettings(), []
    if not isinstance(raw, Mapping):
        return PodSettings(), [f"pods: must be a mapping, got {type(raw).__name__}"]
    problems = [f"pods.{key}: {message}" for key, message in unknown_keys(raw, POD_KEYS)]
    defaults = PodSettings()
    enabled = raw.get("enabled", defaults.enabled)
    if not isinstance(enabled, bool):
        problems.append(f"pods.enabled: expected true or false, got {enabled!r}")
        enabled = defaults.enabled
    paths = {}
    for key in ("proc_root", "containers_dir"):
        value = raw.get(key, getattr(defaults, key))
        if not isinstance(value, str) or not value.startswith("/"):
            problems.append(f"pods.{key}: must be an absolute path, got {value!r}")
            value = getattr(defaults, key)
        paths[key] = value
    top = raw.get("top", defaults.top)
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= TOP_MAX:
        problems.append(f"pods.top: must be an integer between 1 and {TOP_MAX}, got {top!r}")
        top = defaults.top
    return PodSettings(enabled, paths["proc_root"], paths["containers_dir"], top), problems
