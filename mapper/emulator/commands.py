"""`emulate` and `record` sub-commands, wired into the jetson-mapper CLI by mapper/cli.py."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from mapper.emulator.board import EmulatedBoard
from mapper.emulator.profile import ProfileError, load_profile, profile_from_json, save_profile
from mapper.emulator.server import EmulatorError, JtopServiceEmulator, installed_jetson_stats_version

logger = logging.getLogger(__name__)

DEFAULT_JTOP_SOCKET = "/run/jtop.sock"


def add_emulate_parser(subparsers: Any) -> None:
    """Register `emulate`: serve a profile as a jtop.service on a unix socket."""
    parser = subparsers.add_parser(
        "emulate", help="serve a board profile as jtop.service (no Jetson, no root needed)",
        description="Serve the jtop.service wire protocol from a board profile so the unmodified "
                    "jetson-stats client (4.2.x or 7.x) connects to it.")
    parser.add_argument("--profile", required=True, help="built-in profile name or profile JSON file")
    parser.add_argument("--socket", default=DEFAULT_JTOP_SOCKET, help="unix socket to serve (default %(default)s)")
    parser.add_argument("--interval", type=float, default=None,
                        help="fixed sampling interval in seconds (default: the first client's interval, "
                             "like jtop.service)")
    parser.add_argument("--service-version", default=None,
                        help="jetson-stats version to advertise (default: the installed one, else the profile's)")
    parser.set_defaults(func=run_emulate)


def add_record_parser(subparsers: Any) -> None:
    """Register `record`: read a real jtop.service and write a profile the emulator replays."""
    parser = subparsers.add_parser(
        "record", help="record a board profile from a running jtop.service",
        description="Connect to jtop.service with the jetson-stats client and write its init message "
                    "and raw samples as a profile file for `emulate`.")
    parser.add_argument("--out", required=True, help="profile file to write")
    parser.add_argument("--socket", default=DEFAULT_JTOP_SOCKET, help="jtop.service socket (default %(default)s)")
    parser.add_argument("--samples", type=int, default=10, help="number of samples (default %(default)s)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples (default %(default)s)")
    parser.add_argument("--name", default=None, help="profile name (default: from the board model)")
    parser.set_defaults(func=run_record)


def run_emulate(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; 2 on a bad profile or busy socket."""
    try:
        profile = load_profile(args.profile)
    except ProfileError as error:
        logger.error("%s", error)
        return 2
    version = args.service_version or installed_jetson_stats_version() or profile.jetson_stats
    if args.interval is not None and args.interval <= 0:
        logger.error("--interval must be > 0")
        return 2
    emulator = JtopServiceEmulator(EmulatedBoard(profile, version), args.socket, args.interval)
    try:
        emulator.serve_forever()
    except (EmulatorError, OSError) as error:
        logger.error("cannot serve on %s: %s", args.socket, error)
        return 2
    return 0


def run_record(args: argparse.Namespace) -> int:
    """Record and write the profile; 2 when jtop.service cannot be read."""
    from mapper.source.jtop import SourceUnavailable
    from mapper.source.recorder import record_profile

    if args.samples < 1 or args.interval <= 0:
        logger.error("--samples must be >= 1 and --interval > 0")
        return 2
    try:
        document = record_profile(args.socket, args.samples, args.interval, name=args.name)
        profile = profile_from_json(document, source="recording")
    except (SourceUnavailable, ProfileError) as error:
        logger.error("cannot record from %s: %s", args.socket, error)
        return 2
    save_profile(profile, args.out)
    logger.info("wrote %s samples of %s to %s", len(profile.samples), profile.name, args.out)
    return 0
