"""Run the real mapper (and the jtop emulator) as subprocesses for end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from common import free_port, stop_process, wait_until

from mapper.emulator.process import spawn_emulator

REPO = Path(__file__).resolve().parents[1]
DEVICE_MODEL = REPO / "device-model"








class Emulator:
    """A jtop.service emulator subprocess on its own socket."""

    def __init__(self, workdir: str, profile: str = "xavier-nx-jp5", interval: float = 0.5) -> None:
        self.socket = os.path.join(workdir, "jtop.sock")
        self.profile = profile
        self.interval = interval
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Emulator:
        """Start and wait for the socket."""
        self.process = spawn_emulator(self.profile, self.socket, interval=self.interval)
        return self

    def stop(self) -> None:
        """Stop the emulator."""
        if self.process is not None:
            stop_process(self.process)
        self.process = None


class Mapper:
    """`python -m mapper run --config ...` with a config written for the test."""

    def __init__(self, workdir: str, config: dict[str, Any]) -> None:
        self.workdir = workdir
        self.port = int(config.setdefault("common", {}).setdefault("http_port", free_port()))
        config.setdefault("http", {}).setdefault("address", "127.0.0.1")
        config.setdefault("node_name", "test-node")
        self.config_path = Path(workdir) / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.log_path = Path(workdir) / "mapper.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        """Base URL of the mapper's HTTP server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> Mapper:
        """Start the mapper; wait until /healthz answers."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mapper", "run", "--config", str(self.config_path)],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        if wait:
            wait_until(lambda: self.alive_or_fail() and self.get("/healthz")[0] == 200, "the mapper's /healthz")
        return self

    def alive_or_fail(self) -> bool:
        """True while running; raise with the log when it died."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"mapper exited with {self.process.returncode}:\n{self.log()}")
        return True

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        """GET a path; (status, body), (0, error) when not reachable."""
        request = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError as exc:
            return 0, str(exc)

    def get_json(self, path: str) -> Any:
        """GET a path that must answer 200 JSON."""
        status, body = self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def log(self) -> str:
        """The mapper's output so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int | None:
        """Stop with SIGTERM like Kubernetes does; return the exit code."""
        if self.process is None:
            return None
        stop_process(self.process, timeout=15)  # terminate() is SIGTERM
        return self.process.returncode
