"""A fake node for pod attribution: a proc root and a container log folder in tmp, and an emulator profile.

The cgroup files use the line formats the kernel writes for each runtime, cgroup driver and cgroup version
(JetPack 4/5 boot cgroup v1 with ten or eleven hierarchies, JetPack 6 cgroup v2); the log links are named like
the kubelet's (`<pod>_<namespace>_<container>-<id>.log`) and point into /var/log/pods as theirs do (dangling
here). `/proc/<pid>/stat` lines have all 52 fields, start time (22) and RSS pages (24) where the kernel puts them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mapper.emulator.profile import load_profile

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
BASE_PROFILE = "xavier-nx-jp5"

# The v1 hierarchies of Ubuntu 20.04 (JetPack 5) and 18.04 (JetPack 4), as /proc/<pid>/cgroup lists them.
V1_CONTROLLERS_JP5 = ("12:rdma", "11:cpuset", "10:memory", "9:devices", "8:freezer", "7:net_cls,net_prio",
                      "6:blkio", "5:cpu,cpuacct", "4:perf_event", "3:pids", "2:hugetlb", "1:name=systemd")
V1_CONTROLLERS_JP4 = ("11:devices", "10:cpuset", "9:freezer", "8:perf_event", "7:cpu,cpuacct", "6:memory",
                      "5:net_cls,net_prio", "4:pids", "3:hugetlb", "2:blkio", "1:name=systemd")
SYSTEMD_PREFIX = {"containerd": "cri-containerd", "cri-o": "crio", "docker": "docker"}


def _hex(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


@dataclass
class Container:
    """One container of a pod, placed in a cgroup layout."""

    namespace: str
    pod: str
    name: str
    runtime: str = "containerd"  # containerd, cri-o, docker
    driver: str = "systemd"  # systemd, cgroupfs
    version: int = 2  # cgroup version: 1 (JetPack 4/5), 2 (JetPack 6)
    qos: str = "burstable"  # burstable, besteffort, guaranteed
    static: bool = False  # a static pod: its UID is a 32-hex config hash
    cgroupns: bool = False  # v2 path as seen from inside another pod's cgroup namespace
    linked: bool = True  # has a log link in the containers folder
    uid: str = ""
    id: str = ""

    def __post_init__(self) -> None:
        seed = f"{self.namespace}/{self.pod}/{self.name}"
        if not self.uid:
            self.uid = _hex(seed, 32) if self.static else str(uuid.UUID(_hex(seed, 32)))
        if not self.id:
            self.id = _hex(seed + "#container", 64)

    def cgroup_path(self) -> str:
        """The container's cgroup path under the cgroup root."""
        qos = "" if self.qos == "guaranteed" else self.qos
        if self.driver == "systemd":
            uid = self.uid.replace("-", "_")
            pod_slice = f"kubepods-{qos}-pod{uid}.slice" if qos else f"kubepods-pod{uid}.slice"
            scope = f"{SYSTEMD_PREFIX[self.runtime]}-{self.id}.scope"
            if self.cgroupns:  # read from a pod of the same qos class with its own cgroup namespace
                return f"/../../{pod_slice}/{scope}"
            qos_slice = f"kubepods-{qos}.slice/" if qos else ""
            return f"/kubepods.slice/{qos_slice}{pod_slice}/{scope}"
        leaf = f"crio-{self.id}" if self.runtime == "cri-o" else self.id
        if self.cgroupns:
            return f"/../../pod{self.uid}/{leaf}"
        return f"/kubepods/{qos + '/' if qos else ''}pod{self.uid}/{leaf}"

    def cgroup_text(self) -> str:
        """The /proc/<pid>/cgroup file of a process in this container."""
        path = self.cgroup_path()
        if self.version == 2:
            return f"0::{path}\n"
        if self.runtime == "docker":  # JetPack 4: Docker, Ubuntu 18.04, hybrid unified line at the root
            return "".join(f"{c}:{path}\n" for c in V1_CONTROLLERS_JP4) + "0::/\n"
        return "".join(f"{c}:{path}\n" for c in V1_CONTROLLERS_JP5) + f"0::{path}\n"

    def link_name(self) -> str:
        """The kubelet's log link name of this container."""
        return f"{self.pod}_{self.namespace}_{self.name}-{self.id}.log"

    def link_target(self) -> str:
        """Where the kubelet's link points."""
        return f"/var/log/pods/{self.namespace}_{self.pod}_{self.uid}/{self.name}/0.log"


