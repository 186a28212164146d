"""Controller paths a real board cannot be made to show on demand, driven with an in-test board stand-in.

The stand-in (`Board`) is the only fake: it records setter calls and changes its readings only when told to,
so a setter the board never confirms, a refusal, or a lost connection can be produced deterministically.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest
from mapper_process import DEVICE_MODEL

from mapper.config import ControlConfig
from mapper.control.controller import Controller
from mapper.devices.model import Device
from mapper.devices.registry import RunningDevice, bind_device
from mapper.dmi.convert import device_from_pb, model_from_pb
from mapper.dmi.manifests import load_manifests

MODES = ["MODE_15W_2CORE", "MODE_15W_4CORE", "MODE_15W_6CORE", "MODE_10W_2CORE", "MODE_10W_4CORE",
         "MODE_10W_DESKTOP", "MODE_20W_2CORE", "MODE_20W_4CORE", "MODE_20W_6CORE"]


class Board:
    """A board stand-in: obeys setters only while `obeys` is set, refuses when `refuse` is set."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.obeys = True
        self.refuse: str | None = None
        self.unavailable = False
        self.mode, self.clocks, self.profile, self.speed = 8, False, "quiet", 31.0
        self.status = [True] * len(MODES)

    def _setter(self, name: str, value: Any) -> bool:
        if self.unavailable:
            raise RuntimeError("jtop.service is not connected")
        if self.refuse:
            raise ValueError(self.refuse)
        self.calls.append((name, value))
        return self.obeys

    def set_nvpmodel(self, mode_id: int, force: bool = False) -> None:
        """Switch mode."""
        if self._setter("nvpmodel", (mode_id, force)):
            self.mode = mode_id

    def set_jetson_clocks(self, enabled: bool) -> None:
        """Switch jetson_clocks."""
        if self._setter("jetson_clocks", enabled):
            self.clocks = enabled

    def set_fan_profile(self, profile: str) -> None:
        """Switch the fan profile."""
        if self._setter("fan_profile", profile):
            self.profile = profile

    def set_fan_speed(self, percent: float) -> None:
        """Switch to manual and set the speed, as JtopSource does."""
        if self._setter("fan_speed", percent):
            self.profile, self.speed = "manual", percent

    def snapshot(self) -> dict[str, Any]:
        """What JtopSource would hand over."""
        return {
            "nvpmodel": {"name": MODES[self.mode], "id": self.mode, "models": MODES, "status": self.status},
            "jetson_clocks": {"enable": self.clocks, "status": "inactive", "boot": False, "config": True},
            "fan": {"pwmfan": {"profile": self.profile, "speed": [self.speed]}},
            "fan_profiles": {"pwmfan": ["quiet", "cool", "manual"]},
        }

    def readings(self) -> dict[str, Any]:
        """The writable readings."""
        return {"nvpmodel.name": MODES[self.mode], "jetson_clocks": self.clocks, "fan.profile": self.profile,
                "fan.speed": self.speed}


