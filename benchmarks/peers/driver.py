"""The producer process: ``python -m peers.driver MODULE ACTION [...]``, one JSON line out.

Each measurement gets a fresh producer process running under the system's own interpreter;
connections are opened before the clock starts. Actions: ``single N`` and ``bulk N`` (seconds
taken; bulk also reports the pending count to prove the batch landed whole), ``probes COUNT GAP``
(latency probes, one every GAP seconds, each carrying its enqueue instant), ``crash`` (one
hanging task) and ``versions DIST...``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import time
from importlib import metadata
from typing import Any

from peers.base import Producer


async def run(producer: Producer, args: argparse.Namespace) -> dict[str, Any]:
    await producer.open()
    try:
        if args.action in ("single", "bulk"):
            call = producer.single if args.action == "single" else producer.bulk
            started = time.perf_counter()
            await call(args.n)
            result: dict[str, Any] = {"seconds": time.perf_counter() - started}
            if args.action == "bulk":
                result["pending"] = await producer.pending()
            return result
        if args.action == "probes":
            for _ in range(args.n):
                await asyncio.sleep(args.gap)
                await producer.probe(time.time())
            return {"sent": args.n}
        await producer.crash()
        return {}
    finally:
        await producer.close()


def versions(names: list[str]) -> dict[str, str]:
    return {name: metadata.version(name) for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", help="peer module, e.g. peers.rq_peer")
    parser.add_argument("action", choices=["single", "bulk", "probes", "crash", "versions"])
    parser.add_argument("names", nargs="*", help="distributions, for versions")
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--gap", type=float, default=0.01)
    args = parser.parse_args()
    if args.action == "versions":
        result = versions(args.names)
    else:
        module = importlib.import_module(args.module)
        result = asyncio.run(run(module.producer(), args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
