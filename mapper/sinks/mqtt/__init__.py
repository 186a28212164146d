"""MQTT output: pushMethod.mqtt of Device properties, one long-lived client per broker."""
