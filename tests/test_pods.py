"""Pod attribution on fixture trees: every runtime, driver and cgroup version; names, caches, PID churn, bounds."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
from pods_fixture import HOST_CGROUP_V1, HOST_CGROUP_V2, LAYOUTS, PAGE_SIZE, Container, FakeNode, Process, layout_id

from mapper.config import ConfigError, parse_config
from mapper.devices.values import format_twin
from mapper.pods.attributor import PodAttributor, process_rows
from mapper.pods.cgroup import ContainerRef, Unparsable, parse_cgroup
from mapper.pods.names import NameIndex, parse_link
from mapper.pods.settings import PodSettings, parse_pod_settings
from mapper.pods.usage import HOLDERS_KEY, HOST, OTHERS, PodKey, PodSample, Usage, holders_reading
from mapper.readings.keys import documented_key

TWIN_VALUE = re.compile(r"^[a-zA-Z0-9-_.,:/@#]{1,512}$")


def attributor(node: FakeNode, top: int = 20) -> PodAttributor:
    """An attributor reading the fake node."""
    return PodAttributor(PodSettings(True, str(node.proc), str(node.containers), top))


def attribute(pods: PodAttributor, node: FakeNode) -> PodSample:
    """One sample of the node through the attributor, as the runtime calls it."""
    snapshot = node.snapshot()
    return pods(snapshot, {"uptime": snapshot["uptime"]})


def rows(sample: PodSample) -> dict[PodKey, Usage]:
    """Rows by key."""
    return dict(sample.rows)


def lookups(sample: PodSample) -> dict[str, int]:
    """Non-zero lookup totals."""
    return {result: count for result, count in sample.lookups if count}


@pytest.fixture
def node(tmp_path: Path) -> FakeNode:
    """An empty fake node."""
    return FakeNode(tmp_path)


@pytest.mark.parametrize("layout", LAYOUTS, ids=layout_id)
def test_each_layout_is_parsed_and_named(node: FakeNode, layout: dict[str, Any]) -> None:
    container = Container("vision", "detector-7d9c5-x2x4q", "infer", **layout)
    ref = parse_cgroup(container.cgroup_text())
    systemd_runtime = {"containerd": "containerd", "cri-o": "cri-o", "docker": "docker"}[container.runtime]
    runtime = systemd_runtime if container.driver == "systemd" or container.runtime == "cri-o" else ""
    assert ref == ContainerRef(container.uid, container.id, runtime)

    node.add_container(container, 4242, gpu_kb=524288, cpu_percent=37.5, rss_pages=30000)
    sample = attribute(attributor(node), node)
    usage = rows(sample)[PodKey("vision", "detector-7d9c5-x2x4q", "infer")]
    assert usage == Usage(524288 * 1024, 0.375, 30000 * PAGE_SIZE, 1)
    assert sample.readings == {HOLDERS_KEY: "vision/detector-7d9c5-x2x4q"}
    assert lookups(sample) == {"pod": 1}


def test_another_cgroup_root_and_nested_cgroups() -> None:
    uid, cid = "9f1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "d" * 64
    under = ("0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/"
             f"kubelet-kubepods-burstable-pod{uid.replace('-', '_')}.slice/cri-containerd-{cid}.scope\n")
    assert parse_cgroup(under) == ContainerRef(uid, cid, "containerd")
    nested = f"0::/kubepods/besteffort/pod{uid}/{cid}/init.scope\n"  # a container that made its own sub-cgroup
    assert parse_cgroup(nested) == ContainerRef(uid, cid, "")


@pytest.mark.parametrize("text", [
    HOST_CGROUP_V2, HOST_CGROUP_V1,
    "0::/system.slice/jtop.service\n",
    "0::/system.slice/docker-" + "a" * 64 + ".scope\n",  # a plain Docker container: no pod
    "0::/../../../system.slice/nvargus-daemon.service\n",  # a host service seen through a cgroup namespace
    "0::/user.slice/pod-fake.slice/podman-" + "b" * 64 + ".scope\n",
    "0::/kubepods.slice/kubepods-burstable.slice\n",  # a qos level itself, no pod
])
def test_processes_outside_pods_count_as_the_host(text: str) -> None:
    assert parse_cgroup(text) is None


def test_pod_level_processes_and_garbage() -> None:
    uid = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    conmon = f"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid.replace('-', '_')}.slice/" \
             f"crio-conmon-{'c' * 64}.scope\n"
    assert parse_cgroup(conmon) == ContainerRef(uid, "", "")
    long = "".join(f"{i}:controller{i}:/system.slice/long-service-name-{i}.service\n" for i in range(99, 0, -1))
    assert parse_cgroup(long + conmon) == ContainerRef(uid, "", "")
    for garbage in ("", "\n", "not a cgroup file\n", "\x00\x01"):
        with pytest.raises(Unparsable):
            parse_cgroup(garbage)


def test_long_proc_files_are_read_whole(node: FakeNode) -> None:
    container = Container("big", "cgroups-0", "c", version=1)
    padding = "".join(f"{i}:name=x{i}:/system.slice/padding-{'p' * 60}-{i}.service\n" for i in range(200, 99, -1))
    node.add(Process(4321, padding + container.cgroup_text(), 1024))
    (node.containers / container.link_name()).symlink_to(container.link_target())
    assert len((node.proc / "4321" / "cgroup").read_bytes()) > 3 * 4096
    assert set(rows(attribute(attributor(node), node))) == {PodKey("big", "cgroups-0", "c")}


def test_processes_of_one_container_are_summed_and_hosts_are_one_row(node: FakeNode) -> None:
    web = Container("shop", "api-0", "server")
    node.add_container(web, 100, gpu_kb=1000, cpu_percent=10.0, rss_pages=10)
    node.add_container(web, 101, gpu_kb=3000, cpu_percent=30.0, rss_pages=30)
    node.add(Process(2210, HOST_CGROUP_V2, 12288, 1.2, 5000, name="gnome-shell"))
    node.add(Process(1540, HOST_CGROUP_V1, 24576, 0.4, 3000, name="Xorg"))
    sample = attribute(attributor(node), node)
    assert sample.rows == (
        (PodKey("shop", "api-0", "server"), Usage(4000 * 1024, 0.4, 40 * PAGE_SIZE, 2)),
        (HOST, Usage((12288 + 24576) * 1024, pytest.approx(0.016), 8000 * PAGE_SIZE, 2)),
    )
    assert lookups(sample) == {"pod": 2, "host": 2}


def test_a_container_without_a_link_keeps_short_ids_or_its_pods_names(node: FakeNode) -> None:
    lonely = Container("ml", "solo-0", "main", linked=False)
    node.add_container(lonely, 300, gpu_kb=2048)
    sibling_less = attribute(attributor(node), node)
    key = PodKey("", lonely.uid[:8], lonely.id[:12])
    assert set(rows(sibling_less)) == {key}
    assert sibling_less.readings[HOLDERS_KEY] == f"_/{lonely.uid[:8]}"
    assert lookups(sibling_less) == {"unnamed": 1}
    assert TWIN_VALUE.match(sibling_less.readings[HOLDERS_KEY])

    sidecar = Container("ml", "pair-0", "sidecar")
    unlinked = Container("ml", "pair-0", "main", linked=False, uid=sidecar.uid)
    node.add_container(sidecar, 301, gpu_kb=1024)
    node.add_container(unlinked, 302, gpu_kb=4096)
    named = rows(attribute(attributor(node), node))
    assert PodKey("ml", "pair-0", unlinked.id[:12]) in named  # the sibling's link names the pod
    assert PodKey("ml", "pair-0", "sidecar") in named


def test_vanished_reused_and_unreadable_processes_are_counted_not_attributed(node: FakeNode) -> None:
    keep, gone, reused, blocked, garbled = (Container("apps", f"p{i}", "c") for i in range(5))
    for pid, container in enumerate((keep, gone, reused, blocked, garbled), start=500):
        node.add_container(container, pid, gpu_kb=1024 * (pid - 499))
    node.vanish(501)
    node.reuse(502, HOST_CGROUP_V2, start_ticks=node.start_ticks(-5.0))  # started 5 s after jtop's sample
    node.unreadable(503)
    (node.proc / "504" / "stat").write_text("504 (truncated", encoding="utf-8")
    sample = attribute(attributor(node), node)
    assert set(rows(sample)) == {PodKey("apps", "p0", "c")}
    assert sample.readings[HOLDERS_KEY] == "apps/p0"
    assert lookups(sample) == {"pod": 1, "vanished": 1, "reused": 1, "unreadable": 2}
    pods = attributor(node)
    once = lookups(attribute(pods, node))
    assert lookups(attribute(pods, node)) == {k: 2 * v for k, v in once.items()}  # totals accumulate


def test_a_pid_reused_before_the_sample_is_looked_up_again(node: FakeNode) -> None:
    first, second = Container("a", "first-0", "c"), Container("b", "second-0", "c")
    node.add_container(first, 777, gpu_kb=2048)
    pods = attributor(node)
    assert set(rows(attribute(pods, node))) == {PodKey("a", "first-0", "c")}
    # Same start time: the cached cgroup is used, the file is not read again (rewriting it changes nothing).
    (node.proc / "777" / "cgroup").write_text(second.cgroup_text(), encoding="utf-8")
    assert set(rows(attribute(pods, node))) == {PodKey("a", "first-0", "c")}
    # The PID went to a process of another container that started before jtop's sample: jtop's row is that one.
    node.add_container(second, 999, gpu_kb=1)  # only for its log link
    node.reuse(777, second.cgroup_text(), start_ticks=node.start_ticks(10.0))
    assert PodKey("b", "second-0", "c") in rows(attribute(pods, node))
    assert PodKey("a", "first-0", "c") not in rows(attribute(pods, node))


def test_names_are_cached_per_container_id(node: FakeNode) -> None:
    now = [0.0]
    index = NameIndex(str(node.containers), clock=lambda: now[0], retry_after=30.0)
    one, two = Container("n", "one-0", "c"), Container("n", "two-0", "c")
    node.add_container(one, 10, 1)
    assert set(index.names([one.id])) == {one.id} and index.scans == 1
    assert set(index.names([one.id])) == {one.id} and index.scans == 1  # known: no listing
    node.add_container(two, 11, 1)
    assert set(index.names([one.id, two.id])) == {one.id, two.id} and index.scans == 2  # a new ID: one listing
    unknown = "f" * 64
    assert set(index.names([one.id, unknown])) == {one.id} and index.scans == 3
    now[0] = 29.0
    assert set(index.names([one.id, unknown])) == {one.id} and index.scans == 3  # a miss is retried later
    now[0] = 31.0
    index.names([one.id, unknown])
    assert index.scans == 4
    assert index.pod(one.uid) == ("n", "one-0")


def test_link_names_are_parsed_strictly() -> None:
    cid = "0123456789abcdef" * 4
    assert parse_link(f"web.v2-5f9c_prod-eu_nginx-proxy-{cid}.log")[1].pod == "web.v2-5f9c"  # type: ignore[index]
    parsed = parse_link(f"kube-proxy-x_kube-system_kube-proxy-{cid}.log")
    assert parsed is not None and parsed[1].namespace == "kube-system" and parsed[1].container == "kube-proxy"
    for name in (f"web_ns_c-{cid}.txt", f"web_ns_c-{cid[:-1]}.log", f"Web_ns_c-{cid}.log", f"a_b_c_d-{cid}.log",
                 f"web ns_x_c-{cid}.log", "README"):
        assert parse_link(name) is None, name


def test_a_missing_containers_folder_names_by_ids_and_warns_once(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    node = FakeNode(tmp_path)
    container = Container("x", "y-0", "z")
    node.add_container(container, 42, 1)
    pods = PodAttributor(PodSettings(True, str(node.proc), str(tmp_path / "absent"), 20))
    with caplog.at_level(logging.WARNING, logger="mapper.pods"):
        attribute(pods, node)
        pods.names._missed.clear()  # force another listing
        assert set(rows(attribute(pods, node))) == {PodKey("", container.uid[:8], container.id[:12])}
    assert sum("cannot list container log links" in r.message for r in caplog.records) == 1


def test_a_proc_root_that_is_not_the_hosts_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    node = FakeNode(tmp_path)
    (node.proc / "1" / "cgroup").write_text(Container("kube-system", "mapper-0", "m").cgroup_text(), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="mapper.pods"):
        attribute(attributor(node), node)
        attribute(PodAttributor(PodSettings(True, str(tmp_path / "none"), str(node.containers))), node)
    messages = [r.message for r in caplog.records]
    assert any("PID 1 under" in m and "not the host's" in m for m in messages), messages
    assert any("cannot read" in m and "/none/1/cgroup" in m for m in messages), messages


def test_a_proc_root_without_jtops_processes_is_reported_once(node: FakeNode,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    for pid in (2210, 1540):
        node.add(Process(pid, HOST_CGROUP_V2, 1024))
        node.vanish(pid)  # listed by jtop, absent here: another PID namespace's /proc
    pods = attributor(node)
    with caplog.at_level(logging.WARNING, logger="mapper.pods"):
        for _ in range(3):
            attribute(pods, node)
    assert sum("none of the 2 processes jtop lists" in r.message for r in caplog.records) == 1


def test_more_containers_than_top_fold_into_other(node: FakeNode) -> None:
    containers = [Container("team", f"worker-{i:02d}", "infer") for i in range(25)]
    for i, container in enumerate(containers):
        node.add_container(container, 1000 + i, gpu_kb=1024 * (i + 1), cpu_percent=float(i), rss_pages=i + 1)
    node.add(Process(2210, HOST_CGROUP_V2, 512, 1.0, 100))
    sample = attribute(attributor(node, top=20), node)
    assert len(sample.rows) == 22  # 20 containers, _other, host
    named = [key.pod for key, _ in sample.rows[:20]]
    assert named == [f"worker-{i:02d}" for i in range(24, 4, -1)]  # most GPU memory first
    other_key, other = sample.rows[20]
    assert other_key == OTHERS
    assert other == Usage(1024 * 1024 * (1 + 2 + 3 + 4 + 5), pytest.approx(0.10), 15 * PAGE_SIZE, 5)
    assert sample.rows[21][0] == HOST
    assert sample.readings[HOLDERS_KEY].split(",") == [f"team/worker-{i:02d}" for i in range(24, -1, -1)]


def test_the_holders_reading_keeps_whole_entries_within_512_characters() -> None:
    containers = {PodKey("inference-prod", f"camera-pipeline-{i:03d}-5f7d8c9b6-abcde", "c"): Usage(gpu_memory=1000 - i)
                  for i in range(40)}
    containers[PodKey("idle", "no-gpu-0", "c")] = Usage(gpu_memory=0, processes=1)
    text = holders_reading(containers)
    assert len(text) <= 512 and TWIN_VALUE.match(text)
    entries = text.split(",")
    assert entries[-1] == f"...{40 - (len(entries) - 1)}_more"
    assert entries[:-1] == [f"inference-prod/camera-pipeline-{i:03d}-5f7d8c9b6-abcde" for i in range(len(entries) - 1)]
    assert len(text) + len(entries[0]) + 1 > 512  # one more entry would not have fitted
    assert holders_reading({}) == "" and format_twin("", "STRING") == "none"
    assert holders_reading({PodKey("idle", "no-gpu-0", "c"): Usage()}) == ""


def test_bad_process_rows_are_skipped() -> None:
    good = [1, "root", "I", "Graphic", 20, "S", 1.0, 10, 20, "ok"]
    bad: list[Any] = [["bad row"], [True, *good[1:]], [-1, *good[1:]], [2.5, *good[1:]], [3, *good[1:6], "x", 1, 2],
                      [4, *good[1:8], None], "text", None]
    assert [r.pid for r in process_rows([good, *bad])] == [1]
    assert process_rows(None) == [] and process_rows({"a": 1}) == []


def test_settings_defaults_problems_and_the_config_section() -> None:
    assert parse_pod_settings(None) == (PodSettings(False, "/proc", "/var/log/containers", 20), [])
    settings, problems = parse_pod_settings({"enabled": "yes", "proc_root": "proc", "containers_dir": 3,
                                             "top": 0, "topn": 5})
    assert settings == PodSettings()
    assert problems == [
        "pods.topn: unknown key; did you mean 'top'?",
        "pods.enabled: expected true or false, got 'yes'",
        "pods.proc_root: must be an absolute path, got 'proc'",
        "pods.containers_dir: must be an absolute path, got 3",
        "pods.top: must be an integer between 1 and 500, got 0",
    ]
    config = parse_config({"pods": {"enabled": True, "proc_root": "/host/proc", "top": 5}}, Path("/"), {})
    assert config.pods == PodSettings(True, "/host/proc", "/var/log/containers", 5)
    assert parse_config({}, Path("/"), {}).pods.enabled is False
    with pytest.raises(ConfigError, match=r"pods\.top"):
        parse_config({"pods": {"top": "many"}}, Path("/"), {})
    with pytest.raises(ConfigError, match="pods: must be a mapping"):
        parse_config({"pods": [1]}, Path("/"), {})


def test_the_reading_key_is_documented() -> None:
    documented = documented_key(HOLDERS_KEY)
    assert documented is not None and (documented.pattern, documented.kind) == (HOLDERS_KEY, "str")
