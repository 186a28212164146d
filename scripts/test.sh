#!/usr/bin/env bash
# The whole test suite: lint, types, then pytest with jetson-stats 7.x (JetPack 6 line) and the
# jtop tests again with jetson-stats 4.2.x (JetPack 5 line). Installs what it needs when run as root.
# Tests run in PYTEST_WORKERS parallel workers (default 4; 1 runs them in one process).
set -euo pipefail
cd "$(dirname "$0")/.."
JTOP4_VERSION=${JTOP4_VERSION:-4.2.12}

missing=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing+=(prometheus)
command -v prometheus-node-exporter >/dev/null || missing+=(prometheus-node-exporter)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v victoria-metrics >/dev/null || missing+=(victoria-metrics)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y --no-install-recommends "${missing[@]}"
  else
    echo "missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/pytest ]; then python3 -m venv .venv; fi
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[dev]'
if [ ! -x .venv-jtop4/bin/pytest ]; then python3 -m venv .venv-jtop4; fi
.venv-jtop4/bin/pip install --quiet --upgrade pip
.venv-jtop4/bin/pip install --quiet -e '.[dev]' "jetson-stats==${JTOP4_VERSION}"

.venv/bin/ruff check .
.venv/bin/mypy
echo "== pytest, jetson-stats $(.venv/bin/python -c 'import jtop; print(jtop.__version__)')"
.venv/bin/python -m pytest -q -n "${PYTEST_WORKERS:-4}" "$@"
echo "== pytest -m jtop, jetson-stats $(.venv-jtop4/bin/python -c 'import jtop; print(jtop.__version__)')"
.venv-jtop4/bin/python -m pytest -q -n "${PYTEST_WORKERS:-4}" -m jtop "$@"
