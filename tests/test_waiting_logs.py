"""While the mapper waits for jtop.service or EdgeCore it says so once, at INFO, and again when they arrive."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

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
    log = Path(workdir) / "emulator.log"
    with log.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "mapper", "emulate", "--profile", "nano-jp4",
                                    "--socket", socket_path], stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_until(lambda: f"on {socket_path}" in log.read_text(), "the emulator's INFO line")
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = log.read_text()
    assert " INFO " in text and "Traceback" not in text, text
    assert process.returncode == 0, text


def test_the_emulator_stops_cleanly_when_signalled_while_starting(workdir: str) -> None:
    """A SIGTERM between binding the socket and the manager loop's start (a pod stopped at once) ends the
    emulator without a traceback: the signal handler is called right where it once raised AttributeError."""
    code = """if True:
        import os, sys
        from mapper.emulator.board import EmulatedBoard
        from mapper.emulator.profile import load_profile
        from mapper.emulator.server import JtopServiceEmulator, installed_jetson_stats_version
        board = EmulatedBoard(load_profile("nano-jp4"), installed_jetson_stats_version())
        emulator = JtopServiceEmulator(board, sys.argv[1])
        chmod = os.chmod
        def chmod_then_signal(*args):  # serve_forever chmods the socket right before the manager's loop
            chmod(*args)
            emulator._on_signal(15, None)
        os.chmod = chmod_then_signal
        emulator.serve_forever()
        print("returned")
    """
    done = subprocess.run([sys.executable, "-c", code, os.path.join(workdir, "jtop.sock")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "returned" in done.stdout and "Traceback" not in done.stderr, done.stderr
