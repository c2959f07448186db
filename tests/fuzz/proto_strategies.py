"""Hypothesis strategies for any protobuf message, built from its descriptor.

``messages(descriptor, hints)`` draws instances of the message: each field set or left unset,
scalars including their extremes, strings including empty, non-ASCII and huge ones, repeated
fields short or far over any limit, maps, enums including numbers the contract does not define,
nested messages, and Timestamps/Durations inside and outside the ranges of google.protobuf.

``hints`` maps a field name to a strategy of mostly valid values (queue names, task types from a
small set): for such a field the hint is drawn three times out of four, the generic strategy
otherwise, so that most requests pass validation and reach the broker's deeper paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

Hints = Mapping[str, st.SearchStrategy[Any]]
MAX_DEPTH = 4
HUGE_SIZES = (70_000, 1_048_576, 1_048_577, 5_000_000)
LARGE_REPEATS = (101, 1_001, 10_001)

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}

# Seconds around the edges of google.protobuf's ranges, of Unix time and of 32/64-bit integers.
MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z
MIN_TIMESTAMP = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_DURATION = 315_576_000_000
_EDGE_SECONDS = (
    0, 1, -1, 59, 60, 86_400, 2**31 - 1, -(2**31), 2**32, 2**63 - 1, -(2**63),
    MAX_TIMESTAMP, MAX_TIMESTAMP + 1, MIN_TIMESTAMP, MIN_TIMESTAMP - 1,
    MAX_DURATION, MAX_DURATION + 1, -MAX_DURATION, -MAX_DURATION - 1,
)  # fmt: skip
_EDGE_NANOS = (0, 1, -1, 999_999_999, 1_000_000_000, -999_999_999, 2**31 - 1, -(2**31))


def integers(low: int, high: int) -> st.SearchStrategy[int]:
    """Any integer in range, with its edges and small values drawn often."""
    edges = sorted({v for v in (low, high, 0, 1, -1, low + 1, high - 1) if low <= v <= high})
    small = st.integers(max(low, -3), min(high, 1_000))
    return st.one_of(st.sampled_from(edges), small, st.integers(low, high))


def texts(small: bool = False) -> st.SearchStrategy[str]:
    """Empty, ASCII, any Unicode (no surrogates: protobuf strings are UTF-8), or huge."""
    unicode = st.characters(exclude_categories=["Cs"])
    options = [
        st.just(""),
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
        st.text(unicode, max_size=40),
    ]
    if not small:
        huge = st.tuples(st.sampled_from("aé€😀\x00"), st.sampled_from(HUGE_SIZES[:3]))
        options.append(huge.map(lambda pair: pair[0] * pair[1]))
    return st.one_of(options)


def binaries(small: bool = False) -> st.SearchStrategy[bytes]:
    if small:
        return st.binary(max_size=64)
    huge = st.tuples(st.sampled_from([b"\x00", b"\xff", b"x"]), st.sampled_from(HUGE_SIZES))
    return st.one_of(st.binary(max_size=64), st.binary(max_size=64),
                     huge.map(lambda pair: pair[0] * pair[1]))  # fmt: skip


def timestamps() -> st.SearchStrategy[timestamp_pb2.Timestamp]:
    """Instants near now, any valid one, and seconds/nanos outside google.protobuf's range."""
    seconds = st.one_of(
        st.sampled_from(_EDGE_SECONDS),
        st.integers(1_700_000_000, 2_100_000_000),
        st.integers(MIN_TIMESTAMP, MAX_TIMESTAMP),
        st.integers(-(2**63), 2**63 - 1),
    )
    nanos = st.one_of(st.sampled_from(_EDGE_NANOS), st.integers(0, 999_999_999))
    return st.builds(timestamp_pb2.Timestamp, seconds=seconds, nanos=nanos)


def durations() -> st.SearchStrategy[duration_pb2.Duration]:
    """Spans from zero to years, negative ones, mixed signs, and ones outside the range."""
    seconds = st.one_of(
        st.sampled_from(_EDGE_SECONDS),
        st.integers(0, 120),
        st.integers(-MAX_DURATION, MAX_DURATION),
        st.integers(-(2**63), 2**63 - 1),
    )
    nanos = st.one_of(st.sampled_from(_EDGE_NANOS), st.integers(0, 999_999_999))
    return st.builds(duration_pb2.Duration, seconds=seconds, nanos=nanos)


