"""Which pods use the GPU: jtop's processes attributed to pods and containers from host files only."""
