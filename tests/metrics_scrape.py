"""Run `jetson-mapper demo` on an emulator profile, scrape its /metrics and read the exposition as families."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common import free_port, stop_process, wait_until
from deploy_support import tool
from prometheus_client.parser import text_string_to_metric_families

SENTINEL = -256.0  # jtop's value for an offline thermal zone: must never be exposed


@dataclass
class FamilyShape:
    """What a scrape shows of one metric family: its exposition name, type, label names and sample count."""

    name: str
    type: str
    labels: set[str] = field(default_factory=set)
    samples: int = 0


def scrape(base_url: str, timeout: float = 5.0) -> str:
    """The text exposition of /metrics."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=timeout) as response:
        body: bytes = response.read()
        return body.decode()


def families(text: str) -> dict[str, FamilyShape]:
    """Families by exposition name (counters with their `_total`), as prometheus_client's parser reads them."""
    shapes: dict[str, FamilyShape] = {}
    for family in text_string_to_metric_families(text):
        name = f"{family.name}_total" if family.type == "counter" else family.name
        shape = shapes.setdefault(name, FamilyShape(name, family.type))
        for sample in family.samples:
            shape.labels.update(sample.labels)
            shape.samples += 1
    return shapes


def sample_values(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of an exposition as (name, labels, value)."""
    return [(s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text) for s in family.samples]


def promtool_check_metrics(text: str) -> str:
    """Run `promtool check metrics` on an exposition; raise with promtool's findings when it complains."""
    done = subprocess.run([tool("promtool"), "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60, check=False)
    if done.returncode != 0 or done.stdout.strip() or done.stderr.strip():
        raise AssertionError(f"promtool check metrics ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


@contextmanager
def demo(profile: str) -> Iterator[str]:
    """`python -m mapper demo --profile P` on a free port; yields its base URL once a board sample is exposed."""
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="jm", dir="/tmp")) / "demo.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mapper", "demo", "--profile", profile, "--http-port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    base = f"http://127.0.0.1:{port}"

    def exposes_a_sample() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"demo exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            text = scrape(base, timeout=2)
        except OSError:
            return False
        return "\njetson_uptime_seconds{" in text and "\njetson_power_mode{" in text

    try:
        wait_until(exposes_a_sample, timeout=60, interval=0.2)
        yield base
    finally:
        stop_process(process, timeout=20)
        log.unlink(missing_ok=True)
        log.parent.rmdir()

