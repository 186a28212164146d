"""`python -m mapper.emulator emulate|record ...` (the same sub-commands as jetson-mapper)."""

from __future__ import annotations

import argparse
import logging
import sys

from mapper.emulator.commands import add_emulate_parser, add_record_parser


def main(argv: list[str] | None = None) -> int:
    """Parse the sub-command and run it."""
    parser = argparse.ArgumentParser(prog="python -m mapper.emulator")
    parser.add_argument("--log-level", default="INFO")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_emulate_parser(subparsers)
    add_record_parser(subparsers)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
