"""Snapshots are copied into plain JSON types exactly as a JSON round trip would copy them."""

from __future__ import annotations

import enum
import json
from collections import OrderedDict
from datetime import timedelta
from typing import Any

from mapper.source.snapshot import _plain


class Mode(enum.IntEnum):
    """An int enum, as some clients hand out."""

    FAST = 3


class Name(str, enum.Enum):
    """A str enum."""

    A = "alpha"


def test_plain_copy_equals_a_json_round_trip() -> None:
    value: Any = {
        "cpu": [{"freq": {"cur": 1_190_400, "min": 115_200}, "online": True, "idle": 97.5}, (1, 2.5, None)],
        3: "int key", "nan": float("nan"), "inf": float("inf"), "mode": Mode.FAST, "name": Name.A,
        "uptime": timedelta(seconds=61.5), "ordered": OrderedDict(b=1, a=(True, "x")), "nested": [[[]], {}],
    }
    copied = _plain(value)
    expected = json.loads(json.dumps(value, default=str))
    assert json.dumps(copied, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert type(copied["mode"]) is int and type(copied["name"]) is str and copied["ordered"]["a"] == [True, "x"]
    assert copied["cpu"][0] is not value["cpu"][0], "a copy, not the client's objects"
