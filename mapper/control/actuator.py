"""What the controller and the writable readings need from the board (JtopSource implements it)."""

from __future__ import annotations

from typing import Protocol


class Actuator(Protocol):
    """What the controller needs from the board (JtopSource implements it)."""

    def set_nvpmodel(self, mode_id: int, force: bool = False) -> None: ...
    def set_jetson_clocks(self, enabled: bool) -> None: ...
    def set_fan_profile(self, profile: str) -> None: ...
    def set_fan_speed(self, percent: float) -> None:
        """Set the first fan's speed, switching it to the manual profile first when it is elsewhere."""
