"""The jtop.service wire protocol: a multiprocessing manager on a unix socket with queue, dict and event."""

from __future__ import annotations

import base64
import logging
import os
import queue
import signal
import socket
import stat
import threading
import time
from importlib import metadata
from multiprocessing.managers import BaseManager
from pathlib import Path
from types import FrameType
from typing import Any

from mapper.emulator.board import EmulatedBoard

logger = logging.getLogger(__name__)

# The client's fixed, public authkey: str() of the base64 of jetson-stats' author name, utf-8 encoded.
AUTHKEY = str(base64.b64encode(b"Raffaello Bonghi")).encode("utf-8")
# The service stops sampling after TIMEOUT_GAIN intervals (at least TIMEOUT_GAIN s) without a message.
TIMEOUT_GAIN = 3.0
_POLL_S = 0.1


class EmulatorError(RuntimeError):
    """The emulator cannot serve on the requested socket."""


def installed_jetson_stats_version() -> str | None:
    """Version of the jetson-stats distribution installed next to us, if any."""
    try:
        return metadata.version("jetson-stats")
    except metadata.PackageNotFoundError:
        return None


def prepare_socket_path(socket_path: str) -> None:
    """Create the parent folder and remove a stale socket file; refuse if a live service answers."""
    path = Path(socket_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not (path.exists() or path.is_symlink()):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(socket_path)
    except OSError:
        path.unlink()
        logger.info("removed stale socket %s", socket_path)
        return
    finally:
        probe.close()
    raise EmulatorError(f"a service is already listening on {socket_path}")


class JtopServiceEmulator:
    """Serves one EmulatedBoard to any number of jetson-stats clients, like jtop.service does."""

    def __init__(self, board: EmulatedBoard, socket_path: str, fixed_interval: float | None = None) -> None:
        self.board = board
        self.socket_path = socket_path
        self._fixed_interval = fixed_interval
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._data: dict[str, Any] = {}
        self._event = threading.Event()
        self._stopping = threading.Event()
        self._sampler_stop = threading.Event()
        self._sampler: threading.Thread | None = None
        self._interval = -1.0
        self._index = 0
        self._elapsed = 0.0
        self._server: Any = None

    def serve_forever(self) -> None:
        """Bind the socket and serve until stop() (or SIGTERM/SIGINT when called from the main thread)."""
        prepare_socket_path(self.socket_path)
        manager_class: type[BaseManager] = type("JtopEmulatorManager", (BaseManager,), {})
        manager_class.register("get_queue", callable=lambda: self._queue)
        manager_class.register("sync_data", callable=lambda: self._data)
        manager_class.register("sync_event", callable=lambda: self._event)
        manager = manager_class(address=self.socket_path, authkey=AUTHKEY)
        self._server = manager.get_server()
        os.chmod(self.socket_path, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        control = threading.Thread(target=self._control_loop, name="jtop-emulator-control", daemon=True)
        control.start()
        logger.info("jtop.service emulator %s (jetson-stats %s) on %s", self.board.profile.name,
                    self.board.service_version, self.socket_path)
        try:
            if not self._stopping.is_set():  # a signal during start-up: the control loop ends the server
                self._server.serve_forever()
        except SystemExit:
            pass
        finally:
            self._stopping.set()
            self._stop_sampling()
            self._server.listener.close()  # also removes the socket file
            logger.info("jtop.service emulator closed")

    def stop(self) -> None:
        """Ask serve_forever() to return (also when it has not reached the server's loop yet)."""
        self._stopping.set()
        event = getattr(self._server, "stop_event", None)  # multiprocessing's Server makes it in serve_forever
        if event is not None:
            event.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop()

    def _control_loop(self) -> None:
        """Read control messages like JtopServer.run: interval -> init, setters -> board, quiet -> stop."""
        last_message = time.monotonic()
        stray: dict[int, float] = {}
        while not self._stopping.is_set():
            try:
                control = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                quiet = max(TIMEOUT_GAIN, self._interval * TIMEOUT_GAIN)
                if self._sampler is not None and time.monotonic() - last_message > quiet:
                    logger.info("no client message for %.1fs: sampling stopped", quiet)
                    self._stop_sampling()
                continue
            if "init" in control:
                # Our own answer, read back before the client took it: put it back for the client,
                # unless nobody took it for a while (a client that read its own request asks twice).
                first_seen = stray.setdefault(id(control), time.monotonic())
                if time.monotonic() - first_seen < TIMEOUT_GAIN:
                    self._queue.put(control)
                    time.sleep(0.01)
                else:
                    stray.pop(id(control), None)
                continue
            stray.clear()
            last_message = time.monotonic()
            if not control:
                continue
            logger.debug("control message %s", control)
            try:
                self._handle(control)
            except (KeyError, TypeError, ValueError) as error:
                logger.error("malformed control message %s: %s", control, error)
        self._end_server()

    def _end_server(self) -> None:
        """Stopping: end the server's loop even if the stop came before the loop had its stop event."""
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            event = getattr(self._server, "stop_event", None)
            if event is not None:
                event.set()
                return
            time.sleep(_POLL_S)

    def _handle(self, control: dict[str, Any]) -> None:
        if "interval" in control:
            if self._sampler is None:
                self._start_sampling(self._fixed_interval or float(control["interval"]))
            self._queue.put({"init": self.board.init_message(self._interval)})
        self.board.apply(control)

    def _start_sampling(self, interval: float) -> None:
        self._interval = interval
        self._sampler_stop.clear()
        self._sampler = threading.Thread(target=self._sampling, args=(interval,), name="jtop-emulator-sampler",
                                         daemon=True)
        self._sampler.start()
        logger.info("sampling every %sms", int(interval * 1000))

    def _stop_sampling(self) -> None:
        self._sampler_stop.set()
        if self._sampler is not None:
            self._sampler.join(timeout=5)
        self._sampler = None
        self._event.clear()
        self._interval = -1.0

    def _sampling(self, interval: float) -> None:
        next_tick = time.monotonic()
        while not self._sampler_stop.is_set():
            try:
                sample = self.board.sample(self._index, self._elapsed)
            except Exception:  # a broken profile must not kill the service silently
                logger.exception("cannot build sample %s", self._index)
                return
            self._data.update(sample)
            self._event.set()
            self._index += 1
            self._elapsed = round(self._elapsed + interval, 2)
            next_tick += interval
            self._sampler_stop.wait(max(0.0, next_tick - time.monotonic()))
