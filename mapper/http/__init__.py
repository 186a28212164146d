"""The HTTP port: /metrics, health probes and the mapper-framework REST API."""
