"""Pod, namespace and container names from the kubelet's container log links, cached per container ID.

The kubelet (and KubeEdge's edged) links each container's log as
`/var/log/containers/<pod>_<namespace>_<container>-<container id>.log` to
`/var/log/pods/<namespace>_<pod>_<pod uid>/<container>/<n>.log`. Only the links are read (names and targets);
the logs themselves are never opened, so the links may dangle where only this folder is mounted.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Kubernetes names: pods are DNS subdomains, namespaces and containers DNS labels (no "_" in any of them).
_LINK = re.compile(
    r"(?P<pod>[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)_(?P<namespace>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)_"
    r"(?P<container>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)-(?P<id>[0-9a-f]{64})\.log"
)
_POD_LOG_DIR = re.compile(
    r"/(?P<namespace>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)_(?P<pod>[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)_"
    r"(?P<uid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})/"
)
RETRY_AFTER = 30.0  # seconds before an ID without a link makes the folder be listed again


@dataclass(frozen=True)
class ContainerNames:
    """What the log link says about one container."""

    namespace: str
    pod: str
    container: str


def parse_link(name: str) -> tuple[str, ContainerNames] | None:
    """(container ID, names) from a log link's file name, None for anything else."""
    match = _LINK.fullmatch(name)
    if match is None:
        return None
    return match["id"], ContainerNames(match["namespace"], match["pod"], match["container"])


class NameIndex:
    """Container ID -> names; the folder is listed again only when an ID it does not know yet shows up."""

    def __init__(self, folder: str, clock: Callable[[], float] = time.monotonic,
                 retry_after: float = RETRY_AFTER) -> None:
        self.folder = folder
        self.scans = 0
        self._clock = clock
        self._retry_after = retry_after
        self._known: dict[str, ContainerNames] = {}
        self._pods: dict[str, tuple[str, str]] = {}  # pod UID -> (namespace, pod), from the links' targets
        self._missed: dict[str, float] = {}
        self._warned = False

    def names(self, ids: Iterable[str]) -> dict[str, ContainerNames]:
        """Names of the IDs that have a log link; one listing of the folder at most per call."""
        wanted = set(ids)
        now = self._clock()
        unknown = [i for i in wanted if i not in self._known and now - self._missed.get(i, -1e18) >= self._retry_after]
        if unknown:
            self._scan()
            for container_id in unknown:
                if container_id not in self._known:
                    self._missed[container_id] = now
        self._missed = {i: at for i, at in self._missed.items() if i in wanted}
        return {i: self._known[i] for i in wanted if i in self._known}

    def pod(self, uid: str) -> tuple[str, str] | None:
        """(namespace, pod) of a pod UID that one of its containers' links points to, as of the last listing."""
        return self._pods.get(uid)

    def _scan(self) -> None:
        """Replace the index with the folder's links (so it never outgrows the folder)."""
        self.scans += 1
        found: dict[str, ContainerNames] = {}
        pods: dict[str, tuple[str, str]] = {}
        try:
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    parsed = parse_link(entry.name)
                    if parsed is None:
                        continue
                    found[parsed[0]] = parsed[1]
                    target = _POD_LOG_DIR.search(_link_target(entry.path))
                    if target is not None:
                        pods[target["uid"]] = (target["namespace"], target["pod"])
        except OSError as error:
            if not self._warned:
                log.warning("pods: cannot list container log links in %s (%s): pods are named by UID and "
                            "container ID only; mount the host's /var/log/containers there",
                            self.folder, error.strerror or error)
                self._warned = True
        self._known = found
        self._pods = pods


def _link_target(path: str) -> str:
    """Where a link points ("" for a plain file or a link that went meanwhile)."""
    try:
        return os.readlink(path)
    except OSError:
        return ""
