"""Benchmark DMI conversion and binding of large Devices: seconds and how they grow with the property count.

For each size: a DeviceModel declaring N FLOAT properties and a Device listing them all (each bound to a reading),
converted from protobuf (`model_from_pb`, `device_from_pb`) and bound by the registry as RegisterDevice does,
best of --repeat. Linear work doubles with N; quadratic work quadruples.

Not part of the test run. Usage: .venv/bin/python bench/bench_convert.py [--source DIR] [--sizes 250,500,1000]
(--source: a checkout whose `mapper` package to measure, e.g. an export of main, for before/after figures).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(sizes: list[int], repeat: int) -> dict[int, tuple[float, str]]:
    """Best-of-`repeat` seconds per size and the outcome (accepted, or the refusal), with the `mapper` package
    found first on sys.path."""
    from mapper.config import ControlConfig
    from mapper.control.controller import Controller
    from mapper.devices.model import DeviceRejected
    from mapper.devices.registry import DeviceRegistry
    from mapper.dmi import convert
    from mapper.dmi.manifests import load_manifests

    (model, ), (device, ) = load_manifests([REPO / "device-model" / "jetson-model.yaml",
                                            REPO / "device-model" / "jetson-xavier.yaml"])
    template = next(p for p in device.spec.properties if p.name == "gpu_usage")
    template.ClearField("pushMethod")
    results: dict[int, tuple[float, str]] = {}
    for size in sizes:
        big_model, big_device = copy.deepcopy(model), copy.deepcopy(device)
        del big_model.spec.properties[:]
        del big_device.spec.properties[:]
        del big_device.spec.methods[:]
        for index in range(size):
            big_model.spec.properties.add(name=f"p{index}", type="FLOAT", accessMode="ReadOnly")
            prop = big_device.spec.properties.add()
            prop.CopyFrom(template)
            prop.name = f"p{index}"
        best, outcome = float("inf"), "accepted"
        for _ in range(repeat):
            registry = DeviceRegistry("jetson")
            registry.set_desired_validator(Controller(None, ControlConfig()).validate)
            began = time.perf_counter()
            try:
                registry.upsert_model(convert.model_from_pb(big_model))
                registry.upsert_device(convert.device_from_pb(big_device))
            except DeviceRejected as exc:
                outcome = f"refused: {str(exc)[:90]}"
            best = min(best, time.perf_counter() - began)
        results[size] = (best, outcome)
    return results


def main() -> int:
    """Command line; with --source, measures in a child process that imports that checkout's package."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, help="checkout whose mapper package to measure (default this one)")
    parser.add_argument("--sizes", default="125,250,500,1000,20000",
                        help="property counts (default 125,250,500,1000,20000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size, best kept (default 3)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.child:
        print(json.dumps(measure(sizes, args.repeat)))
        return 0
    source = (args.source or REPO).resolve()
    env = {**os.environ, "PYTHONPATH": f"{source}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, __file__, "--child", "--sizes", args.sizes, "--repeat", str(args.repeat)],
                          env=env, cwd=source, capture_output=True, text=True, check=True)
    results = {int(k): v for k, v in json.loads(done.stdout).items()}
    print(f"mapper package of {source}")
    print("| properties | seconds | x time of the previous size | outcome |")
    print("| ---: | ---: | ---: | --- |")
    previous = None
    for size, (seconds, outcome) in results.items():
        growth = f"{seconds / results[previous][0]:.1f}" if previous else ""
        print(f"| {size} | {seconds:.4f} | {growth} | {outcome} |")
        previous = size
    return 0


if __name__ == "__main__":
    sys.exit(main())
