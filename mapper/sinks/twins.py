"""The twins sink: device twins and states to EdgeCore over DMI, paced within EdgeCore's request budget."""

from __future__ import annotations

from collections.abc import Sequence

from mapper.dmi.pacing import DmiPacer, Reporter
from mapper.sinks.base import DeviceKey, RuntimeView, Sink, SinkStats


class TwinSink(Sink):
    """Sends the one DMI call the budget allows at each step; without a reporter (standalone) it sends nothing."""

    name = "dmi"

    def __init__(self, pacer: DmiPacer, reporter: Reporter | None, target: str) -> None:
        self.pacer = pacer
        self._reporter = reporter
        self._target = target

    def tick(self, now: float, view: RuntimeView) -> float | None:
        """Once samples flow: a changed or stale device state first, else the most overdue twin report; then
        when the budget and the devices allow the next call."""
        if self._reporter is None or not view.health.last_sample_mono:
            return None
        devices, state = view.devices(), view.state()
        self.pacer.step(self._reporter, devices, now, state, view.twins)
        return self.pacer.next_step(devices, now, state)

    def forget(self, key: DeviceKey) -> None:
        """Report a replaced or removed device afresh."""
        self.pacer.forget(key)

    def stats(self) -> Sequence[SinkStats]:
        """Reports EdgeCore accepted and calls that failed or were refused; no target in standalone mode."""
        if self._reporter is None:
            return []
        sent = sum(self.pacer.reports_ok.values())
        return [SinkStats(self._target, sent, self.pacer.failures, 0, 0, True)]
