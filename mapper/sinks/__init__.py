"""Every output of the mapper behind one seam: twins to EdgeCore, MQTT, the Prometheus page."""
