"""`jetson-mapper demo`: the emulated board, the bundled Device files and a local MQTT broker, nothing else needed.

`files/` ships inside the package (an installed wheel runs the demo anywhere); it is a copy of the user-facing
`device-model/jetson-model.yaml` and `device-model/jetson-xavier.yaml`, refreshed with
`cp device-model/jetson-model.yaml device-model/jetson-xavier.yaml mapper/demo/files/`
(tests/test_demo.py fails when the two differ).
"""
