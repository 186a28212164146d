"""Self-signed certificates for TLS tests, made by the openssl command line."""

from __future__ import annotations

import subprocess
from pathlib import Path


def self_signed(folder: Path, name: str, common_name: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed P-256 certificate for 127.0.0.1 and the name jetson-mapper (the deploy overlay's ServiceMonitor
    checks that name), usable as its own CA; (cert, key)."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", f"/CN={common_name}",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:jetson-mapper",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key
