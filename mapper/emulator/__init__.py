"""A jtop.service look-alike that the unmodified jetson-stats client connects to, for boards we don't have."""
