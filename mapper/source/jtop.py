"""The one long-lived jetson-stats client: samples the board, rebuilds on loss, applies setters.

This is the only module of the project that imports `jtop`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from multiprocessing.managers import BaseProxy
from typing import Any

import jtop.service as jtop_service
from jtop import JtopException, jtop

from mapper.source.snapshot import Snapshot, board_of, build_snapshot, describe_failure

__all__ = ["TIMEOUT_GAIN", "JtopSource", "SetterRefused", "Snapshot", "SourceUnavailable", "client_version", "connect",
           "describe_failure"]

logger = logging.getLogger(__name__)

FAN_MANUAL = "manual"
# The client waits TIMEOUT_GAIN intervals for a sample before it gives up.
TIMEOUT_GAIN = 3.0
_LOST = (JtopException, EOFError, OSError)
# The client reads the module-global socket path when it is constructed: construct one at a time.
_PIPE_LOCK = threading.Lock()


class SourceUnavailable(RuntimeError):
    """No jtop client is connected (jtop.service down, wrong version, no permission...)."""


class SetterRefused(ValueError):
    """The client or the board refuses a setting; the message says what is allowed."""


def _forget_old_connections(socket_path: str) -> None:
    """Drop multiprocessing's per-thread connection cache for this socket.

    Proxies reuse a thread's cached connection to the same address; after jtop.service restarts that
    connection is dead, so a rebuilt client in the same thread would fail with a broken pipe forever.
    """
    cache = getattr(BaseProxy, "_address_to_local", None)
    if isinstance(cache, dict):
        cache.pop(socket_path, None)


def connect(socket_path: str, interval: float) -> Any:
    """A started jtop client on socket_path (raises what the client raises)."""
    with _PIPE_LOCK:
        _forget_old_connections(socket_path)
        jtop_service.JTOP_PIPE = socket_path
        client = jtop(interval=interval)
    client.start()
    return client


class JtopSource:
    """Keeps one jtop client connected, hands each sample over, and rebuilds the client when it fails."""

    def __init__(self, socket_path: str, interval: float,
                 on_sample: Callable[[Snapshot], None],
                 on_availability: Callable[[bool, str], None],
                 backoff_initial: float = 1.0, backoff_max: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._socket_path = socket_path
        self._interval = interval
        self._on_sample = on_sample
        self._on_availability = on_availability
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._fresh = threading.Event()
        self._direct = threading.Event()  # samples are handed over in the client's thread
        self._client: Any = None
        self._latest: Snapshot | None = None
        self._pending: Snapshot | None = None
        self._last_uptime: Any = None
        self._state: tuple[bool, str] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run the client in a background thread; a missing service only makes the source unavailable."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="jtop-source", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the client and wait for the thread."""
        self._stop.set()
        self._fresh.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None

    @property
    def available(self) -> bool:
        """Whether a client is connected and sampling."""
        with self._lock:
            return self._client is not None

    def latest(self) -> Snapshot | None:
        """The last snapshot read (kept while unavailable)."""
        with self._lock:
            return self._latest

    # --- setters (fire-and-forget: confirm in later samples) -----------------------------------

    def set_nvpmodel(self, mode_id: int, force: bool = False) -> None:
        """Ask for nvpmodel `mode_id`; refused for unknown ids and, without force, for another TPC mask."""
        nvp = self._client_or_raise().nvpmodel
        if nvp is None:
            raise SetterRefused("this board has no nvpmodel")
        models = list(nvp.models)
        status = list(nvp.status)
        if not force and 0 <= mode_id < len(status) and not status[mode_id]:
            allowed = ", ".join(f"{i}={name}" for i, name in enumerate(models) if i < len(status) and status[i])
            raise SetterRefused(f"nvpmodel {mode_id} ({models[mode_id]}) needs another TPC mask and a reboot; "
                                f"modes allowed now: {allowed}")
        self._call(nvp.set_nvpmodel_id, mode_id, force)

    def set_jetson_clocks(self, enabled: bool) -> None:
        """Start or stop jetson_clocks."""
        jc = self._client_or_raise().jetson_clocks
        if jc is None:
            raise SetterRefused("this board has no jetson_clocks")
        self._call(jc.set_enable, bool(enabled))

    def set_fan_profile(self, profile: str) -> None:
        """Set the first fan's profile (the client lists the allowed ones when it refuses)."""
        fan = self._client_or_raise().fan
        name = self._first_fan(fan)
        self._call(fan.set_profile, name, profile)

    def set_fan_speed(self, percent: float) -> None:
        """Set every channel of the first fan to `percent`, switching it to the `manual` profile first.

        A speed only holds under `manual` (otherwise nvfancontrol / temp_control overrides it), so when the
        fan offers `manual` and is in another profile we ask for `manual`, then for the speed.
        """
        if not 0.0 <= float(percent) <= 100.0:
            raise SetterRefused(f"fan speed {percent} is outside 0..100 %")
        fan = self._client_or_raise().fan
        name = self._first_fan(fan)
        if fan[name].get("profile") != FAN_MANUAL and FAN_MANUAL in fan.all_profiles(name):
            self._call(fan.set_profile, name, FAN_MANUAL)
        for index in range(len(fan[name]["speed"])):
            self._call(fan.set_speed, name, float(percent), index)

    # --- internals -----------------------------------------------------------------------------

    def _client_or_raise(self) -> Any:
        with self._lock:
            client = self._client
        if client is None:
            raise SourceUnavailable("jtop.service is not connected")
        return client

    @staticmethod
    def _first_fan(fan: Any) -> str:
        names = list(fan.keys())
        if not names:
            raise SetterRefused("this board has no fan")
        return str(names[0])

    @staticmethod
    def _call(setter: Callable[..., Any], *args: Any) -> None:
        try:
            setter(*args)
        except (JtopException, ValueError) as error:
            raise SetterRefused(" ".join(str(error).split())) from error
        except (EOFError, OSError) as error:
            raise SourceUnavailable(describe_failure(error)) from error

    def _announce(self, available: bool, reason: str, waiting: bool = False) -> None:
        """Tell the runtime, and log once per change: up, stopped and waiting at INFO, a lost service at ERROR."""
        if self._state == (available, reason):
            return
        self._state = (available, reason)
        retry = f"retrying every {self._backoff_initial:g} s to {self._backoff_max:g} s"
        if available:
            logger.info("jtop source up: %s", reason)
        elif self._stop.is_set():
            logger.info("jtop source stopped")
        elif waiting:
            where = "" if self._socket_path in reason else f" at {self._socket_path}"
            logger.info("waiting for jtop.service%s: %s; %s", where, reason, retry)
        else:
            logger.error("jtop source down: %s; %s", reason, retry)
        try:
            self._on_availability(available, reason)
        except Exception:
            logger.exception("on_availability callback failed")

    def _absent(self) -> str | None:
        """Why nothing serves the socket path yet (no file there), or None when there is a file to try."""
        if os.path.exists(self._socket_path):
            return None
        return f"no socket at {self._socket_path} (jtop.service not running, or its socket not mounted here)"

    def _run(self) -> None:
        delay = self._backoff_initial
        while not self._stop.is_set():
            absent = self._absent()
            try:
                if absent is not None:
                    raise SourceUnavailable(absent)
                client = connect(self._socket_path, self._interval)
            except Exception as error:  # the client raises many types; all mean "not now"
                reason = absent or describe_failure(error)
                self._announce(False, reason, waiting=absent is not None or "not active" in reason)
                self._stop.wait(delay)
                delay = min(delay * 2, self._backoff_max)
                continue
            delay = self._backoff_initial
            reason = self._serve(client)
            if not self._stop.is_set():
                self._announce(False, reason)
                self._stop.wait(delay)
        self._announce(False, "jtop source stopped")

    def _serve(self, client: Any) -> str:
        """Hand samples over until the client fails; returns why it stopped."""
        try:
            board = board_of(client)
            client.attach(lambda jetson: self._observe(jetson, board))
            with self._lock:
                self._client = client
            self._announce(True, f"jtop.service connected on {self._socket_path}")
            self._direct.set()
            while not self._stop.is_set():
                if not self._fresh.wait(max(1.0, client.interval * TIMEOUT_GAIN) + 1.0):
                    client.ok(spin=True)  # raises the reader thread's error, if any
                    return f"jtop.service unavailable: no sample for {client.interval * TIMEOUT_GAIN:.1f}s"
                self._fresh.clear()
                with self._lock:
                    snapshot, self._pending = self._pending, None
                if snapshot is not None:
                    self._deliver(snapshot)
            return "jtop source stopped"
        except Exception as error:
            if not isinstance(error, _LOST):
                logger.exception("unexpected jtop client error")
            return describe_failure(error)
        finally:
            self._direct.clear()
            with self._lock:
                self._client = None
            try:
                client.close()
            except Exception as error:  # closing a dead client may fail; it is dropped anyway
                logger.debug("closing jtop client: %s", error)

    def _observe(self, client: Any, board: dict[str, Any]) -> None:
        """Runs in the client's reader thread right after each sample: take it while it is consistent and, once
        the source is up, hand it over right there (its data is still in the CPU's caches; no second thread wakes
        for it). Before that, the serving loop hands it over after announcing the source."""
        snapshot = build_snapshot(client, board, self._clock())
        with self._lock:
            # The client calls observers after every wait, also when it timed out and re-read the old sample
            # (jtop.service stops sampling after 3 quiet intervals and only a new client restarts it): a sample
            # with the same uptime is not fresh, so the watchdog above rebuilds the client.
            if snapshot.get("uptime") == self._last_uptime:
                return
            self._last_uptime = snapshot.get("uptime")
            direct = self._direct.is_set() and not self._stop.is_set()
            if not direct:
                self._pending = snapshot
        if direct:
            self._deliver(snapshot)
        self._fresh.set()  # the watchdog: samples keep coming

    def _deliver(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._latest = snapshot
        try:
            self._on_sample(snapshot)
        except Exception:
            logger.exception("on_sample callback failed")


def client_version() -> str:
    """Version of the installed jetson-stats client."""
    from importlib import metadata

    try:
        return metadata.version("jetson-stats")
    except metadata.PackageNotFoundError:
        return "unknown"
