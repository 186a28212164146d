"""Run the emulator as a child process (tests, demos): multiprocessing servers don't share a process well."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def spawn_emulator(profile: str | Path, socket_path: str, interval: float = 1.0,
                   service_version: str | None = None, python: str = sys.executable,
                   ready_timeout: float = 20.0, log_path: str | None = None) -> subprocess.Popen[bytes]:
    """Start `python -m mapper.emulator emulate` and return once its socket exists (stop it with .terminate()).

    The emulator's log goes to `log_path` (default: the socket path + ".log").
    """
    command = [python, "-m", "mapper.emulator", "emulate", "--profile", str(profile),
               "--socket", socket_path, "--interval", str(interval)]
    if service_version:
        command += ["--service-version", service_version]
    Path(socket_path).unlink(missing_ok=True)
    log_file = Path(log_path or f"{socket_path}.log")
    with log_file.open("ab") as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + ready_timeout
    while not os.path.exists(socket_path):
        if process.poll() is not None:
            error = log_file.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"emulator exited with {process.returncode}: {error.strip()}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"emulator did not create {socket_path} within {ready_timeout}s")
        time.sleep(0.05)
    return process