HOST_CGROUP_V2 = "0::/system.slice/gdm.service\n"
HOST_CGROUP_V1 = "".join(f"{c}:/\n" for c in V1_CONTROLLERS_JP5[:-1]) + "1:name=systemd:/user.slice/user-1000.slice/session-c1.scope\n0::/user.slice/user-1000.slice/session-c1.scope\n"  # noqa: E501


def first_uptime(profile: str) -> float:
    """The uptime of a profile's first sample (replayed verbatim, uptimes only grow from there)."""
    return float(load_profile(profile).samples[0]["uptime"])


@dataclass
class Process:
    """One process jtop lists: where it lives and what jtop says about it."""

    pid: int
    cgroup: str  # the cgroup file's text
    gpu_kb: int
    cpu_percent: float = 1.5
    rss_pages: int = 2048
    start_ticks: int = 0
    name: str = "python3"

    def jtop_row(self) -> list[Any]:
        """The row jtop's process table has for it (mem column in kB, as jetson-stats 7.x computes it)."""
        return [self.pid, "root", "I", "Graphic", 20, "S", self.cpu_percent, self.rss_pages * PAGE_SIZE // 1024,
                self.gpu_kb, self.name]

    def stat_line(self) -> str:
        """A full /proc/<pid>/stat line: start time is field 22, RSS (pages) field 24."""
        fields = [str(self.pid), f"({self.name})", "S", "1", str(self.pid), str(self.pid), "0", "-1", "4194560",
                  "51234", "0", "12", "0", "8812", "1240", "0", "0", "20", "0", "23", "0",
                  str(self.start_ticks), str(self.rss_pages * PAGE_SIZE * 4), str(self.rss_pages),
                  "18446744073709551615", "1", "1", "0", "0", "0", "0", "0", "4096", "17663", "0", "0", "0", "17",
                  "3", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0"]
        assert len(fields) == 52
        return " ".join(fields) + "\n"


@dataclass
class FakeNode:
    """A proc root and a containers folder under `root`; processes and links are written as they are added."""

    root: Path
    uptime: float = field(default_factory=lambda: first_uptime(BASE_PROFILE))  # jtop's uptime in the sample
    processes: dict[int, Process] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.proc = self.root / "proc"
        self.containers = self.root / "containers"
        self.proc.mkdir(parents=True, exist_ok=True)
        self.containers.mkdir(parents=True, exist_ok=True)
        self.add(Process(1, "0::/init.scope\n", 0, start_ticks=1), listed=False)

    def start_ticks(self, seconds_before_sample: float = 600.0) -> int:
        """A start time this long before the sample's uptime, in clock ticks."""
        return int((self.uptime - seconds_before_sample) * CLOCK_TICKS)

    def add(self, process: Process, listed: bool = True) -> Process:
        """Write the process's stat and cgroup files; `listed` puts it in jtop's table."""
        if not process.start_ticks:
            process.start_ticks = self.start_ticks()
        folder = self.proc / str(process.pid)
        folder.mkdir(exist_ok=True)
        (folder / "stat").write_text(process.stat_line(), encoding="utf-8")
        (folder / "cgroup").write_text(process.cgroup, encoding="utf-8")
        if listed:
            self.processes[process.pid] = process
        return process

    def add_container(self, container: Container, pid: int, gpu_kb: int, **process: Any) -> Process:
        """A process in `container` (and the container's log link, unless it has none)."""
        if container.linked:
            link = self.containers / container.link_name()
            if not link.is_symlink():
                link.symlink_to(container.link_target())
        return self.add(Process(pid, container.cgroup_text(), gpu_kb, **process))

    def vanish(self, pid: int) -> None:
        """The process exits: its proc folder goes, jtop's (older) sample still lists it."""
        shutil.rmtree(self.proc / str(pid))

    def reuse(self, pid: int, cgroup: str, start_ticks: int) -> None:
        """Another process gets the PID: new start time and cgroup, jtop's row unchanged."""
        old = self.processes[pid]
        self.add(Process(pid, cgroup, old.gpu_kb, old.cpu_percent, old.rss_pages, start_ticks, "sh"), listed=False)

    def unreadable(self, pid: int) -> None:
        """The process's cgroup cannot be read (a folder where the file should be)."""
        path = self.proc / str(pid) / "cgroup"
        path.unlink()
        path.mkdir()

    def jtop_rows(self) -> list[list[Any]]:
        """jtop's process table for the processes listed."""
        return [p.jtop_row() for p in self.processes.values()]

    def snapshot(self) -> dict[str, Any]:
        """The part of a snapshot attribution reads."""
        return {"processes": self.jtop_rows(), "uptime": self.uptime}

    def profile(self, path: Path, base: str = BASE_PROFILE) -> Path:
        """An emulator profile whose samples list these processes, replayed verbatim (no variation)."""
        document = copy.deepcopy(load_profile(base).to_json())
        document["name"] = f"{base}-pods"
        document.pop("variation", None)
        for sample in document["samples"]:
            sample["processes"] = self.jtop_rows()
        assert self.uptime == first_uptime(base), "start times were written against another uptime"
        path.write_text(json.dumps(document), encoding="utf-8")
        return path

    def settings(self, top: int = 20) -> dict[str, Any]:
        """The mapper's `pods:` section for this node."""
        return {"enabled": True, "proc_root": str(self.proc), "containers_dir": str(self.containers), "top": top}


# Every runtime, driver and cgroup version combination a Jetson edge node may run.
LAYOUTS: tuple[dict[str, Any], ...] = (
    {"runtime": "containerd", "driver": "systemd", "version": 2, "qos": "burstable"},  # JetPack 6 default
    {"runtime": "containerd", "driver": "systemd", "version": 2, "qos": "guaranteed"},
    {"runtime": "containerd", "driver": "cgroupfs", "version": 2, "qos": "besteffort"},  # k3s-like
    {"runtime": "cri-o", "driver": "systemd", "version": 2, "qos": "besteffort"},
    {"runtime": "cri-o", "driver": "cgroupfs", "version": 2, "qos": "burstable"},
    {"runtime": "docker", "driver": "systemd", "version": 2, "qos": "burstable"},  # cri-dockerd
    {"runtime": "containerd", "driver": "cgroupfs", "version": 1, "qos": "burstable"},  # JetPack 5
    {"runtime": "containerd", "driver": "systemd", "version": 1, "qos": "besteffort"},
    {"runtime": "cri-o", "driver": "systemd", "version": 1, "qos": "guaranteed"},
    {"runtime": "docker", "driver": "cgroupfs", "version": 1, "qos": "besteffort"},  # JetPack 4, dockershim
    {"runtime": "docker", "driver": "systemd", "version": 1, "qos": "burstable"},
    {"runtime": "containerd", "driver": "systemd", "version": 2, "qos": "besteffort", "cgroupns": True},
    {"runtime": "containerd", "driver": "cgroupfs", "version": 2, "qos": "burstable", "cgroupns": True},
    {"runtime": "containerd", "driver": "systemd", "version": 2, "qos": "burstable", "static": True},
)


def layout_id(layout: dict[str, Any]) -> str:
    """A readable test id for a layout."""
    extra = [k for k in ("cgroupns", "static") if layout.get(k)]
    return "-".join([layout["runtime"], layout["driver"], f"v{layout['version']}", layout["qos"], *extra])
