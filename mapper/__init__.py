"""jetson-mapper: a KubeEdge device-twin mapper for NVIDIA Jetson boards."""

__version__ = "0.1.0"
