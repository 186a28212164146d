"""A fake node with one pod container per cgroup layout, and the real mapper reading it from the jtop emulator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mapper_process import DEVICE_MODEL, Emulator, Mapper
from pods_fixture import HOST_CGROUP_V1, HOST_CGROUP_V2, LAYOUTS, PAGE_SIZE, Container, FakeNode, Process

TOP = 6
INTERVAL = 0.5
NAMESPACES = ("edge-ai", "vision")


@dataclass
class Scenario:
    """What the node holds: the containers jtop's processes are in, by PID, and the PIDs that cannot be attributed."""

    node: FakeNode
    containers: dict[int, Container] = field(default_factory=dict)
    hosts: list[int] = field(default_factory=list)
    unnamed: int = 0
    vanished: int = 0
    reused: int = 0
    unreadable: int = 0

    def expected(self) -> dict[tuple[str, str, str], tuple[float, float, float, float]]:
        """(pod_namespace, pod, container) -> (GPU bytes, CPU ratio, RSS bytes, processes), from the fixture."""
        rows: dict[tuple[str, str, str], tuple[float, float, float, float]] = {}
        for pid, container in self.containers.items():
            process = self.node.processes[pid]
            key = ((container.namespace, container.pod, container.name) if container.linked
                   else ("", container.uid[:8], container.id[:12]))
            rows[key] = (process.gpu_kb * 1024.0, process.cpu_percent / 100, process.rss_pages * PAGE_SIZE * 1.0, 1.0)
        return rows


def populate(node: FakeNode) -> Scenario:
    """One container per layout (GPU memory falling with the index), hosts, one container without a link, and
    three PIDs that cannot be attributed (vanished, reused after the sample, unreadable cgroup)."""
    scenario = Scenario(node)
    for index, layout in enumerate(LAYOUTS):
        name = f"{layout['runtime']}-{layout['driver']}-v{layout['version']}-{index}"
        container = Container(NAMESPACES[index % 2], name, "infer", **layout)
        pid = 3000 + index
        node.add_container(container, pid, gpu_kb=(len(LAYOUTS) - index) * 65536, cpu_percent=10.0 + index,
                           rss_pages=1000 * (index + 1))
        scenario.containers[pid] = container
    lonely = Container("edge-ai", "lonely-0", "main", linked=False)
    node.add_container(lonely, 3100, gpu_kb=4096, cpu_percent=0.5, rss_pages=64)
    scenario.containers[3100] = lonely
    scenario.unnamed = 1
    node.add(Process(2210, HOST_CGROUP_V2, 12288, 1.2, 20309, name="gnome-shell"))
    node.add(Process(1540, HOST_CGROUP_V1, 24576, 0.4, 8780, name="Xorg"))
    scenario.hosts = [2210, 1540]
    for pid, what in ((3201, "vanished"), (3202, "reused"), (3203, "unreadable")):
        node.add_container(Container("edge-ai", f"{what}-0", "gone"), pid, gpu_kb=8192)
    node.vanish(3201)
    node.reuse(3202, HOST_CGROUP_V2, start_ticks=10**12)  # started long after jtop's sample
    node.unreadable(3203)
    scenario.vanished = scenario.reused = scenario.unreadable = 1
    return scenario


def mapper_config(workdir: str, emulator: Emulator, node: FakeNode, top: int = TOP) -> dict[str, object]:
    """Standalone mapper on the bundled DeviceModel and Xavier Device, pods enabled on the fake node."""
    return {
        "grpc_server": {"socket_path": os.path.join(workdir, "jetson.sock")},
        "source": {"jtop_socket": emulator.socket, "interval": INTERVAL},
        "standalone": {"files": [str(DEVICE_MODEL / "jetson-model.yaml"), str(DEVICE_MODEL / "jetson-xavier.yaml")]},
        "pods": node.settings(top),
    }


@contextmanager
def pods_mapper(workdir: str) -> Iterator[tuple[Scenario, Mapper]]:
    """The populated node, the emulator serving its processes, and the mapper attributing them."""
    node = FakeNode(Path(workdir) / "node")
    scenario = populate(node)
    profile = node.profile(Path(workdir) / "pods-profile.json")
    with ExitStack() as stack:
        emulator = Emulator(workdir, str(profile), interval=INTERVAL).start()
        stack.callback(emulator.stop)
        mapper = Mapper(workdir, mapper_config(workdir, emulator, node))
        stack.callback(mapper.stop)
        mapper.start()
        yield scenario, mapper
