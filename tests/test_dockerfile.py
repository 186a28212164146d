"""Light checks of the Dockerfile (no Docker engine here): the jtop client version comes from the build arg."""

from __future__ import annotations

import re
import shlex

from deploy_support import REPO_ROOT, load_documents

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    pairs = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def test_base_image_is_multi_arch_python_slim() -> None:
    froms = [args for keyword, args in instructions() if keyword == "FROM"]
    assert froms == ["python:3.11-slim-bookworm"]


def test_jetson_stats_version_is_a_required_build_arg_that_pins_the_install() -> None:
    args = [a for keyword, a in instructions() if keyword == "ARG"]
    assert "JETSON_STATS_VERSION" in args, "declared without a default: it must match the host"
    runs = " ".join(a for keyword, a in instructions() if keyword == "RUN")
    assert 'test -n "${JETSON_STATS_VERSION}"' in runs
    (install,) = [a for keyword, a in instructions() if keyword == "RUN" and "pip install" in a]
    assert '"jetson-stats==${JETSON_STATS_VERSION}"' in install
    assert re.search(r"pip install \.(\s|$)", install), "installs the project itself"


def test_runs_as_non_root_with_the_mapper_command() -> None:
    last = dict(instructions())
    assert last["USER"].split(":")[0] not in {"0", "root"}
    command = [*shlex.split(last["ENTRYPOINT"].strip("[]").replace(",", " ")),
               *shlex.split(last["CMD"].strip("[]").replace(",", " "))]  # fmt: skip
    assert command == ["jetson-mapper", "run", "--config", "/etc/jetson-mapper/config.yaml"]


def test_daemonset_args_replace_cmd_with_the_same_config_path() -> None:
    (daemonset,) = load_documents(REPO_ROOT / "deploy" / "base" / "daemonset.yaml")
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["run", "--config", "/etc/jetson-mapper/config.yaml"]


def test_dockerignore_keeps_only_what_the_install_needs() -> None:
    text = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8")
    patterns = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert patterns[:4] == ["*", "!pyproject.toml", "!README.md", "!mapper/"]
