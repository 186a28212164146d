"""The /metrics page: rendered once per sample in the sampling thread, so a scrape only copies bytes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from mapper.sinks.base import RuntimeView, Sink
from mapper.sinks.prometheus.encoder import encoder_for

EXPOSITION_MAX_AGE = 1.0  # seconds a rendered page is reused while no new sample arrived
PRERENDER_FOR = 300.0  # keep pre-rendering a format for this long after its last scrape
Encoder = Callable[[CollectorRegistry], bytes]


class Exposition:
    """The encoded page per content type, for the current sample; rendered again at most once a second."""

    def __init__(self, collector: Collector, sample_id: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(collector)
        self._sample_id = sample_id
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, float, bytes]] = {}
        self._wanted: dict[str, tuple[Encoder, float]] = {}
        self._encoders: dict[str, Encoder] = {}

    def page(self, accept: str) -> tuple[bytes, str]:
        """The page and its content type, text or OpenMetrics as the scraper's Accept header asks."""
        library_encoder, content_type = choose_encoder(accept)
        encoder = self._encoders.get(content_type)
        if encoder is None:
            encoder = self._encoders[content_type] = encoder_for(content_type) or library_encoder
        sample = self._sample_id()
        now = time.monotonic()
        with self._lock:
            self._wanted[content_type] = (encoder, now)
            cached = self._cache.get(content_type)
            if cached is not None and cached[0] == sample and now - cached[1] < EXPOSITION_MAX_AGE:
                return cached[2], content_type
        return self._render(encoder, content_type, sample, now), content_type

    def _render(self, encoder: Encoder, content_type: str, sample: float, now: float) -> bytes:
        body = encoder(self.registry)
        with self._lock:
            self._cache[content_type] = (sample, now, body)
        return body

    def prerender(self) -> None:
        """Render the page for a new sample, for the formats scraped lately."""
        now = time.monotonic()
        with self._lock:
            wanted = [(t, e) for t, (e, at) in self._wanted.items() if now - at < PRERENDER_FOR]
        for content_type, encoder in wanted:
            self._render(encoder, content_type, self._sample_id(), now)


class PrometheusSink(Sink):
    """Each new sample re-renders the page that scrapes are served from."""

    name = "prometheus"

    def __init__(self, exposition: Exposition) -> None:
        self.exposition = exposition

    def on_sample(self, view: RuntimeView) -> None:
        """Pre-render for the sample just taken."""
        self.exposition.prerender()
