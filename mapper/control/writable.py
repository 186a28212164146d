"""The writable readings: how a desired value is parsed, checked against the board, applied and confirmed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mapper.control.actuator import Actuator

FAN_SPEED_TOLERANCE = 2.0  # percent: pwm quantises (set 30, read 29.8)
MANUAL = "manual"


@dataclass(frozen=True)
class Desired:
    """A parsed desired value: twin text, typed value, and whether applying it needs a reboot."""

    text: str
    value: Any
    needs_reboot: bool = False


Parser = Callable[[str, "Mapping[str, Any] | None", bool], Desired]
Applier = Callable[[Actuator, Desired, "Mapping[str, Any]"], None]


@dataclass(frozen=True)
class WritableSpec:
    """One writable reading: its parser, its setter and its comparison."""

    reading: str
    parse: Parser
    apply: Applier


def _nvp(snapshot: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    nvp = (snapshot or {}).get("nvpmodel")
    return nvp if isinstance(nvp, Mapping) else None


def parse_nvpmodel(text: str, snapshot: Mapping[str, Any] | None, allow_reboot: bool) -> Desired:
    """A power mode by name or id; refuse unknown modes and, unless allowed, modes that need a reboot."""
    text = text.strip()
    if not text:
        raise ValueError("empty power mode")
    nvp = _nvp(snapshot)
    if nvp is None:
        if snapshot is not None:
            raise ValueError("this board has no nvpmodel")
        return Desired(text, text)
    models = [str(m) for m in nvp.get("models", [])]
    if text in models:
        mode_id = models.index(text)
    elif text.isdigit() and int(text) < len(models):
        mode_id = int(text)
    else:
        allowed = ", ".join(f"{i}:{m}" for i, m in enumerate(models))
        raise ValueError(f"unknown power mode {text!r}; this board has {allowed}")
    status = nvp.get("status") or []
    needs_reboot = mode_id < len(status) and status[mode_id] is False
    if needs_reboot and not allow_reboot:
        raise ValueError(
            f"power mode {models[mode_id]!r} uses another TPC mask and can only be set by rebooting the board; "
            "set control.allow_reboot: true in the mapper config to allow that"
        )
    return Desired(models[mode_id], models[mode_id], needs_reboot)


def apply_nvpmodel(actuator: Actuator, desired: Desired, snapshot: Mapping[str, Any]) -> None:
    """Ask jtop for the mode id of the desired mode name."""
    nvp = _nvp(snapshot)
    models = [str(m) for m in (nvp or {}).get("models", [])]
    if desired.value not in models:
        raise ValueError(f"unknown power mode {desired.value!r}; this board has {', '.join(models)}")
    actuator.set_nvpmodel(models.index(desired.value), force=desired.needs_reboot)


def parse_clocks(text: str, snapshot: Mapping[str, Any] | None, allow_reboot: bool) -> Desired:
    """jetson_clocks on or off, on a board that has jetson_clocks."""
    if snapshot is not None and snapshot.get("jetson_clocks") is None:
        raise ValueError("this board has no jetson_clocks")
    word = text.strip().lower()
    if word in ("true", "1", "on"):
        return Desired("true", True)
    if word in ("false", "0", "off"):
        return Desired("false", False)
    raise ValueError(f"{text!r} is not a boolean; use true or false")


def apply_clocks(actuator: Actuator, desired: Desired, snapshot: Mapping[str, Any]) -> None:
    """Switch jetson_clocks."""
    actuator.set_jetson_clocks(bool(desired.value))


def _fan_profiles(snapshot: Mapping[str, Any] | None) -> list[str] | None:
    profiles = (snapshot or {}).get("fan_profiles")
    if not isinstance(profiles, Mapping) or not profiles:
        return None
    first = next(iter(profiles.values()))
    return [str(p) for p in first] if isinstance(first, list) else None


def parse_fan_profile(text: str, snapshot: Mapping[str, Any] | None, allow_reboot: bool) -> Desired:
    """A fan profile the board has."""
    text = text.strip()
    profiles = _fan_profiles(snapshot)
    if snapshot is not None and profiles is None:
        raise ValueError("this board has no fan with profiles")
    if profiles is not None and text not in profiles:
        raise ValueError(f"unknown fan profile {text!r}; this board has {', '.join(profiles)}")
    if not text:
        raise ValueError("empty fan profile")
    return Desired(text, text)


def apply_fan_profile(actuator: Actuator, desired: Desired, snapshot: Mapping[str, Any]) -> None:
    """Select the fan profile."""
    actuator.set_fan_profile(str(desired.value))


def parse_fan_speed(text: str, snapshot: Mapping[str, Any] | None, allow_reboot: bool) -> Desired:
    """A fan speed in percent, 0 to 100, on a board that has a fan."""
    if snapshot is not None and not snapshot.get("fan"):
        raise ValueError("this board has no fan")
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a number; fan_speed is a percentage from 0 to 100") from None
    if not 0.0 <= value <= 100.0:
        raise ValueError(f"{value:g} is out of range; fan_speed is a percentage from 0 to 100")
    return Desired(f"{value:g}", value)


def apply_fan_speed(actuator: Actuator, desired: Desired, snapshot: Mapping[str, Any]) -> None:
    """Set the speed; the actuator switches the fan to the manual profile first (a speed only holds there)."""
    actuator.set_fan_speed(float(desired.value))


def same_value(desired: Desired, current: Any) -> bool:
    """Whether a reading shows the desired value."""
    if isinstance(desired.value, bool):
        return bool(current) is desired.value
    if isinstance(desired.value, float):
        try:
            return abs(float(current) - desired.value) <= FAN_SPEED_TOLERANCE
        except (TypeError, ValueError):
            return False
    return str(current) == str(desired.value)


WRITABLE: Mapping[str, WritableSpec] = {
    spec.reading: spec
    for spec in (
        WritableSpec("nvpmodel.name", parse_nvpmodel, apply_nvpmodel),
        WritableSpec("jetson_clocks", parse_clocks, apply_clocks),
        WritableSpec("fan.profile", parse_fan_profile, apply_fan_profile),
        WritableSpec("fan.speed", parse_fan_speed, apply_fan_speed),
    )
}
