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
from typing import Any

import grpc
import structlog

from leasq_sdk.channel import read_pem, tls_credentials
from leasq_worker import metrics
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


def host_port(text: str) -> str:
    """``HOST:PORT`` checked (port 0: a free one); returned as given."""
    _, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return text


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


# (flags, argparse options) of ``leasq worker``: what to serve, how to run it, how to reach
# the broker. Environment defaults are read when the parser is built, not at import.
_FLAGS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--queue", "-q"), {"action": "append", "type": parse_queue, "dest": "queues",
        "metavar": "NAME[=WEIGHT]",
        "help": "queue to serve, repeatable (default: default); a pattern such as 'tenant.*' "
                "serves every matching queue, also queues created later, with one weight"}),
    (("--strict",), {"action": "store_true", "help": "serve queues in order, not by weight"}),
    (("--concurrency", "-c"), {"type": int, "default": 10, "help": "tasks run at once"}),
    (("--processes",), {"type": int, "help": "process-pool size (default: CPU count)"}),
    (("--lease-duration",), {"type": float, "default": 15.0, "help": "seconds per lease"}),
    (("--heartbeat-interval",), {"type": float, "help": "seconds (default: lease / 3)"}),
    (("--shutdown-timeout",), {"type": float, "default": 10.0,
        "help": "seconds running tasks get to finish on SIGTERM/SIGINT"}),
    (("--worker-id",), {"help": "default host:pid:random"}),
    (("--log-level",), {"default": "info", "choices": ["debug", "info", "warning", "error"]}),
    (("--log-format",), {"default": "auto", "choices": ["auto", "json", "console"]}),
    (("--tls",), {"action": "store_true", "help": "TLS with the system's CA roots"}),
    (("--tls-ca",), {"type": Path, "help": "PEM file of the broker's CA; enables TLS"}),
    (("--tls-cert",), {"type": Path,
        "help": "PEM client certificate for mutual TLS (with --tls-key); enables TLS"}),
    (("--tls-key",), {"type": Path, "help": "PEM private key of --tls-cert"}),
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The ``leasq worker`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="leasq worker",
        description="Run a Leasq worker.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("registry", help="where the handlers are: MODULE:REGISTRY")
    for flags, options in _FLAGS:
        parser.add_argument(*flags, **options)
    parser.add_argument("--broker", default=os.environ.get("LEASQ_BROKER", "127.0.0.1:50051"),
                        help="broker address host:port (env LEASQ_BROKER)")  # fmt: skip
    parser.add_argument("--token", default=os.environ.get("LEASQ_TOKEN"),
                        help="bearer token (env LEASQ_TOKEN)")  # fmt: skip
    parser.add_argument("--metrics-listen", metavar="HOST:PORT", type=host_port,
                        default=os.environ.get("LEASQ_METRICS_LISTEN") or None,
                        help="serve Prometheus /metrics on this address, e.g. 127.0.0.1:9465 "
                        "(env LEASQ_METRICS_LISTEN; default: off)")  # fmt: skip
    return parser


def _tls(args: argparse.Namespace) -> bool | grpc.ChannelCredentials:
    """Plaintext, TLS with the system roots, or credentials with --tls-ca / a client cert."""
    if args.tls_ca is None and args.tls_cert is None and args.tls_key is None:
        return bool(args.tls)
    return tls_credentials(read_pem(args.tls_ca), read_pem(args.tls_cert), read_pem(args.tls_key))


async def _serve(worker: Worker, metrics_listen: str | None) -> None:
    """Run ``worker``, with its /metrics server beside it when ``metrics_listen`` is set."""
    if metrics_listen is None:
        await worker.run()
        return
    metrics.watch_slots(lambda: worker.leases_held, worker.concurrency)
    server = metrics.MetricsServer()
    address = await server.start(metrics_listen)
    structlog.get_logger("leasq.worker").info("metrics serving", address=address)
    try:
        await worker.run()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    """Run a worker until SIGTERM/SIGINT: 0 after a graceful shutdown, 1 when the broker
    refuses its requests (bad queue name, wrong token), 2 for bad arguments."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        registry = load_registry(args.registry)
    except (ImportError, AttributeError, ValueError, TypeError) as exc:
        parser.error(f"cannot load {args.registry}: {exc}")
    try:
        tls = _tls(args)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
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
            tls=tls,
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        asyncio.run(_serve(worker, args.metrics_listen))
    except OSError as exc:  # the metrics address is taken or cannot be bound
        structlog.get_logger("leasq.worker").error("cannot serve metrics", error=str(exc))
        return 1
    except grpc.aio.AioRpcError as exc:
        structlog.get_logger("leasq.worker").error(
            "worker stopped by the broker's refusal", code=exc.code().name, error=exc.details()
        )
        return 1
    if worker.busy_threads:
        # Sync handlers that ignored their cancel signal would block interpreter exit.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
