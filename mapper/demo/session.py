"""Everything one demo run needs besides the mapper: a folder, the emulator, the broker and the Device files."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mapper.config import HttpConfig, MapperConfig, SourceConfig
from mapper.demo.broker import LocalBroker, find_mosquitto
from mapper.emulator.process import spawn_emulator

log = logging.getLogger(__name__)

MODEL_FILE, DEVICE_FILE = "jetson-model.yaml", "jetson-xavier.yaml"
DEMO_FILES = (MODEL_FILE, DEVICE_FILE)
NO_BROKER = "none"


def packaged_files() -> Path:
    """The folder of the Device files shipped in the package."""
    return Path(str(resources.files("mapper.demo") / "files"))


def _device_for(source: Path, target: Path, broker: str | None) -> None:
    """The demo Device with every MQTT push sent to `broker`, or without MQTT pushes when there is none."""
    documents = [doc for doc in yaml.safe_load_all(source.read_text(encoding="utf-8")) if doc]
    for document in documents:
        for prop in document.get("spec", {}).get("properties", []) or []:
            push: dict[str, Any] | None = prop.get("pushMethod")
            if push is None or "mqtt" not in push:
                continue
            if broker is None:
                del push["mqtt"]
                if not push:
                    del prop["pushMethod"]
            else:
                push["mqtt"]["address"] = broker
    target.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")


class DemoSession:
    """The demo's folder, emulator and broker, and the mapper config that uses them; close() removes it all."""

    def __init__(self, profile: str, files: Path, address: str, http_port: int, mosquitto: str | None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="jm-demo-"))
        self.broker: LocalBroker | None = None
        self._emulator: subprocess.Popen[bytes] | None = None
        self.jtop_socket = str(self.folder / "jtop.sock")
        try:
            self._start(profile, files, mosquitto)
        except BaseException:
            self.close()
            raise
        config = MapperConfig(
            socket_path=str(self.folder / "jetson.sock"),
            source=SourceConfig(jtop_socket=self.jtop_socket, interval=1.0),
            http=HttpConfig(address=address),
            standalone_files=(files / MODEL_FILE, self.folder / DEVICE_FILE),
            node_name="demo-node",
        )
        self.config = replace(config, common=replace(config.common, http_port=http_port))

    def _start(self, profile: str, files: Path, mosquitto: str | None) -> None:
        binary = find_mosquitto() if mosquitto is None else (None if mosquitto == NO_BROKER else mosquitto)
        if binary is not None and os.access(binary, os.X_OK):
            self.broker = LocalBroker(binary, self.folder)
            try:
                self.broker.start()
            except OSError as exc:
                log.info("%s: the demo runs without MQTT pushes", exc)
                self.broker = None
        elif mosquitto == NO_BROKER:
            log.info("no local broker asked for (--mosquitto none): the demo runs without MQTT pushes")
        else:
            log.info("%s: the demo runs without MQTT pushes (install mosquitto to see them)",
                     f"no mosquitto at {binary}" if binary else "mosquitto is not installed")
        _device_for(files / DEVICE_FILE, self.folder / DEVICE_FILE, self.broker.address if self.broker else None)
        self._emulator = spawn_emulator(profile, self.jtop_socket, interval=1.0)

    def close(self) -> None:
        """Stop the emulator and the broker and remove the folder."""
        if self._emulator is not None:
            self._emulator.terminate()
            self._emulator.wait(timeout=10)
            self._emulator = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        shutil.rmtree(self.folder, ignore_errors=True)
