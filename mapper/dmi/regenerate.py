"""Regenerate mapper/dmi/generated from proto/api.proto (needs the dev extra grpcio-tools).

Usage: python -m mapper.dmi.regenerate [OUTPUT_DIR]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = REPO_ROOT / "proto"
PROTO_FILE = "api.proto"
GENERATED_DIR = Path(__file__).resolve().parent / "generated"
GENERATED_FILES = ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py")
INIT_TEXT = '"""Code generated from proto/api.proto by `python -m mapper.dmi.regenerate`; do not edit."""\n'

# protoc writes `import api_pb2 as api__pb2`, which only works with the directory on sys.path.
_ABSOLUTE_IMPORT = re.compile(r"^import api_pb2 as api__pb2$", re.MULTILINE)


def _make_imports_relative(path: Path) -> None:
    """Rewrite the grpc module's import of the messages module to a package-relative one."""
    text = path.read_text(encoding="utf-8")
    fixed, count = _ABSOLUTE_IMPORT.subn("from . import api_pb2 as api__pb2", text)
    if count != 1:
        raise RuntimeError(f"{path.name}: expected one import of api_pb2, found {count}")
    path.write_text(fixed, encoding="utf-8")


def regenerate(out_dir: Path = GENERATED_DIR) -> list[Path]:
    """Run protoc on proto/api.proto into `out_dir`; return the files written."""
    import grpc_tools  # type: ignore[import-untyped]
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        PROTO_FILE,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on " + str(PROTO_DIR / PROTO_FILE))
    _make_imports_relative(out_dir / "api_pb2_grpc.py")
    (out_dir / "__init__.py").write_text(INIT_TEXT, encoding="utf-8")
    return [out_dir / name for name in (*GENERATED_FILES, "__init__.py")]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: regenerate into the package, or into the directory given."""
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else GENERATED_DIR
    for path in regenerate(out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