def enums(descriptor: EnumDescriptor) -> st.SearchStrategy[int]:
    """Defined values, and numbers the contract does not define (proto3 enums are open)."""
    known = [value.number for value in descriptor.values]
    unknown = st.sampled_from([max(known) + 1, 99, -1, 2**31 - 1, -(2**31)])
    return st.one_of(st.sampled_from(known), unknown)


def scalars(field: FieldDescriptor, small: bool = False) -> st.SearchStrategy[Any]:
    """Values of a scalar field; ``small``: no huge strings or bytes (inside lists, deep)."""
    kind = field.type
    if kind in _INT_RANGES:
        return integers(*_INT_RANGES[kind])
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_STRING:
        return texts(small)
    if kind == FieldDescriptor.TYPE_BYTES:
        return binaries(small)
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        return enums(field.enum_type)
    if kind == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32)
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.floats()
    raise TypeError(f"no strategy for field {field.full_name} of type {kind}")


def _value(field: FieldDescriptor, hints: Hints, depth: int, small: bool,
           ) -> st.SearchStrategy[Any]:  # fmt: skip
    """One value of a (non-repeated) field, hinted three times out of four when hinted."""
    if field.message_type is not None:
        generic: st.SearchStrategy[Any] = messages(field.message_type, hints, depth + 1, small)
    else:
        generic = scalars(field, small or depth >= 2)
    # Hints are values of scalar fields: a message field of the same name (GroupRef group)
    # gets generic messages only.
    hint = hints.get(field.name) if field.message_type is None else None
    return generic if hint is None else st.one_of(hint, hint, hint, generic)


def _repeated(field: FieldDescriptor, hints: Hints, depth: int) -> st.SearchStrategy[Any]:
    element = _value(field, hints, depth, small=True)
    many = st.tuples(element, st.sampled_from(LARGE_REPEATS)).map(lambda p: [p[0]] * p[1])
    return st.one_of(st.lists(element, max_size=4), st.lists(element, max_size=4), many)


def _map(field: FieldDescriptor, hints: Hints, depth: int) -> st.SearchStrategy[Any]:
    entry = field.message_type
    assert entry is not None
    key = _value(entry.fields_by_name["key"], hints, depth, small=True)
    value = _value(entry.fields_by_name["value"], hints, depth, small=depth >= 1)
    many = st.integers(65, 200).map(lambda n: {f"k{i}": "v" for i in range(n)})
    return st.one_of(st.dictionaries(key, value, max_size=4), many)


def _field(field: FieldDescriptor, hints: Hints, depth: int, small: bool,
           ) -> st.SearchStrategy[Any]:  # fmt: skip
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return _map(field, hints, depth)
    if field.is_repeated:
        return _repeated(field, hints, depth)
    return _value(field, hints, depth, small)


def _assemble(cls: type[Message], values: dict[str, Any]) -> Message:
    message = cls()
    for name, value in values.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name) if field.is_repeated else None
        if isinstance(value, dict):
            _fill_map(getattr(message, name), value)
        elif isinstance(value, list):
            _extend(target, value)
        elif isinstance(value, Message):
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def _fill_map(container: Any, values: dict[Any, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, Message):
            container[key].CopyFrom(value)
        else:
            container[key] = value


def _extend(container: Any, values: list[Any]) -> None:
    if values and isinstance(values[0], Message):
        for value in values:
            container.add().CopyFrom(value)
    else:
        container.extend(values)


def messages(descriptor: Descriptor, hints: Hints | None = None, depth: int = 0,
             small: bool = False) -> st.SearchStrategy[Message]:  # fmt: skip
    """Instances of the message: any subset of its fields set, each from its strategy."""
    cls = GetMessageClass(descriptor)
    if descriptor.full_name == "google.protobuf.Timestamp":
        return timestamps()
    if descriptor.full_name == "google.protobuf.Duration":
        return durations()
    if depth > MAX_DEPTH:
        return st.just(cls())
    hints = hints or {}
    optional = {field.name: _field(field, hints, depth, small) for field in descriptor.fields}
    values = st.fixed_dictionaries({}, optional=optional)
    return values.map(lambda drawn: _assemble(cls, drawn))
