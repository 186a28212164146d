"""Helpers for tests that run the jtop.service emulator as a child process and talk to it with jetson-stats."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jtop.service as jtop_service
from common import stop_process, wait_until
from jtop import jtop

from mapper.emulator.board import EmulatedBoard
from mapper.emulator.process import spawn_emulator
from mapper.emulator.profile import Profile, load_profile
from mapper.emulator.server import installed_jetson_stats_version

INTERVAL = 0.3
DEADLINE_S = 20.0




@contextmanager
def emulator(profile: str | Path, socket_path: str, service_version: str | None = None,
             ) -> Iterator[subprocess.Popen[bytes]]:
    """A running emulator, always stopped afterwards."""
    process = spawn_emulator(profile, socket_path, INTERVAL, service_version=service_version)
    try:
        yield process
    finally:
        stop_process(process)


@contextmanager
def client(socket_path: str, interval: float = INTERVAL) -> Iterator[Any]:
    """A started, unmodified jetson-stats client connected to socket_path."""
    jtop_service.JTOP_PIPE = socket_path
    jetson = jtop(interval=interval)
    jetson.start()
    try:
        yield jetson
    finally:
        jetson.close()


def wait_for(predicate: Callable[[], Any], what: str, deadline: float = DEADLINE_S) -> Any:
    """Poll until predicate() is truthy; fail naming `what`."""
    return wait_until(predicate, what, deadline)


def raw(jetson: Any) -> dict[str, Any]:
    """The raw service sample the client holds now."""
    return dict(json.loads(jetson.json()))


def fresh_raw(jetson: Any, count: int = 1) -> dict[str, Any]:
    """A raw sample at least `count` samples newer than the current one."""
    start = float(raw(jetson)["uptime"])
    return dict(wait_for(lambda: (lambda r: r if r["uptime"] >= start + count * INTERVAL - 0.01 else None)(
        raw(jetson)), f"{count} newer samples"))


def local_board(profile: Profile) -> EmulatedBoard:
    """The same board the emulator serves, computed in this process."""
    version = installed_jetson_stats_version() or profile.jetson_stats
    return EmulatedBoard(profile, version)


def expected_sample(profile: Profile, sample: dict[str, Any]) -> dict[str, Any]:
    """What the emulator must have served for the sample with this uptime (fresh board, no setters)."""
    t = round(float(sample["uptime"]) - float(profile.samples[0]["uptime"]), 2)
    index = round(t / INTERVAL)
    return json.loads(json.dumps(local_board(profile).sample(index, t)))


def profile(name: str) -> Profile:
    """A profile by name or path."""
    return load_profile(name)
