"""Devices and DeviceModels as the mapper runs them: model, property catalogue, values, registry."""
