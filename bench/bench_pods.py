"""Benchmark pod attribution: the cost per sample with 100 jtop processes, as ratios to normalising the sample.

A fake node in a temp dir (tests/pods_fixture.py): --processes processes spread over --containers pod
containers (every cgroup layout in turn), 4 host processes, and --links log links in the containers folder
(the GPU containers' plus other pods' containers, as on a busy node). Measured in one run, median of --repeat:

- normalise: `normalise()` of the AGX Orin fixture sample with these processes (what every sample costs now);
- warm: one attribution with the caches filled (the steady state: stat read per process, no cgroup read);
- churn: as warm, but the cgroup of 10 % of the PIDs is read again each sample (as for new start times);
- cold: a fresh attributor (every cgroup read, the links folder listed once);
- real /proc: warm attribution of this machine's own processes through /proc (procfs reads, not tmpfs files);
- render: generate_latest() of a two-Device mapper page with pods, against the page without them.

Not part of the test run. Usage: .venv/bin/python bench/bench_pods.py [--processes 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from pods_fixture import HOST_CGROUP_V1, HOST_CGROUP_V2, LAYOUTS, Container, FakeNode, Process  # noqa: E402
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

from mapper.config import ControlConfig  # noqa: E402
from mapper.control.controller import Controller  # noqa: E402
from mapper.devices.registry import DeviceRegistry  # noqa: E402
from mapper.dmi.convert import device_from_pb, model_from_pb  # noqa: E402
from mapper.dmi.manifests import load_manifests  # noqa: E402
from mapper.pods.attributor import PodAttributor  # noqa: E402
from mapper.pods.settings import PodSettings  # noqa: E402
from mapper.readings.normaliser import normalise  # noqa: E402
from mapper.runtime import Runtime  # noqa: E402
from mapper.sinks.prometheus.collector import MapperCollector  # noqa: E402

SNAPSHOT = REPO / "tests" / "fixtures" / "jtop" / "agx-orin_jp5_built.json"


@dataclass
class Result:
    """Figures of one run, microseconds per sample unless named otherwise."""

    processes: int
    containers: int
    links: int
    normalise_us: float
    warm_us: float
    churn_us: float
    cold_us: float
    real_proc_processes: int
    real_proc_us: float
    render_without_pods_us: float
    render_with_pods_us: float
    warm_ratio: float
    churn_ratio: float
    cold_ratio: float
    render_ratio: float


def median_us(function: Callable[[], object], repeat: int, number: int) -> float:
    """Median over `repeat` rounds of the mean time of `number` calls, in microseconds."""
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            function()
        rounds.append((time.perf_counter() - start) / number * 1e6)
    return statistics.median(rounds)


def build_node(root: Path, processes: int, containers: int, links: int) -> tuple[FakeNode, list[Container]]:
    """The fake node: processes over containers round-robin, host processes, and extra log links."""
    node = FakeNode(root)
    pods = [Container(f"team-{i % 4}", f"worker-{i:03d}-7d9c5", "infer", **LAYOUTS[i % len(LAYOUTS)])
            for i in range(containers)]
    for index in range(processes - 4):
        node.add_container(pods[index % containers], 10_000 + index, gpu_kb=4096 * (index + 1),
                           cpu_percent=float(index % 50), rss_pages=1000 + index)
    for index, cgroup in enumerate((HOST_CGROUP_V2, HOST_CGROUP_V1, HOST_CGROUP_V2, HOST_CGROUP_V1)):
        node.add(Process(2000 + index, cgroup, 12288, 1.0, 5000, name="Xorg"))
    for index in range(max(0, links - containers)):
        other = Container("other", f"idle-{index:03d}", "app")
        (node.containers / other.link_name()).symlink_to(other.link_target())
    return node, pods


def snapshot_with(rows: list[list[Any]]) -> dict[str, Any]:
    """The AGX Orin fixture sample with the given process table."""
    snapshot: dict[str, Any] = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    snapshot["processes"] = rows
    return snapshot


def real_proc_rows(limit: int) -> list[list[Any]]:
    """jtop-like rows for up to `limit` of this machine's processes."""
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())[:limit]
    return [[pid, "root", "I", "Graphic", 20, "S", 1.0, 1000, 4096, "p"] for pid in pids]


