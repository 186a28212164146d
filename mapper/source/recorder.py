"""`jetson-mapper record`: read raw samples and the init data of a real jtop.service as an emulator profile."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

from mapper.source.jtop import TIMEOUT_GAIN, SourceUnavailable, client_version, connect
from mapper.source.snapshot import board_of, describe_failure, nvpmodel_of


def record_profile(socket_path: str, samples: int, interval: float, name: str | None = None) -> dict[str, Any]:
    """Read `samples` raw samples and the init data from jtop.service, as a profile document.

    The init message is rebuilt from the client's public attributes (they carry all of it), so the
    recorder never competes with the client for the service's shared queue.
    """
    try:
        client = connect(socket_path, interval)
    except Exception as error:
        raise SourceUnavailable(describe_failure(error)) from error
    collected: list[dict[str, Any]] = []
    done = threading.Event()

    def keep(jetson: Any) -> None:
        if len(collected) < samples:
            collected.append(json.loads(jetson.json()))
        if len(collected) >= samples:
            done.set()

    try:
        board = board_of(client)
        client.attach(keep)
        if not done.wait(samples * max(interval, client.interval) * TIMEOUT_GAIN + 10.0):
            raise SourceUnavailable(f"jtop.service sent {len(collected)} of {samples} samples")
        init: dict[str, Any] = {
            "version": client_version(), "board": board, "interval": client.interval,
            "memory": client.memory.swap_path(), "fan": {n: list(client.fan.all_profiles(n)) for n in client.fan},
            "jc": client.jetson_clocks is not None,
        }
        nvp = nvpmodel_of(client)
        if nvp is not None:
            init["nvpmodel"] = {"models": nvp["models"], "default": nvp["default"]}
    finally:
        client.close()
    model = str(board["hardware"].get("Model", "jetson"))
    return {
        "format": "jetson-mapper-profile/1",
        "name": name or re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-"),
        "description": f"recorded from {model} (L4T {board['hardware'].get('L4T', '?')}) on "
                       f"{time.strftime('%Y-%m-%d')}",
        "jetson_stats": client_version(),
        "init": init,
        "samples": collected[:samples],
    }
