"""Which pods use the GPU, end to end: jtop emulator -> real jetson-stats client -> mapper reading a fake node.

The emulator's profile lists processes whose PIDs live in a fixture proc root (one pod container per runtime,
cgroup driver and version, hosts, one container without a log link, a vanished, a reused and an unreadable
PID). The mapper attributes them; a real scrape, a real Prometheus and the REST API must name the right pods,
keep the top N and fold the rest into `_other`; then PIDs vanish and get reused while it runs.
One test function: a module fixture would start the stack once per xdist worker.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
import yaml
from common import new_short_dir, wait_until
from mapper_process import REPO, Mapper
from metrics_scrape import promtool_check_metrics, sample_values, scrape
from pods_fixture import LAYOUTS, PAGE_SIZE, Container, FakeNode
from pods_stack import TOP, Scenario, pods_mapper, populate
from prometheus import running_prometheus

pytestmark = [pytest.mark.slow, pytest.mark.jtop]

DEVICE = {"namespace": "default", "device": "jetson-xavier", "node": "test-node"}
FAMILIES = ("jetson_pod_gpu_memory_bytes", "jetson_pod_cpu_ratio", "jetson_pod_memory_bytes", "jetson_pod_processes")
Rows = dict[tuple[str, str, str], tuple[float, ...]]


def panel_query() -> str:
    """The per-pod GPU memory panel's query as docs/pods.md gives it, for the test's node."""
    doc = (REPO / "docs" / "pods.md").read_text(encoding="utf-8")
    query = re.search(r"# GPU memory per pod on one node.*\n(.*)\n", doc)
    assert query is not None
    return query.group(1).replace("$node", "test-node")


@pytest.fixture
def stack() -> Iterator[tuple[Scenario, Mapper]]:
    """The fake node, the emulator serving its processes and the mapper attributing them."""
    workdir = new_short_dir()
    try:
        with pods_mapper(workdir) as started:
            yield started
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def pod_rows(text: str) -> Rows:
    """(pod_namespace, pod, container) -> the four figures, from one exposition."""
    found: dict[tuple[str, str, str], dict[str, float]] = {}
    for name, labels, value in sample_values(text):
        if name in FAMILIES:
            assert {k: labels[k] for k in DEVICE} == DEVICE, labels
            found.setdefault((labels["pod_namespace"], labels["pod"], labels["container"]), {})[name] = value
    return {key: tuple(figures[f] for f in FAMILIES) for key, figures in found.items()}


def lookups(text: str) -> dict[str, float]:
    """jetson_mapper_pod_lookups_total by result."""
    return {labels["result"]: value for name, labels, value in sample_values(text)
            if name == "jetson_mapper_pod_lookups_total"}


def bounded(expected: Rows, host: tuple[float, ...], top: int) -> Rows:
    """What /metrics must show: the top containers by GPU memory, `_other` summing the rest, the host."""
    ranked = sorted(expected.items(), key=lambda kv: -kv[1][0])
    rows = dict(ranked[:top])
    rest = [figures for _, figures in ranked[top:]]
    if rest:
        rows[("", "_other", "")] = tuple(sum(column) for column in zip(*rest, strict=True))
    rows[("", "", "")] = host
    return rows


def holders(expected: Rows) -> str:
    """The gpu_pods twin: every pod, most GPU memory first."""
    per_pod: dict[str, float] = {}
    for (namespace, pod, _), figures in expected.items():
        entry = f"{namespace or '_'}/{pod}"
        per_pod[entry] = per_pod.get(entry, 0.0) + figures[0]
    return ",".join(sorted(per_pod, key=lambda entry: (-per_pod[entry], entry)))


def twin(mapper: Mapper) -> str:
    """The gpu_pods property read through the mapper-framework REST API."""
    data = mapper.get_json("/api/v1/device/default/jetson-xavier/gpu_pods")["Data"]
    assert data["Type"] == "STRING"
    return str(data["Value"])


def close(got: Rows, want: Rows) -> bool:
    """Same keys and figures (CPU ratios compared to 1e-9)."""
    return got.keys() == want.keys() and all(
        all(abs(a - b) <= 1e-9 * max(1.0, abs(b)) for a, b in zip(got[k], want[k], strict=True)) for k in want)


def fresh_rows(mapper: Mapper, want: Rows) -> Rows:
    """Scrape until the page shows `want` (the attributor sees a change at the next sample)."""
    return dict(wait_until(lambda: (lambda rows: rows if close(rows, want) else None)(pod_rows(scrape(mapper.base))),
                           "the expected pod rows", timeout=20))


def test_pods_through_a_real_scrape_prometheus_and_the_rest_api(stack: tuple[Scenario, Mapper]) -> None:
    scenario, mapper = stack
    node = scenario.node
    expected = scenario.expected()
    host = (sum(node.processes[p].gpu_kb * 1024.0 for p in scenario.hosts),
            sum(node.processes[p].cpu_percent / 100 for p in scenario.hosts),
            sum(node.processes[p].rss_pages * PAGE_SIZE * 1.0 for p in scenario.hosts), float(len(scenario.hosts)))
    assert len(expected) > TOP + 5, "the scenario must have more containers than the top N"

    # 1. A real scrape: the top N containers named right, the rest in _other, the host as no pod.
    text = wait_until(lambda: (lambda t: t if "jetson_pod_gpu_memory_bytes{" in t else None)(scrape(mapper.base)),
                      "pod series on /metrics", timeout=30)
    promtool_check_metrics(text)
    assert close(pod_rows(text), bounded(expected, host, TOP)), pod_rows(text)
    for _, labels, _ in sample_values(text):
        assert not {"pid", "process", "name", "user"} & set(labels)

    # 2. The twin through the REST API lists every pod holding GPU memory, past the top N too.
    assert twin(mapper) == holders(expected)
    assert twin(mapper).count(",") == len({(k[0], k[1]) for k in expected}) - 1

    # 3. Vanished, reused and unreadable PIDs are counted per sample, never attributed.
    counts = lookups(text)
    per_sample = {"pod": len(expected) - scenario.unnamed, "unnamed": scenario.unnamed, "host": len(scenario.hosts),
                  "vanished": scenario.vanished, "reused": scenario.reused, "unreadable": scenario.unreadable}
    samples_seen = counts["host"] / per_sample["host"]
    assert samples_seen >= 1 and counts == {k: v * samples_seen for k, v in per_sample.items()}, counts

    # 4. A real Prometheus: the dashboard panel's query and the recording rule's expression on live data.
    rule = yaml.safe_load((REPO / "deploy" / "base" / "prometheusrule.yaml").read_text(encoding="utf-8"))
    (record,) = [r for g in rule["spec"]["groups"] for r in g["rules"]
                 if r.get("record") == "node_pod_namespace:jetson_pod_gpu_memory_bytes:sum"]
    with running_prometheus([f"127.0.0.1:{mapper.port}"]) as prometheus:
        panel = prometheus.wait_for(panel_query())
        shown = {(r["metric"].get("pod_namespace", ""), r["metric"].get("pod", "")): float(r["value"][1])
                 for r in panel}
        want_panel: dict[tuple[str, str], float] = {}
        for (namespace, pod, _), figures in bounded(expected, host, TOP).items():
            want_panel[(namespace, pod)] = want_panel.get((namespace, pod), 0.0) + figures[0]
        assert shown == want_panel
        per_namespace = {r["metric"]["pod_namespace"]: float(r["value"][1])
                         for r in prometheus.wait_for(record["expr"])}
        named = {key: figures for key, figures in bounded(expected, host, TOP).items() if key[0]}
        assert per_namespace == {ns: sum(f[0] for k, f in named.items() if k[0] == ns) for ns in {k[0] for k in named}}
        assert all(r["metric"]["node"] == "test-node" for r in prometheus.query(record["expr"]) or [])

    # 5. While it runs: the biggest container's process exits, and another PID is reused by a new container's
    # process that started before jtop's sample (same jtop row, so its GPU memory now belongs to that container).
    (biggest_pid, biggest), (reused_pid, old) = sorted(
        scenario.containers.items(), key=lambda kv: -node.processes[kv[0]].gpu_kb)[:2]
    node.vanish(biggest_pid)
    late = Container("vision", "late-0", "infer")
    node.add_container(late, 3999, gpu_kb=1)  # its log link; 3999 itself is not in jtop's table
    node.reuse(reused_pid, late.cgroup_text(), start_ticks=node.start_ticks(30.0))
    after = dict(expected)
    del after[(biggest.namespace, biggest.pod, biggest.name)]
    after[("vision", "late-0", "infer")] = after.pop((old.namespace, old.pod, old.name))
    assert fresh_rows(mapper, bounded(after, host, TOP))
    assert wait_until(lambda: twin(mapper) == holders(after), "the twin after the churn", timeout=10)
    first = lookups(scrape(mapper.base))
    second = wait_until(lambda: (lambda c: c if c["host"] > first["host"] else None)(lookups(scrape(mapper.base))),
                        "a later sample's lookups", timeout=10)
    new_samples = (second["host"] - first["host"]) / len(scenario.hosts)
    assert second["vanished"] - first["vanished"] == 2 * new_samples  # the old vanished PID and the one just gone
    assert second["reused"] - first["reused"] == new_samples  # the PID reused after jtop's sample, as before
    assert mapper.alive_or_fail() and "Traceback" not in mapper.log(), mapper.log()[-3000:]


def test_the_scenario_covers_every_layout_and_failure() -> None:
    """Guards the fixture itself: each layout and each failure kind is present once."""
    with TemporaryDirectory() as folder:
        scenario = populate(FakeNode(Path(folder)))
        layouts = [c for c in scenario.containers.values() if c.linked]
        assert len(layouts) == len(LAYOUTS)
        assert {(c.runtime, c.driver, c.version) for c in layouts} >= {
            (r, d, v) for r in ("containerd", "cri-o", "docker") for d in ("systemd", "cgroupfs") for v in (1, 2)
            if (r, d, v) not in {("cri-o", "cgroupfs", 1), ("docker", "cgroupfs", 2)}}
        assert (scenario.vanished, scenario.reused, scenario.unreadable, scenario.unnamed) == (1, 1, 1, 1)
