# syntax=docker/dockerfile:1
# jetson-mapper image for linux/arm64 (Jetson) and linux/amd64 (CI, emulator):
#   docker buildx build --platform linux/arm64,linux/amd64 \
#     --build-arg JETSON_STATS_VERSION=4.2.12 -t <registry>/jetson-mapper:0.1.0-jtop4.2.12 --push .
#
# JETSON_STATS_VERSION has no default on purpose: the jtop client in the image must match the host's
# jtop.service (4.x: the same version; 7.x: the same major.minor), or the service refuses it. On the Jetson:
#   jtop --version          or          python3 -c "import jtop; print(jtop.__version__)"
FROM python:3.11-slim-bookworm

ARG JETSON_STATS_VERSION
RUN test -n "${JETSON_STATS_VERSION}" \
    || { echo "set --build-arg JETSON_STATS_VERSION to the host's jtop version (jtop --version)" >&2; exit 1; }

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/jetson-mapper/bin:$PATH

# A virtualenv: jetson-stats' installer then leaves host services (jtop.service) alone.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mapper ./mapper
RUN python -m venv /opt/jetson-mapper \
    && pip install . "jetson-stats==${JETSON_STATS_VERSION}" \
    && rm -rf /src

# Non-root by default (standalone use). The KubeEdge DaemonSet runs it as uid 0 without capabilities because
# EdgeCore's socket directory is root-owned: see docs/deployment.md.
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin mapper
USER 10001:10001
WORKDIR /

EXPOSE 7777
ENTRYPOINT ["jetson-mapper"]
CMD ["run", "--config", "/etc/jetson-mapper/config.yaml"]