def render_us(node: FakeNode, with_pods: bool, repeat: int, number: int) -> float:
    """generate_latest() of a mapper page with two Devices, after one sample."""
    attributor = PodAttributor(PodSettings(True, str(node.proc), str(node.containers), 20)) if with_pods else None
    runtime = Runtime(DeviceRegistry("jetson"), Controller(None, ControlConfig()), 1.0, attributor=attributor)
    models, devices = load_manifests([REPO / "device-model" / "jetson-model.yaml",
                                      REPO / "device-model" / "jetson-xavier.yaml"])
    runtime.upsert_model(model_from_pb(models[0]))
    device = device_from_pb(devices[0])
    plain = tuple(replace(p, desired=None) for p in device.properties)
    for name in ("first", "second"):
        runtime.upsert_device(replace(device, name=name, properties=plain))
    runtime.on_availability(True, "bench")
    snapshot = snapshot_with(node.jtop_rows())
    snapshot["uptime"] = node.uptime
    runtime.on_sample(snapshot)
    registry = CollectorRegistry()
    registry.register(MapperCollector(runtime, "bench-node"))
    return median_us(lambda: generate_latest(registry), repeat, number)


def run(processes: int, containers: int, links: int, repeat: int, number: int) -> Result:
    """All measurements on one fake node."""
    with tempfile.TemporaryDirectory(prefix="jm-bench") as folder:
        node, _ = build_node(Path(folder), processes, containers, links)
        settings = PodSettings(True, str(node.proc), str(node.containers), 20)
        snapshot = snapshot_with(node.jtop_rows())
        snapshot["uptime"] = node.uptime
        readings = normalise(snapshot)
        normalise_us = median_us(lambda: normalise(snapshot), repeat, number)

        warm = PodAttributor(settings)
        warm(snapshot, readings)
        warm_us = median_us(lambda: warm(snapshot, readings), repeat, number)

        churn = PodAttributor(settings)
        churn(snapshot, readings)
        pids = sorted(node.processes)
        step = [0]

        def churning() -> None:
            step[0] += 1
            for pid in pids[step[0] % 10::10]:  # a tenth of the PIDs: cgroup read again, as for a new start time
                churn._refs.pop(pid, None)
            churn(snapshot, readings)

        churn_us = median_us(churning, repeat, number)

        cold_us = median_us(lambda: PodAttributor(settings)(snapshot, readings), repeat, max(1, number // 4))

        real_rows = real_proc_rows(processes)
        real_snapshot = {"processes": real_rows}
        real_readings = {"uptime": float(Path("/proc/uptime").read_text(encoding="utf-8").split()[0])}
        real = PodAttributor(PodSettings(True, "/proc", str(node.containers), 20))
        real(real_snapshot, real_readings)
        real_us = median_us(lambda: real(real_snapshot, real_readings), repeat, number)

        without = render_us(node, False, repeat, number)
        with_pods = render_us(node, True, repeat, number)
    return Result(processes, containers, links, round(normalise_us, 1), round(warm_us, 1), round(churn_us, 1),
                  round(cold_us, 1), len(real_rows), round(real_us, 1), round(without, 1), round(with_pods, 1),
                  round(warm_us / normalise_us, 2), round(churn_us / normalise_us, 2), round(cold_us / normalise_us, 2),
                  round(with_pods / without, 2))


def main() -> None:
    """Parse arguments, run, print a Markdown row (and JSON when asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=100)
    parser.add_argument("--containers", type=int, default=25)
    parser.add_argument("--links", type=int, default=80)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.processes, args.containers, args.links, args.repeat, args.number)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    print("| processes | containers | links | normalise µs | warm µs | churn 10 % µs | cold µs | real /proc µs "
          "(processes) | page without pods µs | with pods µs | warm ÷ normalise | churn ÷ normalise | "
          "cold ÷ normalise | page with ÷ without |")
    r = result
    print(f"| {r.processes} | {r.containers} | {r.links} | {r.normalise_us} | {r.warm_us} | {r.churn_us} | "
          f"{r.cold_us} | {r.real_proc_us} ({r.real_proc_processes}) | {r.render_without_pods_us} | "
          f"{r.render_with_pods_us} | {r.warm_ratio} | {r.churn_ratio} | {r.cold_ratio} | {r.render_ratio} |")
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
