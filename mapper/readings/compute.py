"""Normalisers for the compute sections of a jtop sample: CPU, GPU, memory, EMC, engines, processes."""

from __future__ import annotations

from typing import Any

from mapper.readings.util import (
    Out,
    integer,
    key_part,
    mapping,
    number,
    put,
    scaled_int,
    sequence,
)

KHZ = 1000  # jtop reports every clock in kHz; readings are in Hz
KIB = 1024  # jtop reports memory (from /proc/meminfo, nvmap) in kB; readings are in bytes


def core_usage(core: Any) -> float | None:
    """Busy percentage of one online core: 100 - idle, exactly as jtop's own `stats` computes it.

    jtop derives user/nice/system/idle from /proc/stat deltas; when the counters did not move (the
    emulator's static stat file) every field is 0, so 100 - idle is 100 %. We keep that arithmetic
    rather than invent a value: it is what jtop and tegrastats users see for the same sample.
    """
    core_map = mapping(core)
    if core_map is None:
        return None
    idle = number(core_map.get("idle"))
    if idle is None:
        return None
    return min(100.0, max(0.0, 100.0 - idle))


def cpu_readings(cpu: Any, out: Out) -> None:
    """cpu.usage, cpu.freq, cpu.cores.*, cpu.core.<i>.{usage,freq,online}."""
    cpu_map = mapping(cpu)
    cores = sequence(cpu_map.get("cpu")) if cpu_map is not None else None
    if cores is None:
        return
    usages: list[float] = []
    freqs: list[int] = []
    online_count = 0
    for index, core in enumerate(cores):
        core_map = mapping(core) or {}
        online = core_map.get("online")
        if not isinstance(online, bool):
            continue
        out[f"cpu.core.{index}.online"] = online
        if not online:
            continue
        online_count += 1
        usage = core_usage(core_map)
        put(out, f"cpu.core.{index}.usage", usage)
        if usage is not None:
            usages.append(usage)
        freq = scaled_int((mapping(core_map.get("freq")) or {}).get("cur"), KHZ)
        put(out, f"cpu.core.{index}.freq", freq)
        if freq is not None:
            freqs.append(freq)
    out["cpu.cores.total"] = len(cores)
    out["cpu.cores.online"] = online_count
    if usages:
        out["cpu.usage"] = sum(usages) / len(usages)
    if freqs:
        out["cpu.freq"] = round(sum(freqs) / len(freqs))


def gpu_readings(gpu: Any, out: Out) -> None:
    """gpu.name, gpu.usage, gpu.freq[.min|.max] from the first devfreq entry (`gpu`, `ga10b`, ...)."""
    gpus = mapping(gpu)
    if not gpus:
        return
    name, first = next(iter(gpus.items()))
    first_map = mapping(first)
    safe_name = key_part(name)
    if first_map is None or safe_name is None:
        return
    out["gpu.name"] = safe_name
    put(out, "gpu.usage", number((mapping(first_map.get("status")) or {}).get("load")))
    freq = mapping(first_map.get("freq")) or {}
    put(out, "gpu.freq", scaled_int(freq.get("cur"), KHZ))
    put(out, "gpu.freq.min", scaled_int(freq.get("min"), KHZ))
    put(out, "gpu.freq.max", scaled_int(freq.get("max"), KHZ))


def memory_readings(memory: Any, out: Out) -> None:
    """ram.*, swap.* (bytes, ram.usage %) and emc.* from jtop's `memory` dict."""
    memory_map = mapping(memory)
    if memory_map is None:
        return
    ram = mapping(memory_map.get("RAM"))
    if ram is not None:
        for source, key in (("tot", "total"), ("used", "used"), ("free", "free"),
                            ("buffers", "buffers"), ("cached", "cached"), ("shared", "shared")):
            put(out, f"ram.{key}", scaled_int(ram.get(source), KIB))
        total, used = integer(ram.get("tot")), integer(ram.get("used"))
        if total and total > 0 and used is not None:
            out["ram.usage"] = 100.0 * used / total
    swap = mapping(memory_map.get("SWAP"))
    if swap is not None:
        for source, key in (("tot", "total"), ("used", "used"), ("cached", "cached")):
            put(out, f"swap.{key}", scaled_int(swap.get(source), KIB))
    emc = mapping(memory_map.get("EMC"))
    if emc:
        put(out, "emc.usage", number(emc.get("val")))
        put(out, "emc.freq", scaled_int(emc.get("cur"), KHZ))
        put(out, "emc.freq.max", scaled_int(emc.get("max"), KHZ))


def engine_readings(engine: Any, out: Out) -> None:
    """engine.<GROUP>.<NAME>.online and .freq (Hz) for every hardware engine."""
    for group, members in (mapping(engine) or {}).items():
        group_key = key_part(group)
        for name, data in (mapping(members) or {}).items():
            name_key, data_map = key_part(name), mapping(data)
            if group_key is None or name_key is None or data_map is None:
                continue
            prefix = f"engine.{group_key}.{name_key}"
            if isinstance(data_map.get("online"), bool):
                out[f"{prefix}.online"] = data_map["online"]
            put(out, f"{prefix}.freq", scaled_int(data_map.get("cur"), KHZ))


def process_readings(processes: Any, out: Out) -> None:
    """processes.count/cpu/ram/gpu_memory aggregated over jtop's table (no per-PID keys).

    A row is [pid, user, gpu, type, prio, state, cpu %, mem kB, gpu_mem kB, name]; malformed rows
    are skipped and not counted.
    """
    rows = sequence(processes)
    if rows is None:
        return
    count, cpu_sum, ram_sum, gpu_sum = 0, 0.0, 0, 0
    for row in rows:
        cells = sequence(row)
        if cells is None or len(cells) < 9:
            continue
        cpu, ram, gpu_mem = number(cells[6]), integer(cells[7]), integer(cells[8])
        if cpu is None or ram is None or gpu_mem is None:
            continue
        count += 1
        cpu_sum += cpu
        ram_sum += ram * KIB
        gpu_sum += gpu_mem * KIB
    out["processes.count"] = count
    out["processes.cpu"] = cpu_sum
    out["processes.ram"] = ram_sum
    out["processes.gpu_memory"] = gpu_sum
