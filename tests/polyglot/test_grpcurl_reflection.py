"""The broker serves gRPC reflection, so generic tools (grpcurl, grpcui) need no .proto files.

tests/test_server_health.py checks that reflection lists the services; this test does what
`grpcurl -d '<json>' ... leasq.v1.BrokerService/Enqueue` does: it fetches the descriptors from
the server, builds the request from the JSON shown in docs/clients.md, and calls the method
without any generated code.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


@pytest.fixture
def channel(broker: Any) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(str(broker.address)) as ch:
        yield ch


def test_an_enqueue_built_from_json_through_reflection_alone_is_accepted(
    channel: grpc.Channel,
) -> None:
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    method = pool.FindServiceByName("leasq.v1.BrokerService").methods_by_name["Enqueue"]
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    queue = f"grpcurl-{uuid.uuid4().hex[:8]}"
    # The JSON of the docs' grpcurl example: bytes are base64 ("eyJ0byI6ICJhZGEifQ==" is
    # {"to": "ada"}), durations are strings such as "3600s".
    body = (
        '{"task": {"type": "email:welcome", "payload": "eyJ0byI6ICJhZGEifQ==", '
        f'"queue": "{queue}", "task_id": "welcome-ada", "max_retry": 5, "retention": "3600s"}}}}'
    )
    request = json_format.Parse(body, request_cls())
    enqueue: grpc.UnaryUnaryMultiCallable[Message, Message] = channel.unary_unary(
        "/leasq.v1.BrokerService/Enqueue",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_cls.FromString,
    )
    answer = json_format.MessageToDict(enqueue(request, timeout=10))
    assert answer["task"]["id"] == "welcome-ada"
    assert answer["task"]["queue"] == queue
    assert answer["task"]["state"] == "TASK_STATE_PENDING"
