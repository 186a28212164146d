"""A mosquitto broker of the demo's own: loopback only, a free port, files in the demo's folder."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

SEARCH_PATH = ("/usr/sbin", "/usr/local/sbin")  # Debian puts mosquitto in sbin, often not on a user's PATH


def find_mosquitto() -> str | None:
    """The mosquitto binary on PATH or in the usual sbin folders, or None."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *SEARCH_PATH])
    return shutil.which("mosquitto", path=path)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class LocalBroker:
    """One mosquitto process on 127.0.0.1:<free port>; start() raises OSError when it does not come up."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary = binary
        self.folder = folder
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """The broker as a Device's pushMethod.mqtt.address names it."""
        return f"tcp://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start mosquitto and wait until it accepts connections."""
        config = self.folder / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence false",
                 f"log_dest file {self.folder / 'mosquitto.log'}"]
        if os.getuid() == 0:  # mosquitto started as root drops to its own user unless told to stay
            lines.append(f"user {pwd.getpwuid(os.getuid()).pw_name}")
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._process = subprocess.Popen([self.binary, "-c", str(config)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not accepts(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise OSError(f"mosquitto did not start (see {self.folder / 'mosquitto.log'})")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the broker."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
