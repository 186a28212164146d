"""Profile files: the jtop.service wire data (init message + raw samples) of one board."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

PROFILE_FORMAT = "jetson-mapper-profile/1"
_REQUIRED_INIT_KEYS = ("board", "memory", "fan", "jc")


class ProfileError(ValueError):
    """A profile that cannot be loaded; the message says why."""


@dataclass(frozen=True)
class Profile:
    """One board's wire data, as the emulator replays it."""

    name: str
    description: str
    jetson_stats: str
    init: dict[str, Any]
    samples: list[dict[str, Any]]
    variation: dict[str, Any] = field(default_factory=dict)
    nvpmodel_masks: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The profile as the JSON document stored on disk."""
        document: dict[str, Any] = {
            "format": PROFILE_FORMAT,
            "name": self.name,
            "description": self.description,
            "jetson_stats": self.jetson_stats,
            "init": self.init,
            "samples": self.samples,
        }
        if self.nvpmodel_masks:
            document["nvpmodel_masks"] = self.nvpmodel_masks
        if self.variation:
            document["variation"] = self.variation
        return document


def builtin_profile_names() -> list[str]:
    """Names of the profiles shipped inside the package."""
    folder = resources.files("mapper.emulator") / "profiles"
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def resolve_profile_path(name_or_file: str | Path) -> Path:
    """A built-in profile name or a file path, as a readable path."""
    candidate = Path(name_or_file)
    if candidate.suffix == ".json" or candidate.exists():
        if not candidate.is_file():
            raise ProfileError(f"profile file {candidate} does not exist")
        return candidate
    builtin = Path(str(resources.files("mapper.emulator") / "profiles" / f"{name_or_file}.json"))
    if not builtin.is_file():
        known = ", ".join(builtin_profile_names())
        raise ProfileError(f"unknown profile {name_or_file!r}: use a file path or one of {known}")
    return builtin


def load_profile(name_or_file: str | Path) -> Profile:
    """Load and check a profile; ProfileError lists every problem found."""
    path = resolve_profile_path(name_or_file)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ProfileError(f"cannot read profile {path}: {error}") from error
    return profile_from_json(document, source=str(path))


def profile_from_json(document: Any, source: str = "profile") -> Profile:
    """Build a Profile from its JSON document, checking the shape."""
    problems = _problems(document)
    if problems:
        raise ProfileError(f"{source}: " + "; ".join(problems))
    return Profile(
        name=str(document.get("name", "")),
        description=str(document.get("description", "")),
        jetson_stats=str(document.get("jetson_stats", "")),
        init=document["init"],
        samples=document["samples"],
        variation=dict(document.get("variation") or {}),
        nvpmodel_masks=[str(mask) for mask in document.get("nvpmodel_masks") or []],
    )


def save_profile(profile: Profile, path: str | Path) -> None:
    """Write a profile as indented JSON."""
    Path(path).write_text(json.dumps(profile.to_json(), indent=1) + "\n", encoding="utf-8")


def _problems(document: Any) -> list[str]:
    """Every shape problem of a profile document."""
    if not isinstance(document, dict):
        return ["the document is not a JSON object"]
    problems = []
    if document.get("format") != PROFILE_FORMAT:
        problems.append(f"format must be {PROFILE_FORMAT!r}, got {document.get('format')!r}")
    init = document.get("init")
    if not isinstance(init, dict):
        problems.append("init must be an object (the service's init message)")
    else:
        problems += [f"init lacks {key!r}" for key in _REQUIRED_INIT_KEYS if key not in init]
        if "hardware" not in (init.get("board") or {}):
            problems.append("init.board lacks 'hardware'")
    samples = document.get("samples")
    if not isinstance(samples, list) or not samples:
        problems.append("samples must be a non-empty list of raw service samples")
    else:
        for index, sample in enumerate(samples):
            missing = [k for k in ("uptime", "cpu", "gpu", "mem", "fan") if k not in sample]
            if missing:
                problems.append(f"samples[{index}] lacks {', '.join(missing)}")
    masks = document.get("nvpmodel_masks")
    models = (init or {}).get("nvpmodel", {}).get("models", []) if isinstance(init, dict) else []
    if masks and len(masks) != len(models):
        problems.append(f"nvpmodel_masks has {len(masks)} entries for {len(models)} nvpmodel modes")
    return problems
