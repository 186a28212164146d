"""DMI pacing: at most one call per 1/rate seconds; state changes first, then the most overdue twin report."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

from mapper.devices.model import TwinValue
from mapper.devices.registry import RunningDevice

log = logging.getLogger(__name__)

STATE_REFRESH = 60.0  # seconds between unchanged state reports
REPORT_SHARE = 0.8  # twin reports get this share of the budget; states and registration use the rest


class Reporter(Protocol):
    """The EdgeCore side of the DMI (EdgeCoreClient implements it)."""

    def report_status(self, namespace: str, name: str, twins: Sequence[TwinValue],
                      report_to_cloud: bool, report_cycle_ms: int) -> bool: ...
    def report_state(self, namespace: str, name: str, state: str) -> bool: ...


class DmiPacer:
    """Chooses the single DMI call, if any, that the budget allows now."""

    def __init__(self, rate: float) -> None:
        self._spacing = 1.0 / rate
        self._rate = rate
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._report_due: dict[tuple[str, str], float] = {}
        self._states: dict[tuple[str, str], tuple[str, float]] = {}
        self.reports_ok: Counter[tuple[str, str]] = Counter()
        self.failures = 0

    def report_cycle(self, running: RunningDevice, device_count: int) -> float | None:
        """Seconds between twin reports of a device: its shortest reportCycle, floored by the budget."""
        cycles = [p.report_cycle for p in running.properties if p.report_to_cloud]
        if not cycles:
            return None
        return max(min(cycles), max(1, device_count) / (self._rate * REPORT_SHARE))

    def forget(self, key: tuple[str, str]) -> None:
        """A device was replaced or removed: report it afresh."""
        with self._lock:
            self._report_due.pop(key, None)
            self._states.pop(key, None)

    def reset(self) -> None:
        """EdgeCore handed over a new device list: everything is due."""
        with self._lock:
            self._report_due.clear()
            self._states.clear()

    def step(self, reporter: Reporter, devices: Sequence[RunningDevice], now: float, state: str,
             twins_of: Callable[[RunningDevice], list[TwinValue]]) -> None:
        """Send at most one call: a changed or stale state first, else the most overdue report."""
        with self._lock:
            if now < self._next_slot:
                return
        for running in devices:
            if self._state_due(running, state, now):
                self._send_state(reporter, running, state, now)
                return
        candidates: list[tuple[float, RunningDevice, float]] = []
        with self._lock:
            for running in devices:
                cycle = self.report_cycle(running, len(devices))
                if cycle is None:
                    continue
                due = self._report_due.setdefault(running.key, now)
                if due <= now:
                    candidates.append((due, running, cycle))
        if not candidates:
            return
        _, running, cycle = min(candidates, key=lambda c: c[0])
        twins = twins_of(running)
        with self._lock:
            self._report_due[running.key] = now + cycle
        if twins:
            self._send_report(reporter, running, twins, cycle, now)

    def next_step(self, devices: Sequence[RunningDevice], now: float, state: str) -> float:
        """When `step` can next send something: the earliest state or report due, but not before the next slot."""
        candidates: list[float] = []
        with self._lock:
            for running in devices:
                device = running.device
                if device.state_report_to_cloud:
                    last_state, last_time = self._states.get(device.key, ("", float("-inf")))
                    refresh = max(device.state_report_cycle_ms / 1000.0, STATE_REFRESH)
                    candidates.append(now if state != last_state else last_time + refresh)
                if self.report_cycle(running, len(devices)) is not None:
                    candidates.append(self._report_due.get(running.key, now))
            next_slot = self._next_slot
        return max(min(candidates, default=now + STATE_REFRESH), next_slot)

    def _state_due(self, running: RunningDevice, state: str, now: float) -> bool:
        device = running.device
        if not device.state_report_to_cloud:
            return False
        with self._lock:
            last_state, last_time = self._states.get(device.key, ("", float("-inf")))
        refresh = max(device.state_report_cycle_ms / 1000.0, STATE_REFRESH)
        return state != last_state or now - last_time >= refresh

    def _send_state(self, reporter: Reporter, running: RunningDevice, state: str, now: float) -> None:
        with self._lock:
            self._next_slot = now + self._spacing
            # Mark it sent either way: a refused state is retried at the refresh, not in a tight loop.
            self._states[running.key] = (state, now)
        if not reporter.report_state(running.device.namespace, running.device.name, state):
            self.failures += 1

    def _send_report(self, reporter: Reporter, running: RunningDevice, twins: list[TwinValue],
                     cycle: float, now: float) -> None:
        with self._lock:
            self._next_slot = now + self._spacing
        try:
            accepted = reporter.report_status(running.key[0], running.key[1], twins, True, int(cycle * 1000))
        except ValueError as exc:  # a twin EdgeCore would refuse: never send it, say why
            log.error("device %s/%s: report not sent: %s", *running.key, exc)
            accepted = False
        if accepted:
            self.reports_ok[running.key] += 1
        else:
            self.failures += 1
