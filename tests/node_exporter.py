"""A real node-exporter (Debian `prometheus-node-exporter`) for tests, under its own hostname like an edge node's."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from common import free_port, stop_process, wait_until

NODE_EXPORTER = "prometheus-node-exporter"
# Only what the dashboards read: CPU seconds, meminfo, and node_uname_info (its nodename names the node).
COLLECTORS = ("--collector.disable-defaults", "--collector.cpu", "--collector.meminfo", "--collector.uname")


def _metrics(port: int) -> str:
    """The exporter's /metrics page, or '' while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return ""


@contextmanager
def running_node_exporter(hostname: str) -> Iterator[str]:
    """host:port of a node-exporter that reports `hostname` as its nodename (it runs in a UTS namespace of its
    own, as on its own host); stopped afterwards."""
    binary = shutil.which(NODE_EXPORTER) or shutil.which(NODE_EXPORTER, path="/usr/bin:/usr/sbin")
    if binary is None:
        raise FileNotFoundError(f"{NODE_EXPORTER} is not installed (Debian package prometheus-node-exporter)")
    port = free_port()
    command = (f"hostname {shlex.quote(hostname)} && exec {binary} --web.listen-address=127.0.0.1:{port} "
               + " ".join(COLLECTORS))
    # unshare execs the command (no fork), so the process we hold is node-exporter itself.
    namespaces = ["--uts"] if os.geteuid() == 0 else ["--user", "--map-root-user", "--uts"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(["unshare", *namespaces, "sh", "-c", command],
                                   stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_until(lambda: process.poll() is not None or f'nodename="{hostname}"' in _metrics(port),
                       f"node-exporter as {hostname}", timeout=20)
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"node-exporter exited with {process.returncode}: {log.read().decode()}")
            yield f"127.0.0.1:{port}"
        finally:
            stop_process(process)
