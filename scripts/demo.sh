#!/usr/bin/env bash
# Run the mapper against the built-in jtop emulator (Xavier NX, JetPack 5) with the bundled device model.
# Creates .venv on first use. Extra arguments go to `jetson-mapper demo` (e.g. --profile orin-nano-jp6).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/jetson-mapper ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e .
fi
exec .venv/bin/jetson-mapper demo "$@"
