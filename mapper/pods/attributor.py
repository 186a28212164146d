"""Attribute each jtop process to a pod container, once per sample, in the sampling thread.

For every row of jtop's process table: `/proc/<pid>/stat` tells whether the PID still is the process jtop
saw (a start time after the sample's uptime means the PID was reused since) and gives its resident size;
`/proc/<pid>/cgroup` (read once per PID and start time) gives the pod UID and container ID; the container
log links give the names. GPU memory and CPU are jtop's figures. Processes that vanished, reused PIDs and
unreadable files are normal: such a row is left out of the pod figures and counted by its lookup result.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mapper.pods.cgroup import ContainerRef, Unparsable, parse_cgroup
from mapper.pods.names import ContainerNames, NameIndex
from mapper.pods.procfs import UNREADABLE, VANISHED, Unavailable, read_cgroup, read_stat
from mapper.pods.settings import PodSettings
from mapper.pods.usage import (
    HOLDERS_KEY,
    RESULTS,
    PodKey,
    PodSample,
    Usage,
    bounded_rows,
    holders_reading,
)

log = logging.getLogger(__name__)

KIB = 1024  # jtop's GPU memory column is in kB
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
START_SLACK_S = 0.05  # jtop reads the uptime just before its process table


@dataclass(frozen=True)
class Row:
    """The parts of one jtop process row attribution uses."""

    pid: int
    cpu_percent: float
    gpu_kb: int


def _is_number(value: Any) -> bool:
    """An int or float, not a bool."""
    return type(value) is float or type(value) is int


def process_rows(processes: Any) -> list[Row]:
    """Rows of jtop's table `[pid, user, gpu, type, prio, state, cpu %, mem, gpu_mem kB, name]`; bad rows skipped."""
    rows: list[Row] = []
    for cells in processes if isinstance(processes, list | tuple) else ():
        if not isinstance(cells, list | tuple) or len(cells) < 9:
            continue
        pid, cpu, gpu = cells[0], cells[6], cells[8]
        if type(pid) is not int or pid <= 0 or not _is_number(cpu) or not _is_number(gpu):
            continue
        rows.append(Row(pid, float(cpu), int(gpu)))
    return rows


class PodAttributor:
    """Callable once per sample: (snapshot, readings) -> PodSample; keeps its caches between samples."""

    def __init__(self, settings: PodSettings) -> None:
        self.settings = settings
        self.names = NameIndex(settings.containers_dir)
        self._refs: dict[int, tuple[int, ContainerRef | None]] = {}  # pid -> (start ticks, its pod or None)
        self._lookups: Counter[str] = Counter()
        self._checked = False
        self._warned_all_gone = False

    def __call__(self, snapshot: Mapping[str, Any], readings: Mapping[str, Any]) -> PodSample:
        """Attribute the sample's processes; never raises for a process that went or a file it cannot read."""
        if not self._checked:
            self._checked = True
            self._check_proc_root()
        uptime = readings.get("uptime")
        latest_start = None if not isinstance(uptime, int | float) else (uptime + START_SLACK_S) * CLOCK_TICKS
        found: list[tuple[Row, ContainerRef | None, int]] = []
        refs: dict[int, tuple[int, ContainerRef | None]] = {}
        rows = process_rows(snapshot.get("processes"))
        gone = 0
        for row in rows:
            outcome = self._lookup(row.pid, latest_start, refs)
            if isinstance(outcome, str):
                self._lookups[outcome] += 1
                gone += outcome == VANISHED
            else:
                found.append((row, *outcome))
        if len(rows) > 1 and gone == len(rows) and not self._warned_all_gone:
            self._warned_all_gone = True
            log.warning("pods: none of the %d processes jtop lists is in %s: is it the host's /proc? (mount it at "
                        "pods.proc_root; a container's own /proc has other PIDs)", len(rows), self.settings.proc_root)
        self._refs = refs  # only the PIDs of this sample: the cache never outgrows jtop's table
        names = self.names.names(ref.container_id for _, ref, _ in found if ref is not None and ref.container_id)
        containers: dict[PodKey, Usage] = {}
        host: Usage | None = None
        for row, ref, rss_pages in found:
            usage = Usage(row.gpu_kb * KIB, row.cpu_percent / 100.0, rss_pages * PAGE_SIZE, 1)
            if ref is None:
                self._lookups["host"] += 1
                if host is None:
                    host = Usage()
                host.add(usage)
                continue
            key = self._key(ref, names)
            self._lookups["pod" if key.namespace else "unnamed"] += 1
            containers.setdefault(key, Usage()).add(usage)
        return PodSample(
            rows=bounded_rows(containers, host, self.settings.top),
            readings={HOLDERS_KEY: holders_reading(containers)},
            lookups=tuple((result, self._lookups[result]) for result in RESULTS),
        )

    def _key(self, ref: ContainerRef, names: Mapping[str, ContainerNames]) -> PodKey:
        """Labels of a container: its log link's names, else its pod's (a sibling's link), else short IDs."""
        named = names.get(ref.container_id)
        if named is not None:
            return PodKey(named.namespace, named.pod, named.container)
        pod = self.names.pod(ref.pod_uid)
        if pod is not None:
            return PodKey(pod[0], pod[1], ref.container_id[:12])
        return PodKey("", ref.pod_uid[:8], ref.container_id[:12])

    def _lookup(self, pid: int, latest_start: float | None,
                refs: dict[int, tuple[int, ContainerRef | None]]) -> tuple[ContainerRef | None, int] | str:
        """(pod or None for the host, RSS pages) of a PID, or the reason it cannot be attributed."""
        root = self.settings.proc_root
        try:
            stat = read_stat(root, pid)
        except Unavailable as gone:
            return gone.reason
        if latest_start is not None and stat.start_ticks > latest_start:
            return "reused"
        cached = self._refs.get(pid)
        if cached is not None and cached[0] == stat.start_ticks:
            ref = cached[1]
        else:
            try:
                ref = parse_cgroup(read_cgroup(root, pid))
            except Unavailable as gone:
                return gone.reason
            except Unparsable:
                return UNREADABLE
        refs[pid] = (stat.start_ticks, ref)
        return ref, stat.rss_pages

    def _check_proc_root(self) -> None:
        """Warn once when the proc root is not the host's (not mounted, or a container's own /proc)."""
        root = self.settings.proc_root
        try:
            init = parse_cgroup(read_cgroup(root, 1))
        except (Unavailable, Unparsable):
            log.warning("pods: cannot read %s/1/cgroup: mount the host's /proc at pods.proc_root", root)
            return
        if init is not None:
            log.warning("pods: PID 1 under %s is in a pod (%s): that is a container's /proc, not the host's; "
                        "mount the host's /proc at pods.proc_root", root, init.pod_uid)
