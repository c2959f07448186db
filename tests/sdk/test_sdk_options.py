"""Option conversion, payload encoding and task definitions: the SDK's pure parts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import pytest

from leasq.v1 import task_pb2
from leasq_sdk import InvalidTask, PayloadError, TaskDef, TaskRequest, TaskState
from leasq_sdk.convert import (
    from_duration,
    from_timestamp,
    state_from_proto,
    state_to_proto,
    to_duration,
    to_timestamp,
)
from leasq_sdk.options import build_spec


@dataclass
class Address:
    city: str


@dataclass
class Signup:
    user_id: int
    addresses: list[Address] = field(default_factory=list)
    home: Address | None = None


def test_durations_accept_seconds_and_timedeltas_exactly() -> None:
    assert to_duration(1.5).seconds == 1 and to_duration(1.5).nanos == 500_000_000
    assert to_duration(timedelta(days=1, microseconds=7)).seconds == 86_400
    assert to_duration(timedelta(days=1, microseconds=7)).nanos == 7_000
    assert to_duration(30).seconds == 30


def test_negative_durations_keep_seconds_and_nanos_of_one_sign() -> None:
    duration = to_duration(-1.25)
    assert (duration.seconds, duration.nanos) == (-1, -250_000_000)


def test_a_naive_instant_is_read_as_utc() -> None:
    naive = datetime(2030, 1, 2, 3, 4, 5, 678_000)
    assert to_timestamp(naive) == to_timestamp(naive.replace(tzinfo=UTC))
    assert from_timestamp(to_timestamp(naive)) == naive.replace(tzinfo=UTC)


def test_an_aware_instant_is_converted_to_utc() -> None:
    plus_two = datetime(2030, 1, 2, 5, 0, tzinfo=timezone(timedelta(hours=2)))
    assert from_timestamp(to_timestamp(plus_two)) == datetime(2030, 1, 2, 3, 0, tzinfo=UTC)
    assert from_timestamp(to_timestamp(plus_two)).tzinfo is UTC


def test_durations_round_trip_to_timedeltas() -> None:
    assert from_duration(to_duration(timedelta(hours=3, milliseconds=5))) == timedelta(
        hours=3, milliseconds=5
    )


def test_states_convert_both_ways_by_enum_or_name() -> None:
    assert state_to_proto(TaskState.ARCHIVED) == task_pb2.TASK_STATE_ARCHIVED
    assert state_to_proto("PENDING") == task_pb2.TASK_STATE_PENDING
    assert state_from_proto(task_pb2.TASK_STATE_RETRY) is TaskState.RETRY
    assert state_from_proto(99) is TaskState.UNSPECIFIED
    assert str(TaskState.COMPLETED) == "completed"


def test_bytes_and_text_payloads_are_sent_without_a_content_type() -> None:
    assert build_spec("t", b"\x00raw").payload == b"\x00raw"
    spec = build_spec("t", "héllo")
    assert spec.payload == "héllo".encode()
    assert "content-type" not in spec.headers


def test_dicts_lists_and_dataclasses_are_sent_as_json_with_a_content_type() -> None:
    for value, expected in [
        ({"a": 1}, {"a": 1}),
        ([1, "x"], [1, "x"]),
        (
            Signup(7, [Address("Oslo")]),
            {"user_id": 7, "addresses": [{"city": "Oslo"}], "home": None},
        ),
    ]:
        spec = build_spec("t", value)
        assert json.loads(spec.payload) == expected
        assert spec.headers["content-type"] == "application/json"


def test_a_content_type_the_caller_set_is_kept() -> None:
    spec = build_spec("t", {"a": 1}, headers={"Content-Type": "application/vnd.x+json", "k": "v"})
    assert dict(spec.headers) == {"Content-Type": "application/vnd.x+json", "k": "v"}


def test_a_pydantic_style_model_is_encoded_with_its_own_json_dump() -> None:
    class Model:
        def model_dump_json(self) -> str:
            return '{"from":"model"}'

    assert build_spec("t", Model()).payload == b'{"from":"model"}'


def test_a_payload_that_is_not_json_is_an_invalid_task_naming_the_payload() -> None:
    with pytest.raises(InvalidTask) as caught:
        build_spec("t", {"when": object()})
    assert caught.value.field == "task.payload"


def test_a_negative_max_retry_is_refused_before_sending() -> None:
    with pytest.raises(InvalidTask) as caught:
        build_spec("t", b"", max_retry=-1)
    assert caught.value.field == "task.max_retry"


def test_unset_options_are_not_sent_so_the_broker_defaults_apply() -> None:
    spec = build_spec("t", b"")
    assert not spec.HasField("max_retry")
    for name in ("timeout", "deadline", "process_at", "process_in", "unique_ttl", "retention"):
        assert not spec.HasField(name)
    assert (spec.queue, spec.task_id, spec.group, spec.unique_key) == ("", "", "", "")


def test_every_option_lands_in_its_task_spec_field() -> None:
    at = datetime(2031, 5, 6, tzinfo=UTC)
    spec = TaskRequest(
        "t",
        b"p",
        queue="q",
        max_retry=0,
        timeout=2.5,
        deadline=at,
        process_at=at,
        process_in=timedelta(minutes=1),
        unique=60,
        unique_key="u",
        task_id="id-1",
        retention=3600,
        group="g",
        headers={"h": "1"},
    ).to_spec()
    assert (spec.queue, spec.task_id, spec.unique_key, spec.group) == ("q", "id-1", "u", "g")
    assert spec.HasField("max_retry") and spec.max_retry == 0
    assert from_duration(spec.timeout) == timedelta(seconds=2.5)
    assert from_timestamp(spec.deadline) == at == from_timestamp(spec.process_at)
    assert from_duration(spec.process_in) == timedelta(minutes=1)
    assert from_duration(spec.unique_ttl) == timedelta(minutes=1)
    assert from_duration(spec.retention) == timedelta(hours=1)
    assert dict(spec.headers) == {"h": "1"}


def test_a_task_def_decodes_nested_dataclasses_and_ignores_unknown_keys() -> None:
    signup = TaskDef("user:signup", Signup, queue="users")
    data = b'{"user_id": 3, "addresses": [{"city": "Rome"}], "home": {"city": "Bern"}, "new": 1}'
    assert signup.decode(data) == Signup(3, [Address("Rome")], Address("Bern"))
    assert (signup.name, signup.queue, signup.payload_type) == ("user:signup", "users", Signup)


def test_a_task_def_payload_round_trips_through_its_request() -> None:
    signup = TaskDef("user:signup", Signup)
    value = Signup(9, [Address("Lima")])
    assert signup.decode(signup.request(value).to_spec().payload) == value


def test_a_task_def_without_payload_type_decodes_json_objects_as_dicts() -> None:
    ping = TaskDef("ping")
    assert ping.decode(b'{"n": 1}') == {"n": 1}
    assert ping.queue == "default"
    with pytest.raises(PayloadError):
        ping.decode(b"[1, 2]")


def test_a_payload_that_does_not_fit_the_type_is_a_payload_error() -> None:
    signup = TaskDef("user:signup", Signup)
    with pytest.raises(PayloadError):
        signup.decode(b'{"addresses": []}')
    with pytest.raises(PayloadError):
        signup.decode(b"not json")


def test_bytes_and_str_task_defs_pass_payloads_through() -> None:
    assert TaskDef("raw", bytes).decode(b"\xff") == b"\xff"
    assert TaskDef("text", str).decode("ü".encode()) == "ü"


def test_task_def_overrides_replace_defaults_and_merge_headers() -> None:
    mail = TaskDef("mail", queue="mail", max_retry=3, headers={"tenant": "a", "x": "1"})
    request = mail.request({"to": "b"}, max_retry=9, headers={"x": "2"}, queue="urgent")
    assert (request.type, request.queue, request.max_retry) == ("mail", "urgent", 9)
    assert request.headers == {"tenant": "a", "x": "2"}
    assert mail.request({}).queue == "mail"
