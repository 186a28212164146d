"""The mapper's unix socket file: prepared before binding, watched afterwards (deleted or replaced: bind again)."""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

WATCH_SECONDS = 1.0  # how often the socket file is checked: one stat() call
SocketIdentity = tuple[int, int]


def prepare_socket_path(socket_path: str) -> None:
    """Create the socket's directory and remove a stale socket; refuse to remove anything else."""
    path = Path(socket_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{socket_path} exists and is not a unix socket; not removing it")
    path.unlink()


def socket_identity(path: str) -> SocketIdentity | None:
    """(device, inode) of the file at `path`, or None when there is none."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


class SocketWatch:
    """Calls `rebind` whenever the file at `path` is not the socket last bound there, until it succeeds again.

    `rebind` binds anew and returns the new identity, or raises OSError (retried at the next check); `bound`
    then runs (the mapper tells EdgeCore its address again). `problem` says why the socket is not there meanwhile.
    """

    def __init__(self, path: str, rebind: Callable[[], SocketIdentity | None], bound: Callable[[], None],
                 interval: float = WATCH_SECONDS) -> None:
        self.path = path
        self._rebind = rebind
        self._bound = bound
        self._interval = interval
        self._identity: SocketIdentity | None = None
        self._problem: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def problem(self) -> str | None:
        """Why the socket is missing right now, or None."""
        return self._problem

    @property
    def identity(self) -> SocketIdentity | None:
        """The socket file last bound (None before start)."""
        return self._identity

    def start(self, identity: SocketIdentity | None) -> None:
        """Watch from now on; `identity` is the socket just bound."""
        self._identity = identity
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="dmi-socket-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if socket_identity(self.path) == self._identity:
                continue
            if self._problem is None:
                log.warning("mapper socket %s was deleted or replaced: binding it again", self.path)
                self._problem = "deleted or replaced"
            try:
                identity = self._rebind()
            except OSError as exc:
                reason = str(exc.strerror or exc)
                if reason != self._problem:
                    log.error("mapper socket %s cannot be bound again: %s; retrying every %g s",
                              self.path, reason, self._interval)
                self._problem = reason
                continue
            self._identity, self._problem = identity, None
            log.info("mapper socket %s bound again", self.path)
            try:
                self._bound()
            except Exception:  # a failing callback must not stop the watch
                log.exception("after binding %s again", self.path)
