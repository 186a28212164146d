"""`jetson-mapper demo`: self-contained from an installed wheel, with its own MQTT broker when mosquitto is there."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import sysconfig
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common import free_port, wait_until
from mosquitto import MOSQUITTO, Subscriber

REPO = Path(__file__).resolve().parents[1]
PACKAGED = REPO / "mapper" / "demo" / "files"
DEMO_FILES = ("jetson-model.yaml", "jetson-xavier.yaml")


def test_the_packaged_demo_files_are_the_device_model_files() -> None:
    """mapper/demo/files/ is a copy of device-model/ (refresh: see mapper/demo/__init__.py)."""
    for name in DEMO_FILES:
        assert (PACKAGED / name).read_bytes() == (REPO / "device-model" / name).read_bytes(), name


def first_scrape(port: int, process: subprocess.Popen[str], log: Path) -> str | None:
    """The /metrics page once it shows a board sample; None before; fails when the demo exited."""
    if process.poll() is not None:
        raise AssertionError(f"the demo exited with {process.returncode}:\n{log.read_text()}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            page: str = response.read().decode()
    except OSError:
        return None
    return page if "\njetson_gpu_usage_ratio{" in page else None


@contextmanager
def demo(command: list[str], cwd: Path, log: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Run a demo command on a free port; stop it with Ctrl-C (SIGINT) as a user does."""
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen([*command, "--http-port", str(port)], cwd=cwd, stdout=out,
                                   stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                   start_new_session=True)
    try:
        wait_until(lambda: first_scrape(port, process, log), "the demo's first scrape", timeout=60, interval=0.2)
        yield process, port
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            assert process.wait(timeout=20) == 0, log.read_text()
        finally:
            if process.poll() is None:  # it ignored Ctrl-C: take its emulator and broker down with it
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_an_installed_wheel_runs_the_demo(tmp_path: Path) -> None:
    """Build the wheel, install it alone into a fresh venv and run its `jetson-mapper demo` in an empty folder.

    Offline: the fresh venv gets no pip; the wheel is installed into it by this venv's pip, and a path file lets
    it import the dependencies already installed here (path files in that folder, such as this checkout's
    editable install, are not read, so `mapper` can only come from the wheel).
    """
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "wheels"), str(REPO)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "wheels").glob("jetson_mapper-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    where = subprocess.run([str(python), "-c", "import mapper; print(mapper.__file__)"], cwd=empty,
                           check=True, capture_output=True, text=True).stdout.strip()
    assert where.startswith(site), where
    with demo([str(venv / "bin" / "jetson-mapper"), "demo"], empty, tmp_path / "demo.log") as (process, _):
        assert process.poll() is None
    assert "Traceback" not in (tmp_path / "demo.log").read_text()


def test_the_demo_brings_its_own_mqtt_broker(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    with demo([sys.executable, "-m", "mapper", "demo"], REPO, log):
        match = re.search(r"mosquitto_sub -h 127\.0\.0\.1 -p (\d+) ", log.read_text())
        assert match, log.read_text()
        subscriber = Subscriber(int(match.group(1)), "jetson/default/jetson-xavier/#")
        try:
            wait_until(lambda: subscriber.messages("jetson/default/jetson-xavier/gpu_usage"), "a pushed reading")
        finally:
            subscriber.close()
    assert " ERROR " not in log.read_text(), log.read_text()


def test_without_mosquitto_the_demo_runs_without_mqtt_and_says_so(tmp_path: Path) -> None:
    assert Path(MOSQUITTO).exists()  # the other branch is the test above
    log = tmp_path / "demo.log"
    with demo([sys.executable, "-m", "mapper", "demo", "--mosquitto", str(tmp_path / "no-mosquitto")], REPO, log):
        pass
    text = log.read_text()
    (line,) = [line for line in text.splitlines() if "MQTT" in line]
    assert " INFO " in line and "without MQTT pushes" in line, line
    assert " ERROR " not in text, text
