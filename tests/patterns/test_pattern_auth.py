"""A token limited to queue patterns may lease with a pattern only when one of its own patterns
surely covers it (``tenant.*`` covers ``tenant.a*``, not ``*``)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from broker_process import BrokerFactory
from pattern_testing import fill, lease_of
from rpc_testing import refusal

from leasq.v1 import broker_service_pb2_grpc
from leasq_broker.edge.tokens import hash_token

SECRET = f"tok-tenants-{uuid.uuid4().hex[:8]}"
ADMIN = f"tok-admin-{uuid.uuid4().hex[:8]}"


async def test_a_token_limited_to_tenant_star_leases_tenant_a_star_but_not_star(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'[[token]]\nname = "tenants"\nsha256 = "{hash_token(SECRET)}"\n'
                      'role = "worker"\nqueues = ["tenant.*"]\n')
    broker = broker_factory(auth_tokens_file=tokens, auth_token=ADMIN)
    worker = [("authorization", f"Bearer {SECRET}")]
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub: Any = broker_service_pb2_grpc.BrokerServiceStub(channel)
        await fill(stub, {"tenant.alpha": 1, "other": 1},
                   metadata=[("authorization", f"Bearer {ADMIN}")])
        allowed = await stub.Lease(lease_of("tenant.a*"), metadata=worker)
        assert [task.queue for task in allowed.tasks] == ["tenant.alpha"]
        for pattern in ("*", "ten*", "?enant.*"):
            refused = await refusal(stub.Lease(lease_of(pattern), metadata=worker))
            assert refused.code == grpc.StatusCode.PERMISSION_DENIED, pattern
            assert f"queue pattern '{pattern}'" in refused.message
        # Mixed with a named queue outside its patterns: refused as before.
        refused = await refusal(stub.Lease(lease_of("tenant.*", "other"), metadata=worker))
        assert refused.code == grpc.StatusCode.PERMISSION_DENIED
