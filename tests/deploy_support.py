"""Helpers shared by the deployment-file tests: paths, YAML loading, strict CRD schemas."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The team's shared/ folder: beside the clone (CI) or named by JETSON_MAPPER_SHARED."""
    candidates = [REPO_ROOT.parent / "shared"]
    if env := os.environ.get("JETSON_MAPPER_SHARED"):
        candidates.insert(0, Path(env))
    for candidate in candidates:
        if (candidate / "kubeedge-crds").is_dir():
            return candidate
    raise FileNotFoundError(f"shared/ with kubeedge-crds not found in {[str(c) for c in candidates]}")


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document in a file."""
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def strict(schema: Any) -> Any:
    """A copy of an OpenAPI schema that rejects fields it does not declare, as `kubectl --validate=strict`."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in copy
        and "additionalProperties" not in copy
        and not copy.get("x-kubernetes-preserve-unknown-fields")
    ):
        copy["additionalProperties"] = False
    return copy


def crd_schema(kubeedge_version: str, crd_file: str, api_version: str = "v1beta1") -> dict[str, Any]:
    """The strict openAPIV3Schema of one served version of an upstream KubeEdge CRD."""
    (crd,) = load_documents(shared_dir() / "kubeedge-crds" / kubeedge_version / crd_file)
    for version in crd["spec"]["versions"]:
        if version["name"] == api_version:
            schema: dict[str, Any] = strict(version["schema"]["openAPIV3Schema"])
            return schema
    raise KeyError(f"{crd_file} of {kubeedge_version} serves no {api_version}")


def walk(node: Any) -> Iterator[Any]:
    """Every dict and list nested in a YAML tree, the root included."""
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from walk(child)
