"""A real mosquitto broker and a real MQTT subscriber for tests (import: `from mosquitto import ...`)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from common import free_port, wait_until
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion

from mapper.demo.broker import accepts

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
DEADLINE = 30.0


class Mosquitto:
    """One mosquitto process on a fixed loopback port that can be stopped and restarted on that port."""

    def __init__(
        self, workdir: Path, *, persistence: bool = False, anonymous: bool = True, extra_config: str = ""
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.persistence = persistence
        self.anonymous = anonymous
        self.extra_config = extra_config
        self.password_file = workdir / "passwords"
        self.log_file = workdir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """Broker address as a Device's pushMethod.mqtt.address would name it."""
        return f"tcp://127.0.0.1:{self.port}"

    def add_user(self, username: str, password: str) -> None:
        """Add a user to the password file (used when the broker is (re)started)."""
        create = [] if self.password_file.exists() else ["-c"]
        subprocess.run(
            [MOSQUITTO_PASSWD, *create, "-b", str(self.password_file), username, password],
            check=True,
            capture_output=True,
        )
        self.password_file.chmod(0o600)

    def _config(self) -> Path:
        """Write the broker config file."""
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if self.anonymous else 'false'}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "max_queued_messages 10000",
            f"log_dest file {self.log_file}",
            "log_type all",
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
        ]
        if self.password_file.exists():
            lines.append(f"password_file {self.password_file}")
        path = self.workdir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n" + self.extra_config, encoding="utf-8")
        return path

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        assert self._process is None, "already running"
        self._process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self._config())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        process = self._process
        wait_until(lambda: process.poll() is not None or accepts(self.port), "mosquitto to listen")
        if process.poll() is not None:
            self._process = None
            raise RuntimeError(f"mosquitto exited: {self.log_file.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        """Stop the broker (SIGTERM: it saves persistence) and wait until the port is free."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
        wait_until(lambda: not accepts(self.port), "mosquitto to stop listening")


@pytest.fixture
def broker_dir() -> Iterator[Path]:
    """A short temp dir for broker files."""
    path = Path(tempfile.mkdtemp(prefix="jm"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def mqtt_broker(broker_dir: Path) -> Iterator[Mosquitto]:
    """A running anonymous mosquitto without persistence."""
    broker = Mosquitto(broker_dir)
    broker.start()
    yield broker
    broker.stop()


@dataclass(frozen=True)
class Received:
    """One message a subscriber got."""

    topic: str
    payload: bytes
    retain: bool


class Subscriber:
    """A real MQTT subscriber that records everything on `topic_filter`; reconnects by itself."""

    def __init__(
        self,
        port: int,
        topic_filter: str = "#",
        *,
        client_id: str = "",
        persistent: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._filter = topic_filter
        self.subscribed = threading.Event()
        self._client = Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent)
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.reconnect_delay_set(1, 2)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_args: self.subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect_async("127.0.0.1", port, keepalive=30)
        self._client.loop_start()
        wait_until(self.subscribed.is_set, f"subscription to {topic_filter}")

    def _on_connect(self, client: Client, *_args: object) -> None:
        client.subscribe(self._filter, qos=1)

    def _on_message(self, _client: Client, _userdata: object, message: MQTTMessage) -> None:
        with self._lock:
            self._messages.append(Received(message.topic, bytes(message.payload), bool(message.retain)))

    def messages(self, topic: str | None = None) -> list[Received]:
        """Messages received so far, optionally only those on `topic`."""
        with self._lock:
            return [m for m in self._messages if topic is None or m.topic == topic]

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()
