"""Reading one process from a proc root: its start time and resident size (stat), and its cgroup file.

Processes exit at any moment: a missing file or ESRCH means the process is gone (normal, not an error), any
other failure means the file cannot be read here (permissions, not a proc file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

VANISHED, UNREADABLE = "vanished", "unreadable"
_GONE = (FileNotFoundError, ProcessLookupError, NotADirectoryError)
_CHUNK = 4096


class Unavailable(Exception):
    """The process's file could not be read; `reason` is VANISHED or UNREADABLE."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ProcStat:
    """The two /proc/<pid>/stat fields attribution needs."""

    start_ticks: int  # field 22: start time after boot, in clock ticks
    rss_pages: int  # field 24: resident set size, in pages


def _read(path: str) -> bytes:
    """The whole file; raw os calls, about half the cost of open() for these small proc files."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except _GONE:
        raise Unavailable(VANISHED) from None
    except OSError:
        raise Unavailable(UNREADABLE) from None
    try:
        data = os.read(fd, _CHUNK)
        while len(data) % _CHUNK == 0 and data:  # proc files are generated whole: one read but for long ones
            more = os.read(fd, _CHUNK)
            if not more:
                break
            data += more
        return data
    except _GONE:
        raise Unavailable(VANISHED) from None
    except OSError:  # EISDIR and the like
        raise Unavailable(UNREADABLE) from None
    finally:
        os.close(fd)


def read_stat(proc_root: str, pid: int) -> ProcStat:
    """Start time and RSS of a process; Unavailable when it is gone or the file is not a stat line."""
    text = _read(f"{proc_root}/{pid}/stat")
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
    head, _, rest = text.rpartition(b")")
    fields = rest.split()
    if not head or len(fields) < 22:
        raise Unavailable(UNREADABLE)
    try:
        return ProcStat(int(fields[19]), int(fields[21]))
    except ValueError:
        raise Unavailable(UNREADABLE) from None


def read_cgroup(proc_root: str, pid: int) -> str:
    """The text of /proc/<pid>/cgroup; Unavailable when the process is gone or the file unreadable."""
    return _read(f"{proc_root}/{pid}/cgroup").decode("utf-8", "replace")
