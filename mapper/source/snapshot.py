"""Snapshots of a connected jetson-stats client, one per sample (duck-typed: this module never imports jtop)."""

from __future__ import annotations

import re
from typing import Any

Snapshot = dict[str, Any]
_MISMATCH = re.compile(r"Mismatch version jtop service: \[(?P<service>[^\]]*)\] and client: \[(?P<client>[^\]]*)\]")


def describe_failure(error: BaseException) -> str:
    """One line saying why jtop.service cannot be read, with the fix for a version mismatch."""
    text = " ".join(str(error).split()) or type(error).__name__
    match = _MISMATCH.search(text)
    if match:
        service, client = match["service"], match["client"]
        return (f"jtop.service runs jetson-stats {service} but the mapper's client is jetson-stats {client}: "
                f"install jetson-stats=={service} in the mapper (container images: rebuild with "
                f"--build-arg JETSON_STATS_VERSION={service})")
    return f"jtop.service unavailable: {text}"


_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """A deep copy made only of JSON types: tuples become lists, keys strings, anything else its str()
    (as a JSON round trip with default=str would do, in half the time)."""
    kind = type(value)
    if kind is dict:
        return {key if type(key) is str else str(key): _plain(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [_plain(item) for item in value]
    if kind in _SCALARS:
        return value
    if isinstance(value, dict):  # a dict subclass or proxy copy
        return _plain(dict(value))
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, str):  # str enum members: their value, as JSON writes them
        return str.__str__(value)
    if isinstance(value, int | float):  # int enum members and other subclasses
        return (int if isinstance(value, int) else float)(value)
    return str(value)


def board_of(client: Any) -> dict[str, Any]:
    """The client's board: hardware, and cpu when the service sends it (7.x)."""
    board = client.board
    plain: dict[str, Any] = {"hardware": _plain(board.get("hardware", {}))}
    if "cpu" in board:
        plain["cpu"] = _plain(board["cpu"])
    return plain


def nvpmodel_of(client: Any) -> dict[str, Any] | None:
    """Current mode, all modes, default and per-mode status; None on boards without nvpmodel."""
    nvp = client.nvpmodel
    if nvp is None:
        return None
    return {"name": nvp.name, "id": nvp.id, "models": list(nvp.models), "default": _plain(nvp.get_default()),
            "status": [bool(s) for s in nvp.status]}


def jetson_clocks_of(client: Any) -> dict[str, Any] | None:
    """jetson_clocks state; None on boards without it."""
    jc = client.jetson_clocks
    if jc is None:
        return None
    return {"enable": bool(jc), "status": jc.status, "boot": bool(jc.boot), "config": bool(jc.is_config())}


def build_snapshot(client: Any, board: dict[str, Any], now: float) -> Snapshot:
    """Everything the client knows (never `jetson.stats`).

    The sections are the client's own objects, not copies: the client unpickles a new object tree from the
    service for every sample and never changes one it handed out (tests/test_jtop_source.py checks this for both
    jetson-stats lines), and nothing in the mapper changes a snapshot. Copying them cost a third of the client
    thread's time.
    """
    fan = client.fan
    return {
        "time": now,
        "interval": client.interval,
        "uptime": client.uptime.total_seconds(),
        "board": board,
        "cpu": client.cpu,
        "gpu": dict(client.gpu.items()),
        "memory": dict(client.memory.items()),
        "fan": dict(fan.items()),
        "temperature": client.temperature,
        "power": client.power,
        "engine": client.engine,
        "processes": client.processes,
        "nvpmodel": nvpmodel_of(client),
        "jetson_clocks": jetson_clocks_of(client),
        "fan_profiles": {name: list(fan.all_profiles(name)) for name in fan},
    }
