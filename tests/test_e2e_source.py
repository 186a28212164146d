"""The mapper's jtop source recovers when jtop.service stops sampling, as the real service does after a stall."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from common import wait_until
from mapper_process import DEVICE_MODEL, Emulator, Mapper

pytestmark = pytest.mark.jtop


def uptime(mapper: Mapper) -> float | None:
    """The board uptime the mapper exposes now."""
    match = re.search(r"^jetson_uptime_seconds\{.*\} (\S+)$", mapper.get("/metrics")[1], re.M)
    return float(match.group(1)) if match else None


def test_samples_resume_after_the_service_stopped_sampling(workdir: str) -> None:
    """A mapper frozen for longer than 3 intervals makes jtop.service stop sampling; it must not serve that
    last sample forever but reconnect, which restarts sampling."""
    emulator = Emulator(workdir, interval=0.5).start()
    mapper = Mapper(workdir, {
        "grpc_server": {"socket_path": os.path.join(workdir, "jetson.sock")},
        "source": {"jtop_socket": emulator.socket, "interval": 0.5},
        "standalone": {"files": [str(DEVICE_MODEL / "jetson-model.yaml"), str(DEVICE_MODEL / "jetson-xavier.yaml")]},
    })
    try:
        mapper.start()
        frozen = wait_until(lambda: uptime(mapper), "a first sample")
        assert mapper.process is not None
        mapper.process.send_signal(signal.SIGSTOP)
        time.sleep(4.0)  # the emulator, like jtop.service, stops sampling after 3 quiet intervals (min 3 s)
        mapper.process.send_signal(signal.SIGCONT)
        log = Path(emulator.socket + ".log")
        wait_until(lambda: "sampling stopped" in log.read_text(), "the service to stop")
        wait_until(lambda: (uptime(mapper) or 0) > frozen + 2, "samples to flow again", timeout=30)
        mapper.alive_or_fail()
    finally:
        mapper.stop()
        emulator.stop()
