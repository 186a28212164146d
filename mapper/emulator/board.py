"""The emulated board: replays a profile's samples, varies them, and obeys setter messages."""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any

from mapper.emulator import synth
from mapper.emulator.profile import Profile

logger = logging.getLogger(__name__)

Sample = dict[str, Any]
FAN_MANUAL = "manual"
DEFAULT_SWAP_PATH = "/swapfile"


class EmulatedBoard:
    """Board state changed by control messages; `sample(index, t)` is a pure function of index, t and state."""

    def __init__(self, profile: Profile, service_version: str) -> None:
        self.profile = profile
        self.service_version = service_version
        self._lock = threading.Lock()
        self._knobs = synth.Variation(profile.variation) if profile.variation else None
        first = profile.samples[0]
        nvp = first.get("nvp") or {}
        self._nvp_id: int | None = nvp.get("model", {}).get("id")
        self._nvp_changed = False
        self._masks = self._initial_masks(nvp.get("status", []))
        self._nvp_status = self._status_for(self._nvp_id)
        if not self.profile.nvpmodel_masks and nvp.get("status"):
            self._nvp_status = list(nvp["status"])
        jc = first.get("jc") or {}
        self._jc = {"enable": bool(jc.get("enable")), "config": bool(jc.get("config", True)),
                    "boot": bool(jc.get("boot"))}
        self._jc_changed = False
        self._fan_profile: dict[str, str] = {}
        self._fan_pwm: dict[str, list[int]] = {}
        self._last_pwm: dict[str, list[int]] = {}
        self._fan_extras = self._recorded_fan_extras()
        first_uptime = float(profile.samples[0]["uptime"])
        self._span = float(profile.samples[-1]["uptime"]) - first_uptime + float(
            profile.init.get("interval", 1.0))

    def init_message(self, interval: float) -> dict[str, Any]:
        """The service's answer to a client's {'interval': s}."""
        init = copy.deepcopy(self.profile.init)
        init["version"] = self.service_version
        init["interval"] = interval
        init.setdefault("memory", DEFAULT_SWAP_PATH)
        if not self.profile.init.get("nvpmodel"):
            init.pop("nvpmodel", None)
        return init

    def sample(self, index: int, t: float) -> Sample:
        """Raw sample number `index`, taken `t` emulated seconds after the emulator started."""
        samples = self.profile.samples
        base = samples[index % len(samples)]
        out = copy.deepcopy(base)
        cycle = index // len(samples)
        if self._knobs is None:
            out["uptime"] = round(float(base["uptime"]) + cycle * self._span, 2)
        else:
            out["uptime"] = round(float(samples[0]["uptime"]) + t, 2)
        with self._lock:
            self._apply_mode(out)
            if self._knobs is not None:
                self._vary(out, base, t)
            self._apply_fan(out, base)
            self._apply_controls(out)
            if self._knobs is not None or self._nvp_changed:
                _cpu_total(out)
        return out

    def apply(self, control: dict[str, Any]) -> None:
        """Obey one control message like jtop.service does (refusals are logged, as the service does)."""
        with self._lock:
            if "nvp" in control:
                self._set_nvpmodel(int(control["nvp"]["id"]), bool(control["nvp"].get("force")))
            if "jc" in control:
                self._set_jetson_clocks(control["jc"])
            if "fan" in control:
                self._set_fan(control["fan"])
        for ignored in ("swap", "clear_cache", "gpu", "config"):
            if ignored in control:
                logger.info("control %r is not emulated: ignored %s", ignored, control[ignored])

    # --- setters -------------------------------------------------------------------------------

    def _set_nvpmodel(self, mode_id: int, force: bool) -> None:
        models = (self.profile.init.get("nvpmodel") or {}).get("models", [])
        if self._nvp_id is None or not 0 <= mode_id < len(models):
            logger.error("nvpmodel id %s does not exist on this board", mode_id)
            return
        if self._masks[mode_id] != self._masks[self._nvp_id] and not force:
            logger.error("The new nvpmodel %s has a different mask %s, is not compatible",
                         mode_id, self._masks[mode_id])
            if self._major() < 7:
                self._nvp_status[mode_id] = False
            return
        if force and self._masks[mode_id] != self._masks[self._nvp_id]:
            logger.warning("Force set nvpmodel %s: a real board reboots now", mode_id)
            self._nvp_status = self._status_for(mode_id)
        self._nvp_id = mode_id
        self._nvp_status[mode_id] = True
        self._nvp_changed = True
        logger.info("NVPmodel started ID %s (%s)", mode_id, models[mode_id])

    def _set_jetson_clocks(self, jc: dict[str, Any]) -> None:
        if "enable" in jc:
            if not jc["enable"] and not self._jc["config"]:
                logger.error("jetson_clocks has no stored configuration: cannot restore")
            else:
                self._jc["enable"] = bool(jc["enable"])
                self._jc["config"] = True
                logger.info("jetson_clocks %s", "started" if jc["enable"] else "stopped")
        if "boot" in jc:
            self._jc["boot"] = bool(jc["boot"])
        if jc.get("clear"):
            self._jc["config"] = False
        self._jc_changed = True

    def _set_fan(self, fan: dict[str, Any]) -> None:
        name = str(fan.get("name"))
        profiles = self.profile.init.get("fan", {})
        if name not in profiles:
            logger.error("Fan \"%s\" does not exist", name)
            return
        if fan.get("command") == "profile":
            if fan.get("profile") not in profiles[name]:
                logger.error("Profile %s doesn't exist", fan.get("profile"))
                return
            if fan["profile"] == FAN_MANUAL and name not in self._fan_pwm and name in self._last_pwm:
                self._fan_pwm[name] = list(self._last_pwm[name])
            self._fan_profile[name] = fan["profile"]
            logger.info("Fan \"%s\" set profile %s", name, fan["profile"])
        elif fan.get("command") == "speed":
            channels = len(self.profile.samples[0]["fan"][name]["speed"])
            index = int(fan.get("idx", 0))
            if not 0 <= index < channels:
                logger.error("Wrong index %s for %s", index, name)
                return
            pwm = self._fan_pwm.setdefault(name, list(self._last_pwm.get(name, [0] * channels)))
            pwm[index] = synth.percent_to_pwm(fan["speed"])
            logger.info("Fan \"%s[%s]\" set speed %s", name, index, fan["speed"])
        else:
            logger.error("fan command not detected: %s", fan.get("command"))

    # --- sample assembly -----------------------------------------------------------------------

    def _vary(self, out: Sample, base: Sample, t: float) -> None:
        knobs = self._knobs
        assert knobs is not None
        mode = self._mode()
        synth.vary_cpu(out, knobs, t)
        synth.vary_gpu(out, knobs, t)
        synth.vary_memory(out, base, knobs, t)
        synth.vary_processes(out, knobs, t)
        cooling = self._fan_fraction(out, t)
        hottest = synth.vary_temperature(out, base, knobs, t, cooling)
        scale = float(mode.get("power_scale", 1.0)) * (1.15 if self._jc["enable"] else 1.0)
        synth.vary_power(out, base, knobs, t, scale)
        out["_hottest"] = hottest

    def _fan_fraction(self, out: Sample, t: float) -> float:
        """How hard the first fan blows, 0..1: the set speed in manual, else it follows the heat."""
        assert self._knobs is not None
        for name, fan in out.get("fan", {}).items():
            profile = self._fan_profile.get(name, fan.get("profile", FAN_MANUAL))
            if profile != FAN_MANUAL:
                return 0.8 * self._knobs.heat(t)
            pwm = self._fan_pwm.get(name) or [synth.percent_to_pwm(s) for s in fan.get("speed", [0])]
            return pwm[0] / synth.FAN_PWM_CAP if pwm else 0.0
        return 0.0

    def _apply_fan(self, out: Sample, base: Sample) -> None:
        hottest = float(out.pop("_hottest", -256.0))
        for name, fan in out.get("fan", {}).items():
            profile = self._fan_profile.get(name, fan.get("profile", FAN_MANUAL))
            fan["profile"] = profile
            if profile == FAN_MANUAL:
                fan.pop("governor", None)
                fan.pop("control", None)
            elif name in self._fan_profile:
                fan.update({k: v for k, v in self._fan_extras.get(name, {}).items() if k not in fan})
            if profile == FAN_MANUAL and name in self._fan_pwm:
                pwm = list(self._fan_pwm[name])
            elif self._knobs is not None and profile != FAN_MANUAL and hottest > -256.0:
                pwm = [self._knobs.auto_fan_pwm(hottest)] * len(fan["speed"])
            else:
                pwm = [synth.percent_to_pwm(s) for s in fan["speed"]]
                self._last_pwm[name] = pwm
                continue
            fan["speed"] = [synth.pwm_to_percent(p) for p in pwm]
            if "rpm" in fan:
                rpm_max = self._knobs.fan_rpm_max if self._knobs else 5000
                fan["rpm"] = [int(rpm_max * p / synth.FAN_PWM_CAP) for p in pwm]
            self._last_pwm[name] = pwm

    def _apply_controls(self, out: Sample) -> None:
        if "nvp" in out and self._nvp_id is not None:
            out["nvp"]["status"] = list(self._nvp_status)
            if self._nvp_changed:
                name = self.profile.init["nvpmodel"]["models"][self._nvp_id]
                out["nvp"]["model"] = {"name": name, "id": self._nvp_id}
        if "jc" in out and self._jc_changed:
            out["jc"].update(self._jc)
            out["jc"]["thread"] = "inactive"
        if self._jc["enable"] and (self._jc_changed or self._knobs is not None):
            _max_clocks(out)

    def _apply_mode(self, out: Sample) -> None:
        """Caps of the current nvpmodel mode (cores online, max frequencies), when the profile has them."""
        if not self._nvp_changed and self._knobs is None:
            return
        mode = self._mode()
        online = int(mode.get("cpu_online", len(out["cpu"]["cpu"])))
        for index, core in enumerate(out["cpu"]["cpu"]):
            if index >= online:
                out["cpu"]["cpu"][index] = {"online": False, "model": ""}
            elif "cpu_max" in mode and "freq" in core:
                core["freq"]["max"] = int(mode["cpu_max"])
                core["freq"]["cur"] = min(core["freq"]["cur"], core["freq"]["max"])
        if "gpu_max" in mode:
            for gpu in out["gpu"].values():
                gpu["freq"]["max"] = int(mode["gpu_max"])
                gpu["freq"]["cur"] = min(gpu["freq"]["cur"], gpu["freq"]["max"])

    def _mode(self) -> dict[str, Any]:
        modes = (self.profile.variation or {}).get("modes") or []
        if self._nvp_id is None or self._nvp_id >= len(modes):
            return {}
        return dict(modes[self._nvp_id])

    # --- helpers -------------------------------------------------------------------------------

    def _initial_masks(self, recorded_status: list[bool]) -> list[str]:
        if self.profile.nvpmodel_masks:
            return list(self.profile.nvpmodel_masks)
        return ["current" if ok else "other" for ok in recorded_status]

    def _status_for(self, mode_id: int | None) -> list[bool]:
        """Modes reachable without reboot from `mode_id`, as the service reports them (4.x: all True)."""
        if mode_id is None or not self._masks:
            return []
        if self._major() < 7:
            return [True] * len(self._masks)
        return [mask == self._masks[mode_id] for mask in self._masks]

    def _major(self) -> int:
        try:
            return int(self.service_version.split(".")[0])
        except ValueError:
            return 0

    def _recorded_fan_extras(self) -> dict[str, dict[str, Any]]:
        """governor/control of each fan as last seen under an automatic profile (restored on switch back)."""
        extras: dict[str, dict[str, Any]] = {}
        for sample in self.profile.samples:
            for name, fan in sample.get("fan", {}).items():
                seen = {k: fan[k] for k in ("governor", "control") if k in fan}
                if seen:
                    extras[name] = seen
        defaults = (self.profile.variation or {}).get("fan_auto", {})
        for name in self.profile.init.get("fan", {}):
            extras.setdefault(name, dict(defaults))
        return extras


def _cpu_total(out: Sample) -> None:
    """The all-core average jtop reports under cpu.total."""
    cores = [c for c in out["cpu"]["cpu"] if c.get("online")]
    for key in ("user", "nice", "system", "idle"):
        out["cpu"]["total"][key] = sum(float(c.get(key, 0.0)) for c in cores) / max(1, len(cores))


def _max_clocks(out: Sample) -> None:
    """What jetson_clocks does: every clock pinned at its maximum."""
    for core in out["cpu"]["cpu"]:
        if core.get("online") and "freq" in core:
            core["freq"]["min"] = core["freq"]["cur"] = core["freq"]["max"]
    for gpu in out["gpu"].values():
        gpu["freq"]["min"] = gpu["freq"]["cur"] = gpu["freq"]["max"]
    emc = out.get("mem", {}).get("EMC")
    if emc and "max" in emc:
        emc["cur"] = emc["max"]
    for group in out.get("engines", {}).values():
        for engine in group.values():
            if "max" in engine:
                engine["cur"] = engine["max"]
