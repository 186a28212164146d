"""Small helpers every test module shares: short temp dirs, free ports, polling, the shared data folder."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

DEFAULT_TIMEOUT = 30.0
REPO = Path(__file__).resolve().parents[1]
# The team's shared data (upstream CRDs and examples): ../shared beside the clone, or this variable.
SHARED_ENV = "JETSON_MAPPER_SHARED"


def shared_root() -> Path:
    """Where the shared data folder is expected: $JETSON_MAPPER_SHARED, else ../shared beside the clone."""
    configured = os.environ.get(SHARED_ENV)
    return Path(configured) if configured else REPO.parent / "shared"


def shared_missing(*parts: str) -> str | None:
    """Why a folder of the shared data is unavailable (the skip reason), or None when it is there."""
    if shared_root().joinpath(*parts).is_dir():
        return None
    return (f"needs the shared data folder {shared_root()} with {'/'.join(parts)} "
            f"(../shared beside the clone, or set {SHARED_ENV})")


def shared_dir(*parts: str) -> Path:
    """A folder of the shared data; skips the calling test with one clear reason when it is absent."""
    reason = shared_missing(*parts)
    if reason is not None:
        pytest.skip(reason)
    return shared_root().joinpath(*parts)


def new_short_dir() -> str:
    """A new temp dir with a short path (unix socket paths are limited to 107 bytes); the caller removes it."""
    return tempfile.mkdtemp(prefix="jm", dir="/tmp")


@contextmanager
def short_dir() -> Iterator[Path]:
    """A short temp dir, removed afterwards."""
    path = Path(new_short_dir())
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# Test servers listen below the kernel's ephemeral range (32768-60999 by default): a port taken from that range
# can be handed to any outgoing connection meanwhile, and a server stopped for an outage test could not bind it again.
PORT_RANGE = (20000, 32000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback TCP port nobody listens on right now, outside the ephemeral range, never the same twice here."""
    generator = random.Random()
    for _ in range(1000):
        port = generator.randrange(*PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {PORT_RANGE}")


def wait_until(predicate: Callable[[], Any], what: str = "condition", timeout: float = DEFAULT_TIMEOUT,
               interval: float = 0.05) -> Any:
    """Poll until predicate() is truthy and return it; fail naming `what` and the last value on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate a child and wait for it; kill it if it lingers."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
