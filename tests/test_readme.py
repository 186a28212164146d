"""The README's configuration example is a valid config, and every page it links exists."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from mapper.config import CommonConfig, DmiConfig, SourceConfig, parse_config
from mapper.pods.settings import PodSettings

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_configuration_example_is_valid_and_shows_the_defaults() -> None:
    """Users copy this block: it must parse, and the values it shows must be the real defaults."""
    block = re.search(r"## Configuration.*?```yaml\n(.*?)```", README, re.S)
    assert block is not None
    raw = yaml.safe_load(block.group(1))
    config = parse_config(raw, REPO / "scripts", env={})  # files are relative to the config's folder
    assert config.common == CommonConfig()
    assert config.source == SourceConfig()
    assert config.dmi == DmiConfig()
    assert config.pods == PodSettings()
    assert config.standalone and all(p.is_file() for p in config.standalone_files)


def test_linked_pages_exist() -> None:
    """Every relative link of the README points at a file of the repo."""
    links = re.findall(r"\]\(((?!https?:)[^)#]+)\)", README)
    assert links
    missing = [link for link in links if not (REPO / link).exists()]
    assert not missing, missing


def test_quick_start_commands_exist() -> None:
    """The two quick-start commands are executable scripts of the repo."""
    for script in ("scripts/demo.sh", "scripts/test.sh"):
        assert f"./{script}" in README
        assert (REPO / script).stat().st_mode & 0o111