class Clock:
    """A hand-driven monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def running(**desired: str | None) -> RunningDevice:
    """The bundled Xavier NX device with the given desired values (None drops one)."""
    models, devices = load_manifests([DEVICE_MODEL / "jetson-model.yaml", DEVICE_MODEL / "jetson-xavier.yaml"])
    device: Device = device_from_pb(devices[0])
    props = tuple(dataclasses.replace(p, desired=desired[p.name]) if p.name in desired else p
                  for p in device.properties)
    return bind_device(dataclasses.replace(device, properties=props), model_from_pb(models[0]), "jetson")


def make(board: Board, clock: Clock, **settings: Any) -> Controller:
    """A controller on the stand-in with a short confirm timeout."""
    config = ControlConfig(**{"confirm_timeout": 2.0, "max_attempts": 3, **settings})
    return Controller(board, config, clock=clock)


def sample(controller: Controller, board: Board, clock: Clock, seconds: float = 1.0) -> None:
    """One sample, `seconds` after the previous one."""
    clock.now += seconds
    controller.on_sample(board.snapshot(), board.readings())


def state_of(controller: Controller, prop: str) -> tuple[str, int, int]:
    """(state, drift count, failures) of one target."""
    status = next(s for s in controller.statuses() if s.prop == prop)
    return status.state, status.drift_count, status.failures


def test_setter_never_confirmed_gives_up_after_bounded_retries(caplog: pytest.LogCaptureFixture) -> None:
    """A board that takes the setter but never shows the value: max_attempts setters, then failed + a log line."""
    board, clock = Board(), Clock()
    board.obeys = False
    controller = make(board, clock)
    sample(controller, board, clock)
    controller.set_targets(running(jetson_clocks="true"))
    with caplog.at_level(logging.INFO, logger="mapper.control"):
        for _ in range(30):
            sample(controller, board, clock)
    assert board.calls == [("jetson_clocks", True)] * 3
    assert state_of(controller, "jetson_clocks") == ("failed", 0, 1)
    assert "gave up setting jetson_clocks to true after 3 attempts; the board still reports False" in caplog.text
    assert controller.observed_desired(("default", "jetson-xavier"), "jetson_clocks") == "true"


def test_failed_target_gets_one_more_round_when_the_value_is_handed_over_again() -> None:
    """UpdateDevice / re-registration with the same desired value retries a target the mapper gave up on."""
    board, clock = Board(), Clock()
    board.obeys = False
    controller = make(board, clock, max_attempts=1)
    sample(controller, board, clock)
    controller.set_targets(running(jetson_clocks="true"))
    for _ in range(5):
        sample(controller, board, clock)
    assert state_of(controller, "jetson_clocks")[0] == "failed"
    board.obeys = True
    controller.set_targets(running(jetson_clocks="true"))
    sample(controller, board, clock)
    sample(controller, board, clock)
    assert state_of(controller, "jetson_clocks") == ("converged", 0, 1)
    assert len(board.calls) == 2


def test_board_refusal_fails_at_once_and_lost_source_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    """A refusal (ValueError) is final and counted; an unavailable source (RuntimeError) costs no attempt."""
    board, clock = Board(), Clock()
    controller = make(board, clock, max_attempts=1)
    sample(controller, board, clock)
    board.unavailable = True
    controller.set_targets(running(fan_profile="cool"))
    for _ in range(5):
        sample(controller, board, clock, seconds=5.0)
    assert state_of(controller, "fan_profile") == ("pending", 0, 0)
    board.unavailable = False
    sample(controller, board, clock)
    sample(controller, board, clock)
    assert state_of(controller, "fan_profile")[0] == "converged"

    board.refuse = "Profile \"turbo\" does not exist"
    controller.set_targets(running(fan_profile="quiet"))
    with caplog.at_level(logging.ERROR, logger="mapper.control"):
        sample(controller, board, clock)
    assert state_of(controller, "fan_profile") == ("failed", 0, 1)
    assert "board refused fan_profile=quiet" in caplog.text


def test_drift_is_counted_and_reapplied_only_when_configured() -> None:
    """Leaving a reached value counts one drift; reapply_on_drift decides whether a setter follows."""
    for reapply in (False, True):
        board, clock = Board(), Clock()
        controller = make(board, clock, reapply_on_drift=reapply)
        sample(controller, board, clock)
        controller.set_targets(running(fan_profile="quiet"))
        sample(controller, board, clock)
        assert state_of(controller, "fan_profile") == ("converged", 0, 0)
        assert board.calls == []  # already there: no setter
        board.profile = "cool"  # changed by hand
        for _ in range(5):
            sample(controller, board, clock, seconds=3.0)
        if reapply:
            assert board.calls == [("fan_profile", "quiet")]
            assert state_of(controller, "fan_profile") == ("converged", 1, 0)
        else:
            assert board.calls == []
            assert state_of(controller, "fan_profile") == ("drifted", 1, 0)
            board.profile = "quiet"  # back by hand: converged again, no new drift
            sample(controller, board, clock)
            assert state_of(controller, "fan_profile") == ("converged", 1, 0)


def test_mode_id_accepted_before_the_first_sample_is_resolved_against_the_board() -> None:
    """A Device registered before any sample may name a mode by id; the first sample turns it into the name."""
    board, clock = Board(), Clock()
    controller = make(board, clock)
    controller.set_targets(running(nvpmodel="4"))
    sample(controller, board, clock)
    assert board.calls == [("nvpmodel", (4, False))]
    assert controller.observed_desired(("default", "jetson-xavier"), "nvpmodel") == "MODE_10W_4CORE"
    sample(controller, board, clock)
    assert state_of(controller, "nvpmodel") == ("converged", 0, 0)


def test_value_accepted_blind_but_impossible_on_the_board_fails_with_a_reason(
        caplog: pytest.LogCaptureFixture) -> None:
    """An unknown mode accepted before the first sample fails at that sample, without any setter."""
    board, clock = Board(), Clock()
    controller = make(board, clock)
    controller.set_targets(running(nvpmodel="MAXN"))
    with caplog.at_level(logging.ERROR, logger="mapper.control"):
        sample(controller, board, clock)
    assert board.calls == []
    assert state_of(controller, "nvpmodel") == ("failed", 0, 1)
    assert "unknown power mode 'MAXN'" in caplog.text


def test_validate_lists_every_problem_with_what_is_allowed() -> None:
    """validate() names each bad desired value and the allowed ones; ReadOnly desired values are not checked."""
    board, clock = Board(), Clock()
    board.status[0] = False
    controller = make(board, clock)
    sample(controller, board, clock)
    problems = controller.validate(running(nvpmodel="TURBO", jetson_clocks="maybe", fan_profile="cool",
                                           fan_speed="150", gpu_usage="5"))
    text = "\n".join(problems)
    assert "nvpmodel: unknown power mode 'TURBO'; this board has 0:MODE_15W_2CORE" in text
    assert "jetson_clocks: 'maybe' is not a boolean; use true or false" in text
    assert "fan_speed: 150 is out of range; fan_speed is a percentage from 0 to 100" in text
    assert "fan_speed needs fan_profile 'manual' (desired fan_profile is 'cool')" in text
    assert "gpu_usage" not in text
    assert "allow_reboot" in "\n".join(controller.validate(running(nvpmodel="MODE_15W_2CORE")))
    assert controller.validate(running(nvpmodel="MODE_15W_2CORE", fan_profile="manual", fan_speed="60")) != []
    assert controller.validate(running(nvpmodel="MODE_10W_4CORE", fan_profile="manual", fan_speed="60")) == []


def test_boards_without_the_feature_refuse_the_desired_value() -> None:
    """No jetson_clocks, no fan: a desired value for them is refused with the reason."""
    board, clock = Board(), Clock()
    controller = make(board, clock)
    snapshot = {**board.snapshot(), "jetson_clocks": None, "fan": {}, "fan_profiles": {}}
    controller.on_sample(snapshot, board.readings())
    text = "\n".join(controller.validate(running(jetson_clocks="true", fan_speed="40", fan_profile=None)))
    assert "jetson_clocks: this board has no jetson_clocks" in text
    assert "fan_speed: this board has no fan" in text


def test_rest_write_of_fan_speed_respects_a_desired_automatic_profile() -> None:
    """A one-off fan_speed write is refused while the Device wants an automatic fan profile."""
    board, clock = Board(), Clock()
    controller = make(board, clock)
    sample(controller, board, clock)
    device = running(fan_profile="quiet")
    controller.set_targets(device)
    with pytest.raises(ValueError, match="fan_speed needs fan_profile 'manual'"):
        controller.write(device, "fan_speed", "50")
    with pytest.raises(ValueError, match="not writable"):
        controller.write(device, "gpu_usage", "50")
    controller.write(device, "jetson_clocks", "on")
    sample(controller, board, clock)
    assert board.calls == [("jetson_clocks", True)]


def test_mode_found_to_need_a_reboot_on_retry_is_refused_or_forced_as_configured(
        caplog: pytest.LogCaptureFixture) -> None:
    """jetson-stats 4.x shows every mode reachable until one is refused: the retry explains or forces it."""
    for allow_reboot in (False, True):
        board, clock = Board(), Clock()
        board.obeys = False
        controller = make(board, clock, allow_reboot=allow_reboot)
        sample(controller, board, clock)
        controller.set_targets(running(nvpmodel="MODE_15W_2CORE"))
        sample(controller, board, clock)
        board.status[0] = False  # the service refused: another TPC mask
        board.obeys = True
        with caplog.at_level(logging.ERROR, logger="mapper.control"):
            sample(controller, board, clock, seconds=3.0)
            sample(controller, board, clock)
        if allow_reboot:
            assert board.calls == [("nvpmodel", (0, False)), ("nvpmodel", (0, True))]
            assert state_of(controller, "nvpmodel") == ("converged", 0, 0)
        else:
            assert board.calls == [("nvpmodel", (0, False))]
            assert state_of(controller, "nvpmodel") == ("failed", 0, 1)
            assert "set control.allow_reboot: true" in caplog.text
