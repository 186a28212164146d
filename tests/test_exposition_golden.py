"""The /metrics page of a fixed sample is byte-identical to the recorded one (refactors must not change it).

The bundled Device twice (without desired values) on one built AGX Orin sample, one copy without MQTT pushes
and one pushing to an unusable MQTT address (so the MQTT series appear without a broker and without timing),
one runtime tick and one more sample, the whole page as the HTTP server renders it.
Regenerate after an intended change of the exposition: `python tests/test_exposition_golden.py --write`.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mapper.app import MapperApp

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO / "tests" / "fixtures" / "jtop" / "agx-orin_jp5_built.json"
GOLDEN = REPO / "tests" / "fixtures" / "exposition" / "agx-orin-two-devices.prom"
SAMPLE_TIME = 1_767_225_600.25  # 2026-01-01T00:00:00.25Z
BAD_BROKER = "tcp://127.0.0.1:99999"


@contextmanager
def render_app(snapshot: dict[str, Any]) -> Iterator[MapperApp]:
    """A standalone mapper with both devices, after one sample of `snapshot`, one tick and one more sample."""
    from mapper.app import MapperApp
    from mapper.config import CommonConfig, HttpConfig, MapperConfig, SourceConfig
    from mapper.dmi.convert import device_from_pb, model_from_pb
    from mapper.dmi.manifests import load_manifests

    with tempfile.TemporaryDirectory(prefix="jm", dir="/tmp") as workdir:
        config = MapperConfig(
            socket_path=f"{workdir}/jetson.sock",
            common=replace(CommonConfig(), http_port=0),
            source=SourceConfig(jtop_socket=f"{workdir}/absent.sock", interval=1.0),
            http=HttpConfig(address="127.0.0.1"),
            standalone_files=(REPO / "device-model" / "jetson-model.yaml",
                              REPO / "device-model" / "jetson-xavier.yaml"),
            node_name="golden-node",
        )
        app = MapperApp(config)
        try:
            models, devices = load_manifests(list(config.standalone_files))
            app.runtime.upsert_model(model_from_pb(models[0]))
            device = device_from_pb(devices[0])
            quiet = tuple(replace(p, desired=None, mqtt=None) for p in device.properties)
            unusable = tuple(replace(p, desired=None, mqtt=replace(p.mqtt, address=BAD_BROKER) if p.mqtt else None)
                             for p in device.properties)
            app.runtime.upsert_device(replace(device, properties=quiet))
            app.runtime.upsert_device(replace(device, name="second", properties=unusable))
            app.runtime.on_availability(True, "golden sample")
            deliver = app.source._on_sample  # what jtop.service's samples go through in the running mapper
            deliver({**snapshot, "time": SAMPLE_TIME})
            app.runtime.tick()
            deliver({**snapshot, "time": SAMPLE_TIME + 1.0})  # health sees the tick's outcome
            yield app
        finally:
            app.sinks.close()
            app.http.server_close()


def render_page() -> bytes:
    """The page the HTTP server serves to a scraper that asks for no particular format (text 0.0.4)."""
    with render_app(json.loads(SNAPSHOT.read_text(encoding="utf-8"))) as app:
        return app.http.exposition.page("")[0]


def test_exposition_is_byte_identical_to_the_recorded_page() -> None:
    page = render_page()
    expected = GOLDEN.read_bytes()
    assert page == expected, (
        "the /metrics page changed; if intended, regenerate with `python tests/test_exposition_golden.py --write`\n"
        + "\n".join(sorted(set(page.decode().splitlines()) ^ set(expected.decode().splitlines())))
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_exposition_golden.py --write")
    sys.path.insert(0, str(REPO))
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_bytes(render_page())
    print(f"wrote {GOLDEN.relative_to(REPO)}")
