"""Code generated from proto/api.proto by `python -m mapper.dmi.regenerate`; do not edit."""
