"""The mapper's own DMI socket: deleted or blocked, it is bound again, EdgeCore is told again, /readyz says so."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from fake_edgecore import FakeEdgeCore
from mapper_process import DEVICE_MODEL, Emulator, Mapper, wait_until

from mapper.dmi.manifests import load_manifests


@pytest.fixture
def rig(workdir: str) -> Iterator[tuple[FakeEdgeCore, Mapper]]:
    """A fake EdgeCore handing out the bundled device, the emulator and a registered mapper."""
    models, devices = load_manifests([DEVICE_MODEL / "jetson-model.yaml", DEVICE_MODEL / "jetson-xavier.yaml"])
    for prop in devices[0].spec.properties:
        prop.ClearField("pushMethod")
    edgecore = FakeEdgeCore(os.path.join(workdir, "dmi.sock"))
    edgecore.set_devices([(models[0], devices[0])])
    edgecore.start()
    emulator = Emulator(workdir, interval=0.5).start()
    mapper = Mapper(workdir, {
        "grpc_server": {"socket_path": os.path.join(workdir, "jetson.sock")},
        "common": {"edgecore_sock": os.path.join(workdir, "dmi.sock")},
        "source": {"jtop_socket": emulator.socket, "interval": 0.5},
    }).start()
    try:
        wait_until(lambda: mapper.get("/readyz")[0] == 200, "the mapper to be ready")
        yield edgecore, mapper
    finally:
        mapper.stop()
        emulator.stop()
        edgecore.stop()


def edgecore_reaches_the_mapper(edgecore: FakeEdgeCore) -> bool:
    """Whether EdgeCore's call to the registered address gets through."""
    try:
        return edgecore.get_device("default", "jetson-xavier").device.name == "jetson-xavier"
    except grpc.RpcError:
        return False


def test_a_deleted_mapper_socket_is_bound_again_and_registered_again(
    rig: tuple[FakeEdgeCore, Mapper], workdir: str
) -> None:
    edgecore, mapper = rig
    socket_path = Path(workdir, "jetson.sock")
    registrations = len(edgecore.calls_of("MapperRegister"))
    socket_path.unlink()
    wait_until(lambda: edgecore_reaches_the_mapper(edgecore), "EdgeCore to reach the mapper again", timeout=20)
    wait_until(lambda: len(edgecore.calls_of("MapperRegister")) > registrations, "a new MapperRegister", timeout=20)
    assert "mapper socket" in mapper.log() and "Traceback" not in mapper.log()


def test_while_the_socket_cannot_be_bound_the_mapper_is_not_ready(
    rig: tuple[FakeEdgeCore, Mapper], workdir: str
) -> None:
    edgecore, mapper = rig
    socket_path = Path(workdir, "jetson.sock")
    socket_path.unlink()
    socket_path.write_text("someone else's file")  # never removed by the mapper: it cannot bind meanwhile
    _, reason = wait_until(lambda: (r := mapper.get("/readyz"))[0] == 503 and r, "/readyz to say 503",
                                timeout=20)
    assert f"mapper socket {socket_path}" in reason, reason
    socket_path.unlink()
    wait_until(lambda: mapper.get("/readyz")[0] == 200, "/readyz ok again", timeout=20)
    assert edgecore_reaches_the_mapper(edgecore)
    assert socket_path.is_socket()
