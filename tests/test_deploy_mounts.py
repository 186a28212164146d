"""The DaemonSet's EdgeCore mounts: read-only, narrow, and still working when EdgeCore re-creates dmi.sock.

EdgeCore removes and re-creates dmi.sock at every start. The test runs the real mapper in a mount namespace of
its own, with the same kinds of mounts a pod gets from hostPath volumes, against a fake EdgeCore that restarts:
- EdgeCore's directory bind-mounted read-only (what deploy/base does): the mapper registers again;
- dmi.sock alone bind-mounted as a file (what the DaemonSet must not do): the mount keeps the deleted socket and
  the mapper stays cut off, which shows the test can tell the two apart.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from common import free_port, short_dir, stop_process, wait_until
from deploy_support import REPO_ROOT, run, tool
from fake_edgecore import FakeEdgeCore
from mapper_process import DEVICE_MODEL, Emulator

from mapper.dmi.manifests import load_manifests


def _can_mount() -> str | None:
    """Why private mount namespaces cannot be used here, or None."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "needs root and unshare(1) for a private mount namespace"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "mount", "--bind", "/tmp", "/tmp"],
                           capture_output=True, text=True, check=False)
    return None if probe.returncode == 0 else f"cannot bind-mount in a mount namespace: {probe.stderr.strip()}"


CANNOT_MOUNT = _can_mount()


def pod_of_base() -> dict[str, Any]:
    """The pod spec of deploy/base's DaemonSet, rendered by kustomize."""
    objects = [o for o in yaml.safe_load_all(run(tool("kubectl"), "kustomize", str(REPO_ROOT / "deploy" / "base")))
               if o]
    (daemonset,) = [o for o in objects if o["kind"] == "DaemonSet"]
    (config,) = [o for o in objects if o["kind"] == "ConfigMap"]
    pod: dict[str, Any] = daemonset["spec"]["template"]["spec"]
    pod["mapper-config"] = yaml.safe_load(config["data"]["config.yaml"])
    return pod


def test_the_daemonset_mounts_edgecore_read_only_and_gives_the_mapper_socket_its_own_directory() -> None:
    pod = pod_of_base()
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: (m, volumes[m["name"]]) for m in container["volumeMounts"]}
    config = pod["mapper-config"]
    edgecore_dir = str(Path(config["common"]["edgecore_sock"]).parent)
    mapper_dir = str(Path(config["grpc_server"]["socket_path"]).parent)
    mount, volume = mounts[edgecore_dir]
    assert mount.get("readOnly") is True
    assert volume["hostPath"] == {"path": edgecore_dir, "type": "Directory"}  # a directory, never the socket file
    mount, volume = mounts[mapper_dir]
    assert not mount.get("readOnly") and mapper_dir != edgecore_dir
    assert volume["hostPath"] == {"path": mapper_dir, "type": "DirectoryOrCreate"}  # EdgeCore dials the same path
    writable_host_paths = [v["hostPath"]["path"] for m, v in mounts.values() if "hostPath" in v
                           and not m.get("readOnly")]
    assert writable_host_paths == [mapper_dir], writable_host_paths


@pytest.fixture
def tree() -> Iterator[Path]:
    """A short folder holding the host's and the pod's views."""
    with short_dir() as folder:
        yield folder


def start_in_namespace(tree: Path, emulator: Emulator, single_file: bool) -> tuple[subprocess.Popen[str], Path]:
    """The mapper in a private mount namespace: EdgeCore's folder (or its socket alone) bound read-only into the
    pod's view, the mapper's socket folder bound at the same path EdgeCore dials."""
    host, pod, sockets = tree / "host-kubeedge", tree / "pod-kubeedge", tree / "run-jetson-mapper"
    for folder in (host, pod, sockets):
        folder.mkdir(exist_ok=True)
    if single_file:
        mounts = (f"touch {pod}/dmi.sock && mount --bind {host}/dmi.sock {pod}/dmi.sock && "
                  f"mount -o remount,bind,ro {pod}/dmi.sock")
        probe = f"touch {pod}/dmi.sock"  # changing the mounted file's times needs a writable mount
    else:
        mounts = f"mount --bind {host} {pod} && mount -o remount,bind,ro {pod}"
        probe = f"touch {pod}/probe"
    config = tree / "config.yaml"
    config.write_text(yaml.safe_dump({
        "grpc_server": {"socket_path": f"{sockets}/jetson.sock"},
        "common": {"edgecore_sock": f"{pod}/dmi.sock", "http_port": free_port()},
        "http": {"address": "127.0.0.1"},
        "source": {"jtop_socket": emulator.socket, "interval": 0.5},
        "node_name": "test-node",
    }), encoding="utf-8")
    script = (f"{mounts} && mount --bind {sockets} {sockets} && "
              f"if {probe} 2>/dev/null; then echo POD-VIEW-WRITABLE; else echo POD-VIEW-READ-ONLY; fi && "
              f"exec {sys.executable} -m mapper run --config {config}")
    log = tree / "mapper.log"
    with log.open("w") as out:
        process = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                   stdout=out, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return process, log


@pytest.mark.skipif(CANNOT_MOUNT is not None, reason=CANNOT_MOUNT or "")
@pytest.mark.parametrize("single_file", [False, True], ids=["directory-mount", "single-file-mount"])
def test_the_mapper_reconnects_after_edgecore_recreates_its_socket(tree: Path, single_file: bool) -> None:
    models, devices = load_manifests([DEVICE_MODEL / "jetson-model.yaml", DEVICE_MODEL / "jetson-xavier.yaml"])
    for prop in devices[0].spec.properties:
        prop.ClearField("pushMethod")
    (tree / "host-kubeedge").mkdir()
    edgecore = FakeEdgeCore(str(tree / "host-kubeedge" / "dmi.sock"))
    edgecore.set_devices([(models[0], devices[0])])
    edgecore.start()
    emulator = Emulator(str(tree), interval=0.5).start()
    process, log = start_in_namespace(tree, emulator, single_file)
    try:
        wait_until(lambda: edgecore.calls_of("MapperRegister"), "the first MapperRegister")
        assert "POD-VIEW-READ-ONLY" in log.read_text()
        registered = len(edgecore.calls_of("MapperRegister"))
        edgecore.restart()  # unlinks dmi.sock and binds a new one, as EdgeCore does at every start
        if single_file:
            time.sleep(5)  # several attempts (1 s, 2 s backoff): none can reach the new socket
            assert len(edgecore.calls_of("MapperRegister")) == registered, "a file mount cannot see the new socket"
            assert "registering again" in log.read_text()  # it noticed, and keeps failing
        else:
            wait_until(lambda: len(edgecore.calls_of("MapperRegister")) > registered,
                       "MapperRegister after the restart", timeout=30)
            seen = len(edgecore.calls_of("ReportDeviceStatus"))
            wait_until(lambda: len(edgecore.calls_of("ReportDeviceStatus")) > seen, "reports again", timeout=30)
    finally:
        stop_process(process)  # type: ignore[arg-type]
        emulator.stop()
        edgecore.stop()
    assert "Traceback" not in log.read_text()
