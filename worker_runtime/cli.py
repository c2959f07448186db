"""``leasq worker MODULE:REGISTRY [options]``: run a worker from the command line.

The broker's ``leasq`` command delegates its ``worker`` subcommand here, and
``python -m leasq_worker`` runs the same :func:`main`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from pathlib import Path

from leasq_worker.logs import configure_logging
from leasq_worker.registry import Registry
from leasq_worker.worker import Worker


def parse_queue(spec: str) -> tuple[str, int]:
    """``"critical=6"`` → ``("critical", 6)``; a bare name has weight 1."""
    name, sep, weight = spec.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"bad queue {spec!r}: expected NAME or NAME=WEIGHT")
    if not sep:
        return name, 1
    try:
        value = int(weight)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad weight in {spec!r}: not an integer") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"bad weight in {spec!r}: must be 1-1000")
    return name, value


def load_registry(target: str) -> Registry:
    """Import ``package.module:attribute`` (from the current directory too) and check its type."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"expected MODULE:ATTRIBUTE, got {target!r}")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    registry = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(registry, Registry):
        raise TypeError(f"{target} is a {type(registry).__name__}, not a leasq_worker.Registry")
    return registry


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leasq worker", description="Run a Leasq worker.")
    parser.add_argument("registry", help="where the handlers are: MODULE:REGISTRY")
    parser.add_argument(
        "--broker",
        default=os.environ.get("LEASQ_BROKER", "127.0.0.1:50051"),
        help="broker address host:port (env LEASQ_BROKER)",
    )
    parser.add_argument(
        "--queue",
        "-q",
        action="append",
        type=parse_queue,
        dest="queues",
        metavar="NAME[=WEIGHT]",
        help="queue to serve; repeat for several",
    )
    parser.add_argument(
        "--strict", action="store_true", help="serve queues in the order given instead of by weight"
    )
    parser.add_argument(
        "--concurrency", "-c", type=int, default=10, help="tasks run at once (default 10)"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="process-pool size for process handlers (default: CPU count)",
    )
    parser.add_argument(
        "--lease-duration",
        type=float,
        default=15.0,
        help="seconds a lease lasts between heartbeats (default 15)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=float,
        default=None,
        help="seconds between heartbeats (default: a third of the lease)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=10.0,
        help="seconds running tasks get to finish on SIGTERM (default 10)",
    )
    parser.add_argument("--worker-id", default=None, help="default host:pid:random")
    parser.add_argument(
        "--token", default=os.environ.get("LEASQ_TOKEN"), help="bearer token (env LEASQ_TOKEN)"
    )
    parser.add_argument("--tls", action="store_true", help="TLS with the system's CA roots")
    parser.add_argument(
        "--tls-ca",
        type=Path,
        default=None,
        help="PEM file of the CA that signed the broker's certificate; enables TLS",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--log-format", default="auto", choices=["auto", "json", "console"])
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a worker until SIGTERM/SIGINT; 0 after a graceful shutdown, 2 for bad arguments."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        registry = load_registry(args.registry)
    except (ImportError, AttributeError, ValueError, TypeError) as exc:
        parser.error(f"cannot load {args.registry}: {exc}")
    roots = args.tls_ca.read_bytes() if args.tls_ca is not None else None
    try:
        worker = Worker(
            registry,
            broker=args.broker,
            queues=args.queues or ["default"],
            concurrency=args.concurrency,
            strict=args.strict,
            processes=args.processes,
            lease_duration=args.lease_duration,
            heartbeat_interval=args.heartbeat_interval,
            shutdown_timeout=args.shutdown_timeout,
            worker_id=args.worker_id,
            token=args.token,
            tls=args.tls or roots is not None,
            root_certificates=roots,
        )
    except ValueError as exc:
        parser.error(str(exc))
    asyncio.run(worker.run())
    if worker.busy_threads:
        # Sync handlers that ignored their cancel signal would block interpreter exit.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
