"""What one sample's attribution yields: bounded per-container rows and the twin reading of GPU memory holders."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

HOLDERS_KEY = "pods.gpu_memory_holders"  # documented in mapper/readings/keys.py
MAX_TWIN_LENGTH = 512  # EdgeCore's limit for a twin value
OTHER = "_other"
UNNAMED_NAMESPACE = "_"  # in the holders reading, for a pod known only by its UID
RESULTS = ("pod", "unnamed", "host", "vanished", "reused", "unreadable")


@dataclass(frozen=True, order=True)
class PodKey:
    """Labels of one row: pod namespace, pod and container; all empty for processes outside pods."""

    namespace: str
    pod: str
    container: str


HOST = PodKey("", "", "")
OTHERS = PodKey("", OTHER, "")


@dataclass
class Usage:
    """Summed figures of the processes of one container (or of the host, or of the containers past the top N)."""

    gpu_memory: int = 0  # bytes
    cpu: float = 0.0  # ratio of one core, jtop's figure
    memory: int = 0  # resident bytes
    processes: int = 0

    def add(self, other: Usage) -> None:
        """Add another row's figures to this one."""
        self.gpu_memory += other.gpu_memory
        self.cpu += other.cpu
        self.memory += other.memory
        self.processes += other.processes


@dataclass(frozen=True)
class PodSample:
    """One sample's attribution: rows (top N containers, `_other`, host), readings to merge, lookup totals."""

    rows: tuple[tuple[PodKey, Usage], ...]
    readings: Mapping[str, str]
    lookups: tuple[tuple[str, int], ...]  # cumulative count of processes per lookup result, RESULTS order


def bounded_rows(containers: Mapping[PodKey, Usage], host: Usage | None,
                 top: int) -> tuple[tuple[PodKey, Usage], ...]:
    """The `top` containers by GPU memory (then CPU, memory, name), one `_other` row for the rest, then the host."""
    ranked = sorted(containers.items(), key=lambda kv: (-kv[1].gpu_memory, -kv[1].cpu, -kv[1].memory, kv[0]))
    rows = list(ranked[:top])
    if len(ranked) > top:
        rest = Usage()
        for _, usage in ranked[top:]:
            rest.add(usage)
        rows.append((OTHERS, rest))
    if host is not None:
        rows.append((HOST, host))
    return tuple(rows)


def holders_reading(containers: Mapping[PodKey, Usage], limit: int = MAX_TWIN_LENGTH) -> str:
    """`<ns>/<pod>` of every pod holding GPU memory, most first, comma-separated, within `limit` characters.

    When they do not all fit, whole entries are kept and the list ends with `...<n>_more`.
    """
    per_pod: dict[tuple[str, str], int] = {}
    for key, usage in containers.items():
        per_pod[(key.namespace, key.pod)] = per_pod.get((key.namespace, key.pod), 0) + usage.gpu_memory
    ranked = sorted(((-gpu, ns, pod) for (ns, pod), gpu in per_pod.items() if gpu > 0))
    entries = [f"{ns or UNNAMED_NAMESPACE}/{pod}" for _, ns, pod in ranked]
    return _fit(entries, limit)


def _fit(entries: Iterable[str], limit: int) -> str:
    items = list(entries)
    whole = ",".join(items)
    if len(whole) <= limit:
        return whole
    kept: list[str] = []
    for index, entry in enumerate(items):
        marker = f"...{len(items) - index - 1}_more"
        if len(",".join([*kept, entry, marker])) > limit:
            break
        kept.append(entry)
    return ",".join([*kept, f"...{len(items) - len(kept)}_more"])
