"""Counts DMI calls in both directions by method and gRPC code, for /metrics."""

from __future__ import annotations

import threading
from collections import Counter


class CallCounter:
    """Outcomes of DMI calls the mapper made or answered; calls that never went on the wire are not counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[tuple[str, str]] = Counter()

    def observe(self, method: str, code: str) -> None:
        """One call outcome (code SKIPPED_* means nothing was sent)."""
        if code.startswith("SKIPPED"):
            return
        with self._lock:
            self._calls[(method, code)] += 1

    def counts(self) -> list[tuple[tuple[str, str], int]]:
        """(method, code) and count, sorted."""
        with self._lock:
            return sorted(self._calls.items())
