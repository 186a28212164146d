"""dbMethod.tdengine: refused. No TDengine server can run where jetson-mapper is tested, so a Device asking for it
is answered INVALID_ARGUMENT instead of being accepted and silently writing nothing."""

from __future__ import annotations

from mapper.devices.model import Device, DeviceProperty
from mapper.sinks.panel import PanelSink
from mapper.sinks.registry import SinkContext

REFUSAL = ("pushMethod.dbMethod.tdengine is not supported by jetson-mapper (it cannot be tested against a real "
           "TDengine); use influxdb2, redis or mysql")


class TdengineSink(PanelSink[None]):
    """Refuses every property that names TDengine as its database."""

    name = "tdengine"
    method = "tdengine"

    def problems(self, device: Device, prop: DeviceProperty) -> list[str]:
        """Always the refusal."""
        return [REFUSAL]


def build(context: SinkContext) -> TdengineSink:
    """The refusing TDengine sink."""
    return TdengineSink(context.config.datapanel.queue("tdengine"))
