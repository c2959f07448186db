"""Exit 0 when the broker's gRPC health service answers SERVING (Docker HEALTHCHECK).

Usage: python healthcheck.py [host:port] [service]
"""

from __future__ import annotations

import sys
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str]) -> int:
    address = argv[1] if len(argv) > 1 else "127.0.0.1:50051"
    service = argv[2] if len(argv) > 2 else ""
    with grpc.insecure_channel(address) as channel:
        # Typed as Any: the published stubs of grpc_health leave Check out.
        stub: Any = health_pb2_grpc.HealthStub(channel)
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=3)
        except grpc.RpcError as exc:
            reason = exc.code().name if isinstance(exc, grpc.Call) else str(exc)
            print(f"unhealthy: {reason}", file=sys.stderr)
            return 1
    serving = answer.status == health_pb2.HealthCheckResponse.SERVING
    print("serving" if serving else "not serving")
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
