"""SIGTERM and SIGINT stop the mapper whichever of its threads the kernel hands the signal to."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from common import free_port, wait_until

REPO = Path(__file__).resolve().parents[1]
# Only the helper thread, started before the main thread blocks SIGTERM, can take the signal (threads started
# later inherit the block): the kernel hands it to a thread other than the one waiting for it, as it may in any
# multi-threaded process.
RUN = """
import signal, sys, threading
threading.Thread(target=threading.Event().wait, daemon=True).start()
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
from mapper.cli import main
sys.exit(main(["run", "--config", sys.argv[1]]))
"""


def test_a_signal_taken_by_another_thread_still_stops_the_mapper(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    port = free_port()
    config.write_text(
        f"grpc_server: {{socket_path: {tmp_path}/j.sock}}\ncommon: {{http_port: {port}}}\n"
        f"http: {{address: 127.0.0.1}}\nsource: {{jtop_socket: {tmp_path}/jtop.sock}}\n"
        f"standalone: {{files: [{REPO}/device-model/jetson-model.yaml]}}\n", encoding="utf-8")
    log = tmp_path / "mapper.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-c", RUN, str(config)], stdout=out, stderr=subprocess.STDOUT,
                                   text=True)
    try:
        wait_until(lambda: "jetson-mapper up" in log.read_text(), "the mapper to start")
        process.send_signal(signal.SIGTERM)
        began = time.monotonic()
        assert process.wait(timeout=10) == 0, log.read_text()
        assert time.monotonic() - began < 5
        assert "stopping" in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
