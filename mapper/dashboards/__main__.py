"""`python -m mapper.dashboards [--check]`: regenerate the dashboards from the panel catalogue, or check them."""

from __future__ import annotations

import argparse
import sys

from mapper.dashboards.catalogue import CATALOGUE_PATH, CatalogueError, load_catalogue
from mapper.dashboards.kubesphere import KubeSphereExprError
from mapper.dashboards.outputs import COMMAND, render, stale, write


def main(argv: list[str] | None = None) -> int:
    """Write the generated files (exit 0), or with --check list the stale ones (exit 1); 2 on a bad catalogue."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report generated files that are out of date")
    args = parser.parse_args(argv)
    try:
        files = render(load_catalogue())
    except (CatalogueError, KubeSphereExprError) as exc:
        print(f"{CATALOGUE_PATH}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        out_of_date = stale(files)
        for path in out_of_date:
            print(f"{path} is stale: run {COMMAND}", file=sys.stderr)
        return 1 if out_of_date else 0
    for written in write(files):
        print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
