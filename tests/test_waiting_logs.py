"""While the mapper waits for jtop.service or EdgeCore it says so once, at INFO, and again when they arrive."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from fake_edgecore import FakeEdgeCore
from mapper_process import Emulator, Mapper, wait_until


def lines(mapper: Mapper, pattern: str) -> list[str]:
    """Log lines matching a regular expression."""
    return [line for line in mapper.log().splitlines() if re.search(pattern, line)]


def test_waiting_for_jtop_and_edgecore_is_said_once_and_their_arrival_too(workdir: str) -> None:
    jtop_socket = os.path.join(workdir, "jtop.sock")
    dmi_socket = os.path.join(workdir, "dmi.sock")
    mapper = Mapper(workdir, {
        "grpc_server": {"socket_path": os.path.join(workdir, "jetson.sock")},
        "common": {"edgecore_sock": dmi_socket},
        "source": {"jtop_socket": jtop_socket, "interval": 0.5},
    }).start()
    emulator = Emulator(workdir, interval=0.5)
    edgecore = FakeEdgeCore(dmi_socket)
    try:
        wait_until(lambda: lines(mapper, "waiting for jtop.service") and lines(mapper, "waiting for EdgeCore"),
                   "both waiting lines")
        time.sleep(3.5)  # a few retries of each (1 s, 2 s backoff): still one line each
        (jtop_wait,) = lines(mapper, "waiting for jtop.service")
        (edge_wait,) = lines(mapper, "waiting for EdgeCore")
        assert " INFO " in jtop_wait and jtop_socket in jtop_wait and "retrying" in jtop_wait, jtop_wait
        assert " INFO " in edge_wait and dmi_socket in edge_wait and "retrying" in edge_wait, edge_wait
        assert "sudo jtop --install-service" not in mapper.log()
        emulator.start()
        edgecore.start()
        wait_until(lambda: lines(mapper, "jtop source up") and lines(mapper, "registered with EdgeCore"),
                   "both arrivals", timeout=40)
        (arrived,) = lines(mapper, "jtop source up")
        assert " INFO " in arrived and jtop_socket in arrived, arrived
        assert len(lines(mapper, "jtop")) == 2, lines(mapper, "jtop")  # one line waiting, one line arrived
    finally:
        mapper.stop()
        edgecore.stop()
        emulator.stop()


def test_the_emulator_command_says_what_it_serves(workdir: str) -> None:
    socket_path = os.path.join(workdir, "jtop.sock")
    process = subprocess.Popen([sys.executable, "-m", "mapper", "emulate", "--profile", "nano-jp4",
                                "--socket", socket_path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: os.path.exists(socket_path), "the emulator's socket")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert f"on {socket_path}" in stderr and " INFO " in stderr, stderr
