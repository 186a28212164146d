"""The `jetson-mapper` command line: run, demo, emulate, record."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from mapper import __version__
from mapper.config import ConfigError, MapperConfig, load_config
from mapper.devices.redact import redact

EXIT_CONFIG = 2

log = logging.getLogger("mapper")


class RedactingFormatter(logging.Formatter):
    """Masks credentials of every address in a formatted record, traceback included: a belt over each module's own
    redaction, for text that carries an address no one thought of (an exception message, a library's log)."""

    def format(self, record: logging.LogRecord) -> str:
        """The formatted record with redact() applied."""
        return redact(super().format(record))


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level, logging.INFO), handlers=[handler])


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM.

    The kernel may hand the signal to any of the process's threads; Python then runs the handler in the main
    thread only when that thread next runs Python code (a plain stop.wait() sometimes slept through SIGTERM until
    the kubelet's SIGKILL). The main thread therefore sleeps in a read of the signal wake-up pipe, which the
    interpreter writes to from whichever thread took the signal: no polling, no missed signal.
    """
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    previous = signal.set_wakeup_fd(wake_write)
    try:
        while not stop.is_set():
            os.read(wake_read, 64)  # returns once a signal arrived; its handler runs right after
    finally:
        signal.set_wakeup_fd(previous)
        os.close(wake_read)
        os.close(wake_write)


def serve(config: MapperConfig) -> int:
    """Run the mapper until a signal arrives."""
    from mapper.app import MapperApp  # heavy imports only when serving

    for warning in config.warnings:
        log.warning("config: %s", warning)
    app = MapperApp(config)
    try:
        app.start()
    except OSError as exc:  # an address of the config cannot be used here: like a bad config, exit 2
        log.error("cannot start: %s", exc.strerror or exc)
        app.stop()
        return EXIT_CONFIG
    try:
        _wait_for_signal()
    finally:
        log.info("stopping")
        app.stop()
    return 0


def run_command(args: argparse.Namespace) -> int:
    """`run --config FILE`: the mapper's normal mode."""
    try:
        config = load_config(Path(args.config))
    except ConfigError as exc:
        print(f"jetson-mapper: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    _setup_logging(config.log_level)
    return serve(config)


def demo_command(args: argparse.Namespace) -> int:
    """`demo`: the emulated Xavier NX, the bundled device model and a local broker; no EdgeCore, no Jetson."""
    from mapper.demo.session import DEMO_FILES, DemoSession, packaged_files

    _setup_logging("INFO")
    files = Path(args.device_model) if args.device_model else packaged_files()
    missing = [str(files / name) for name in DEMO_FILES if not (files / name).is_file()]
    if missing:
        print(f"jetson-mapper: demo files not found: {', '.join(missing)}", file=sys.stderr)
        return EXIT_CONFIG
    session = DemoSession(args.profile, files, args.address, args.http_port, args.mosquitto)
    base = f"http://127.0.0.1:{args.http_port}"
    mqtt = (f"  mqtt:     mosquitto_sub -h 127.0.0.1 -p {session.broker.port} -t 'jetson/#' -v\n"
            if session.broker else "")
    print(
        f"jetson-mapper demo: emulated board '{args.profile}' (jtop socket {session.jtop_socket})\n"
        f"  metrics:  {base}/metrics\n"
        f"  twin:     {base}/api/v1/device/default/jetson-xavier/gpu_usage\n"
        f"  model:    {base}/api/v1/meta/model/default/jetson-xavier\n"
        f"  health:   {base}/readyz\n"
        f"{mqtt}"
        "  Ctrl-C to stop.",
        flush=True,
    )
    try:
        return serve(session.config)
    finally:
        session.close()


def build_parser() -> argparse.ArgumentParser:
    """All subcommands."""
    from mapper.emulator.commands import add_emulate_parser, add_record_parser

    parser = argparse.ArgumentParser(prog="jetson-mapper", description=__doc__)
    parser.add_argument("--version", action="version", version=f"jetson-mapper {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the mapper with a config file")
    run.add_argument("--config", required=True, help="mapper config YAML")
    run.set_defaults(func=run_command)
    demo = commands.add_parser("demo", help="run the mapper against the built-in jtop emulator")
    demo.add_argument("--profile", default="xavier-nx-jp5", help="emulator profile (default: xavier-nx-jp5)")
    demo.add_argument("--http-port", type=int, default=7777)
    demo.add_argument("--address", default="127.0.0.1", help="HTTP bind address (default: 127.0.0.1)")
    demo.add_argument("--device-model", default=None,
                      help="folder with jetson-model.yaml and jetson-xavier.yaml (default: the packaged copies)")
    demo.add_argument("--mosquitto", default=None,
                      help="mosquitto binary for the demo's own broker (default: found on PATH or in /usr/sbin; "
                           "'none': no broker, no MQTT pushes)")
    demo.set_defaults(func=demo_command)
    add_emulate_parser(commands)
    add_record_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    # gRPC's C core logs fork() notices at info level whenever jtop runs a helper process; keep errors only.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    args = build_parser().parse_args(argv)
    if args.command in ("emulate", "record"):
        _setup_logging("INFO")  # run and demo set up logging themselves (run: from its config)
    return int(args.func(args))
