"""KubeEdge DMI v1beta1: protobuf conversions, the mapper's gRPC server and the EdgeCore client."""
