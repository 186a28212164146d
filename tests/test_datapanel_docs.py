"""docs/datapanel.md stays true: its examples are what the sinks write, its config block parses, and it names
every config key, every checked field and the refusal of TDengine."""

from __future__ import annotations

import re
import time
from pathlib import Path

from mapper.sinks.db_mysql import create_statement
from mapper.sinks.db_redis import data_model
from mapper.sinks.db_tdengine import REFUSAL
from mapper.sinks.mqtt.format import property_payload
from mapper.sinks.panel_settings import _SINK_KEYS, _TOP_KEYS, parse_panel_settings

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "datapanel.md").read_text(encoding="utf-8")
SAMPLE = 1_767_225_600.25  # the doc's 2026-01-01 00:00:00.250 UTC


def test_examples_are_what_the_sinks_write() -> None:
    utc = time.strftime("%Y-%m-%d+%H%%3A%M%%3A%S", time.gmtime(SAMPLE))
    assert f"gpu_usage=42.5&time={utc}" in DOC
    payload = property_payload("default", "jetson-xavier", "gpu_usage", 42.5, "FLOAT", SAMPLE).decode()
    assert payload in DOC
    member = data_model("default", "jetson-xavier", "gpu_usage", "42.5", "float", 1767225600250).decode()
    assert f"ZADD jetson-xavier 1767225600250 '{member}'" in DOC
    assert create_statement("default/jetson-xavier/gpu_usage") + ";" in DOC
    assert "jetson,device=jetson-xavier gpu_usage=42.5 1767225600250" in DOC  # tests/test_datapanel_outputs.py
    assert REFUSAL.split(" (")[0] in DOC


def test_config_block_parses_and_every_key_is_documented() -> None:
    block = re.search(r"```yaml\n(datapanel:.*?)```", DOC, re.S)
    assert block is not None
    import yaml
    raw = yaml.safe_load(block.group(1))["datapanel"]
    for section in ("influxdb2", "redis", "mysql"):  # the files do not exist here
        raw[section] = {k: v for k, v in raw[section].items() if not k.endswith("_file")}
    _, problems = parse_panel_settings(raw, {})
    assert problems == []
    keys = set(_TOP_KEYS) | {key for keys in _SINK_KEYS.values() for key in keys}
    missing = sorted(key for key in keys if key not in block.group(1))
    assert not missing, missing


def test_every_field_of_the_crd_is_in_the_table() -> None:
    for name in ("hostName", "port", "requestPath", "timeout", "endpointURL", "influxdb2ClientConfig",
                 "influxdb2DataConfig", "measurement", "fieldKey", "redisClientConfig", "poolsize", "minIdleConns",
                 "mysqlClientConfig", "userName", "TDEngine"):
        assert name in DOC, name
