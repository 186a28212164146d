"""Standalone mode runs without gRPC unless `standalone.serve_dmi` asks for the DMI socket (for DMI tools)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from common import short_dir

from mapper.config import parse_config

REPO = Path(__file__).resolve().parents[1]
FILES = [str(REPO / "device-model" / "jetson-model.yaml"), str(REPO / "device-model" / "jetson-xavier.yaml")]
BUILD_APP = """if True:
    import sys, yaml
    from pathlib import Path
    from mapper.app import MapperApp
    from mapper.config import parse_config
    config = parse_config(yaml.safe_load(sys.argv[1]), Path("."), {})
    app = MapperApp(config)
    app.http.server_close()
    print("grpc" in sys.modules, app.server is not None)
"""


def built(config: dict[str, object]) -> str:
    """What a mapper process built from `config` loaded: "<grpc imported> <DMI server made>"."""
    return subprocess.run([sys.executable, "-c", BUILD_APP, yaml.safe_dump(config)], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_standalone_loads_no_grpc_and_serves_no_socket() -> None:
    with short_dir() as folder:
        plain = {"grpc_server": {"socket_path": str(folder / "jetson.sock")}, "common": {"http_port": 0},
                 "http": {"address": "127.0.0.1"}, "standalone": {"files": FILES}}
        assert built(plain) == "False False"
        assert built({**plain, "standalone": {"files": FILES, "serve_dmi": True}}) == "True True"
        assert built({k: v for k, v in plain.items() if k != "standalone"}) == "True True", "EdgeCore mode"


def test_serve_dmi_is_a_flag() -> None:
    config = parse_config({"standalone": {"files": FILES, "serve_dmi": True}}, REPO, {})
    assert config.standalone and config.standalone_dmi
    assert not parse_config({"standalone": {"files": FILES}}, REPO, {}).standalone_dmi
