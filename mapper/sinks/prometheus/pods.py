"""The per-pod families: the top N containers by GPU memory, one `_other` row and the host, per Device."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mapper.pods.usage import PodSample
from mapper.sinks.prometheus.families import DEVICE_LABELS

POD_LABELS = ("pod_namespace", "pod", "container")
# name, help, and the row figure it shows
POD_FAMILIES = (
    ("jetson_pod_gpu_memory_bytes", "GPU memory held by the processes of a pod container.", "gpu_memory"),
    ("jetson_pod_cpu_ratio", "CPU of the GPU processes of a pod container, ratio of one core (jtop's figure).",
     "cpu"),
    ("jetson_pod_memory_bytes", "Resident memory of the GPU processes of a pod container.", "memory"),
    ("jetson_pod_processes", "GPU processes of a pod container.", "processes"),
)


def pod_families(pods: PodSample, bases: Sequence[tuple[str, ...]]) -> Iterator[Metric]:
    """The four per-pod gauges, each row once per Device (`bases` are the Devices' label values)."""
    for name, help_text, figure in POD_FAMILIES:
        family = GaugeMetricFamily(name, help_text, labels=(*DEVICE_LABELS, *POD_LABELS))
        for base in bases:
            for key, usage in pods.rows:
                family.add_metric([*base, key.namespace, key.pod, key.container], float(getattr(usage, figure)))
        yield family


def lookup_counter(pods: PodSample, node: str) -> Metric:
    """How jtop's processes were attributed, cumulative per lookup result."""
    family = CounterMetricFamily("jetson_mapper_pod_lookups", "jtop processes looked up for pod attribution, "
                                 "by result.", labels=("node", "result"))
    for result, count in pods.lookups:
        family.add_metric([node, result], count)
    return family
