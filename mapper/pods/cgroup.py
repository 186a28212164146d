"""Which pod and container a process belongs to, from the text of its /proc/<pid>/cgroup.

cgroup v2 is one line `0::<path>`; v1 has one line per hierarchy `N:<controllers>:<path>` (a hybrid system
adds a `0::` line). Kubernetes paths, under the kubelet's cgroup root:

- systemd driver: `.../kubepods-<qos>-pod<uid, _ for ->.slice/<prefix>-<id>.scope`, prefix `cri-containerd`
  (containerd), `crio` (CRI-O; `crio-conmon-<id>` is its monitor) or `docker` (cri-dockerd, dockershim);
- cgroupfs driver: `.../kubepods/<qos>/pod<uid>/<id>` (containerd, Docker) or `.../crio-<id>` (CRI-O);
- Guaranteed pods have no qos level; static pods' UIDs are 32 hex digits (a config hash) without dashes.

Seen from inside a cgroup namespace the path is relative to the reader's own cgroup (`/../../kubepods-...`),
so the pod and container parts are matched anywhere in the path, never from its start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UUID = r"[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}"
# systemd names a slice after its parents: kubepods-burstable-pod<uid>.slice, or under another cgroup root
# (kubelet --cgroup-root=/kubelet.slice) kubelet-kubepods-burstable-pod<uid>.slice.
_POD = re.compile(rf"(?:^|/)(?:[a-z][a-z0-9]*-)*pod(?P<uid>{_UUID}|[0-9a-f]{{32}})(?:\.slice)?(?=/|$)")
_CONTAINER = re.compile(r"/(?:(?P<prefix>cri-containerd|crio|docker)-)?(?P<id>[0-9a-f]{64})(?:\.scope)?(?=/|$)")
_RUNTIMES = {"cri-containerd": "containerd", "crio": "cri-o", "docker": "docker"}


class Unparsable(ValueError):
    """The file holds no cgroup line at all (empty, or not a cgroup file)."""


@dataclass(frozen=True)
class ContainerRef:
    """A pod UID (dashed form) and, when the process is in a container's cgroup, the container ID."""

    pod_uid: str
    container_id: str  # 64 hex digits; "" for a pod-level process (CRI-O's conmon, a pod's own cgroup)
    runtime: str  # containerd, cri-o, docker; "" when the path does not say (cgroupfs with containerd/Docker)


def pod_of_path(path: str) -> ContainerRef | None:
    """The pod and container a cgroup path names, None for a path outside any pod."""
    pod = _POD.search(path)
    if pod is None:
        return None
    uid = pod["uid"].replace("_", "-")
    container = _CONTAINER.match(path, pod.end())
    if container is None:
        return ContainerRef(uid, "", "")
    return ContainerRef(uid, container["id"], _RUNTIMES.get(container["prefix"] or "", ""))


def parse_cgroup(text: str) -> ContainerRef | None:
    """The pod of the first hierarchy line naming one (v1 or v2), None for a process outside pods.

    Raises Unparsable when the text has no `N:<controllers>:<path>` line at all.
    """
    seen_line = False
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        seen_line = True
        found = pod_of_path(parts[2].strip())
        if found is not None:
            return found
    if not seen_line:
        raise Unparsable("no cgroup line")
    return None
